"""Agent projects: the Connic-compatible YAML format, its loader and its linter.

    load_project(path) -> Project        raises ProjectError(.problems) on any error
    lint_project(path) -> LintReport     never raises for project mistakes
    select_tools(agent, input, context)  the tools one run may offer the LLM
    format_problems(problems)            the lines every listing of problems prints

The format is described in docs/project-format.md.
"""

from app.project.conditions import ConditionError, evaluate_condition, parse_condition
from app.project.config import ModelOverrides, ProjectConfig
from app.project.connectors import (
    ConnectorSpec,
    FeedColumn,
    FeedSpec,
    InboundConnectorSpec,
    KafkaConnectSpec,
    WebhookConnectorSpec,
)
from app.project.lint import LintReport, lint_project
from app.project.loader import ProjectNotFoundError, load_project
from app.project.models import (
    AgentSpec,
    BudgetSpec,
    ConcurrencySpec,
    LLMAgentSpec,
    RetryOptions,
    SequentialAgentSpec,
    ToolAgentSpec,
    ToolEntry,
)
from app.project.problems import Loc, Problem, ProjectError, format_problem, format_problems
from app.project.project import Project, select_tools
from app.project.tool_schema import ToolSchemaError, function_parameters, openai_tool_schema
from app.project.tooldef import ToolDef
from app.project.topics import TopicSpec

__all__ = [
    "AgentSpec",
    "BudgetSpec",
    "ConcurrencySpec",
    "ConditionError",
    "ConnectorSpec",
    "FeedColumn",
    "FeedSpec",
    "InboundConnectorSpec",
    "KafkaConnectSpec",
    "LLMAgentSpec",
    "LintReport",
    "Loc",
    "ModelOverrides",
    "Problem",
    "Project",
    "ProjectConfig",
    "ProjectError",
    "ProjectNotFoundError",
    "RetryOptions",
    "SequentialAgentSpec",
    "ToolAgentSpec",
    "ToolDef",
    "ToolEntry",
    "ToolSchemaError",
    "TopicSpec",
    "WebhookConnectorSpec",
    "evaluate_condition",
    "format_problem",
    "format_problems",
    "function_parameters",
    "lint_project",
    "load_project",
    "openai_tool_schema",
    "parse_condition",
    "select_tools",
]
