"""Which provider keys an agent's models need and the environment lacks.

Asked before a run starts, so a user without a key gets one clear line (and the offer of
the simulator) instead of a run failing with `auth` after its first LLM call.
"""

from __future__ import annotations

from app.engine.llm import load_litellm
from app.engine.openai_compat.endpoints import EndpointTable
from app.engine.settings import EngineSettings
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


def missing_provider_keys(project: Project, agent_name: str, settings: EngineSettings | None = None) -> list[str]:
    """Keys (or URLs) the agent's models need and the environment lacks.

    A model on the direct OpenAI-protocol path is checked by that path's own rules, so
    asking never imports litellm for it; the others ask litellm's `validate_environment`.
    """
    settings = settings or EngineSettings()
    endpoints = EndpointTable(
        base_url=settings.llm_base_url, api_key=settings.llm_api_key, overrides=project.config.models
    )
    missing: list[str] = []
    for model in dict.fromkeys(models_of(project, agent_name)):
        if endpoints.path_of(model) == "openai":
            needed = list(endpoints.missing_settings(model))
        else:
            try:
                needed = list(load_litellm().validate_environment(model=model).get("missing_keys", []))
            except Exception:  # litellm cannot tell for this model: the run will say
                continue
        missing += [k for k in needed if k not in missing]
    return missing
