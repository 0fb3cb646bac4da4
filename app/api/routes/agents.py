"""`GET /v1/agents`: the agents and pipelines this API accepts runs for."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.auth import Caller, Services
from app.api.problems import AGENT_NOT_FOUND, ApiProblem
from app.api.views import AgentList, AgentView
from app.project.models import AgentSpec

router = APIRouter(prefix="/v1/agents", tags=["agents"])


@router.get("", response_model=AgentList)
async def list_agents(caller: Caller, services: Services) -> AgentList:
    agents = services.project.agents
    return AgentList(agents=[_view(agents[name]) for name in sorted(agents)])


def known_agent(services: Services, name: str) -> AgentSpec:
    spec = services.project.agents.get(name)
    if spec is None:
        raise ApiProblem(AGENT_NOT_FOUND, f"no agent {name!r} is deployed here (GET /v1/agents lists them)")
    return spec


def _view(spec: AgentSpec) -> AgentView:
    return AgentView(name=spec.name, type=spec.type, description=spec.description)
