"""Which provider keys an agent's models need and the environment lacks.

Asked before a run starts, so a user without a key gets one clear line (and the offer of
the simulator) instead of a run failing with `auth` after its first LLM call.
"""

from __future__ import annotations

from app.engine.llm import load_litellm
from app.project import Project


def models_of(project: Project, agent_name: str, seen: set[str] | None = None) -> list[str]:
    """Every model an agent may call, through the stages of a chain."""
    seen = set() if seen is None else seen
    if agent_name in seen or agent_name not in project.agents:
        return []
    seen.add(agent_name)
    agent = project.agents[agent_name]
    if agent.type == "sequential":
        return [m for stage in agent.agents for m in models_of(project, stage, seen)]
    if agent.type == "llm":
        return [agent.model]  # a fallback is optional: the primary's key is what must exist
    return []


def missing_provider_keys(project: Project, agent_name: str) -> list[str]:
    litellm = load_litellm()
    missing: list[str] = []
    for model in dict.fromkeys(models_of(project, agent_name)):
        try:
            report = litellm.validate_environment(model=model)
        except Exception:
            continue
        missing += [k for k in report.get("missing_keys", []) if k not in missing]
    return missing
