"""What the Connic runtime is given (`ConnicServices`, engine-wide) and what one run gets
from it (`ConnicRun`, built per run, bound to the run's task).

Engine-wide are only the backends: the document store's database, the agent trigger.
Everything a tool call may reach — which tenant's documents, which run is the parent of
a triggered one — is fixed per run here, from the run's own request; nothing a run can
change is shared with another run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.compat.documents import Access, DocumentBackend, Documents, DocumentScope
from app.compat.files import Files, FolderAccess, RunFiles
from app.compat.knowledge import Knowledge, KnowledgeBackend, NamespaceAccess, TextEmbedder
from app.compat.runtime import ConnicRun, Implementation, ToolTable
from app.compat.sessions import SessionStore
from app.compat.trigger import AgentTrigger, TriggerTools
from app.compat.web_page import PageReader
from app.compat.web_search import WebSearch
from app.contracts import RunRequest

ENVIRONMENT_ENV = "FERRY_ENVIRONMENT"
DEFAULT_ENVIRONMENT = "default"

#: Predefined tools Ferry does not provide yet, and what a call gets back instead.
NOT_YET: dict[str, str] = {
    "send_connector": "send_connector is not available in Ferry: outbound connectors are Kafka Connect sinks "
    "and webhooks, fed by the run's result",
    "web_search": "web_search has no provider configured (web_search: in ferry.yaml) — the search was not made",
    "web_read_page": "this Ferry process cannot fetch web pages — the page was not fetched",
    **{
        f"file_{op}": "this Ferry process has no file store — no file was read or written"
        for op in ("list", "read", "write", "update", "delete")
    },
}


def environment_from(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get(ENVIRONMENT_ENV) or DEFAULT_ENVIRONMENT


@dataclass
class ConnicServices:
    """`documents`: where `db_*` keep their collections (None: the tools answer with an
    error); `trigger`: how `trigger_agent` starts a run; `sessions`: where `session:`
    conversations are kept (None: runs start without them); `knowledge`: where the
    retrieval_* entries are kept; `web_search`: the search provider of ferry.yaml; `files_root`: the folder of the file_*
    tools' files; `page_reader`: web_read_page behind an SSRF guard; `environment`: the name that
    separates one deployment's data from another's (staging, production) for a tenant."""

    documents: DocumentBackend | None = None
    trigger: AgentTrigger | None = None
    sessions: SessionStore | None = None
    knowledge: KnowledgeBackend | None = None
    web_search: WebSearch | None = None
    files_root: Path | None = None
    page_reader: PageReader | None = None
    environment: str = DEFAULT_ENVIRONMENT
    embedder: TextEmbedder | None = None  # knowledge ranked by embeddings (None: lexically)
    _locks: dict[tuple[Any, ...], asyncio.Lock] = field(default_factory=dict, repr=False)

    def run_for(
        self,
        request: RunRequest,
        agents: Collection[str],
        access: Access | None = None,
        namespaces: NamespaceAccess | None = None,
        folders: FolderAccess | None = None,
    ) -> ConnicRun:
        """`access`, `namespaces` and `folders`: the requested agent's `database`, `retrieval`
        and `files` rules, binding every db_*, knowledge and file call of the run (built on
        the run's first call)."""
        return ConnicRun(
            run_id=request.run_id,
            agent=request.agent,
            tenant=request.tenant,
            build=lambda: self._tools(request, agents, access, namespaces, folders),
        )

    def _tools(
        self,
        request: RunRequest,
        agents: Collection[str],
        access: Access | None,
        namespaces: NamespaceAccess | None,
        folders: FolderAccess | None,
    ) -> ToolTable:
        implementations: dict[str, Implementation] = {}
        unavailable = dict(NOT_YET)
        if self.documents is not None:
            scope = DocumentScope(tenant=request.tenant, environment=self.environment)
            documents = Documents(self.documents, scope, self._locks, access, request.agent)
            implementations.update(documents.implementations())
        else:
            for name in ("find", "insert", "update", "upsert", "delete", "count", "list_collections"):
                unavailable[f"db_{name}"] = "this Ferry process has no document store — nothing was read or written"
        if self.knowledge is not None:
            scope = DocumentScope(tenant=request.tenant, environment=self.environment)
            knowledge = Knowledge(self.knowledge, scope, access=namespaces, agent=request.agent, embedder=self.embedder)
            implementations.update(knowledge.implementations())
        else:
            for name in ("query", "store", "delete", "list_namespaces"):
                unavailable[f"retrieval_{name}"] = (
                    "this Ferry process has no knowledge store — nothing was stored or searched"
                )
        if self.files_root is not None:
            writer = RunFiles(agent=request.agent, run_id=request.run_id)
            scope = DocumentScope(tenant=request.tenant, environment=self.environment)
            implementations.update(Files(self.files_root, scope, writer, folders).implementations())
        if self.web_search is not None:
            implementations["web_search"] = self.web_search.web_search
        if self.page_reader is not None:
            implementations["web_read_page"] = self.page_reader.web_read_page
        if self.trigger is not None:
            triggers = TriggerTools(self.trigger, request, agents)
            implementations["trigger_agent"] = triggers.trigger_agent
            implementations["trigger_agent_at"] = triggers.trigger_agent_at
        else:
            unavailable["trigger_agent"] = "this Ferry process cannot start runs — no agent was triggered"
            unavailable["trigger_agent_at"] = "this Ferry process cannot start runs — no agent was scheduled"
        return implementations, unavailable
