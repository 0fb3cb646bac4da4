"""The LLM simulator: Ferry's test double for an OpenAI-compatible provider.

A real HTTP server that litellm talks to as to any provider
(`model="openai/<name>"`, `api_base=sim.base_url`, `api_key="sim"`), scripted per
test by ordered rules. See docs/llm-simulator.md.

    async with LLMSimulator([Rule(reply=TextReply(text="hi"))]) as sim:
        await litellm.acompletion(model="openai/m", api_base=sim.base_url, api_key="sim", ...)
        assert sim.calls_total == 1
"""

from app.devstack.llm_sim.process import SimulatorProcess, start_simulator_process
from app.devstack.llm_sim.rules import (
    FaultKind,
    FaultReply,
    JsonReply,
    Match,
    Reply,
    Rule,
    RuleSet,
    SequenceReply,
    StepReply,
    TextReply,
    ToolCall,
    ToolCallsReply,
    parse_rules,
)
from app.devstack.llm_sim.server import DEFAULT_MODEL, LLMSimulator, default_reply_text
from app.devstack.llm_sim.state import RecordedRequest, SimStats

__all__ = [
    "DEFAULT_MODEL",
    "FaultKind",
    "FaultReply",
    "JsonReply",
    "LLMSimulator",
    "Match",
    "RecordedRequest",
    "Reply",
    "Rule",
    "RuleSet",
    "SequenceReply",
    "SimStats",
    "SimulatorProcess",
    "StepReply",
    "TextReply",
    "ToolCall",
    "ToolCallsReply",
    "default_reply_text",
    "parse_rules",
    "start_simulator_process",
]
