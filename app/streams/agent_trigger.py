"""`trigger_agent` in a worker: the child run goes through Kafka like every other run.

The engine asks its `AgentTrigger` (app/compat/trigger.py) to start a run; here that
means producing the child's `RunRequest` to the target agent's request topic (keyed as
`ferry submit` keys it: the agent's concurrency key value, else the run id), so any
worker of the app runs it, with its own result, history row and trace. The request
carries the trace context of the parent's tool call: the child's run span is a child
of it. To wait, a `ResultWatcher` reading only the partition of `runs.results` the
child's id lands on is positioned at its end before the request is produced, so the
result cannot be missed.

A parent waiting for a child of its own agent holds one of that agent's run slots: with
`max_concurrent_runs: 1` the child cannot start until the parent gives up (timeout).

`trigger_agent_at` (`schedule`) produces the child's request, keyed and with the trace
context it will need, as a scheduled run on `ferry.triggers`; the scheduled-runs leader
(app/streams/scheduled.py) produces it to the request topic when it is due.
"""

from __future__ import annotations

from datetime import datetime

from app.contracts import RunRequest, RunResult
from app.project.project import Project
from app.streams.client import ResultWatcher
from app.streams.keys import concurrency_key
from app.streams.naming import TopicNames
from app.streams.outbox import Outbox
from app.streams.scheduled import scheduled_run
from app.streams.trace_headers import current_trace_context


class KafkaAgentTrigger:
    def __init__(self, project: Project, outbox: Outbox, bootstrap: str, names: TopicNames) -> None:
        self._project = project
        self._outbox = outbox
        self._bootstrap = bootstrap
        self._names = names

    def _key(self, request: RunRequest) -> str:
        agent = self._project.agents.get(request.agent)
        key = concurrency_key(agent, request.input) if agent is not None else None
        return key if key is not None else request.run_id

    async def _produce(self, request: RunRequest) -> None:
        topic = self._names.request(request.agent)
        await self._outbox.request(topic, request, self._key(request), trace=current_trace_context())

    async def trigger(self, request: RunRequest, *, wait: bool, timeout: float) -> RunResult | None:
        if not wait:
            await self._produce(request)
            return None
        async with ResultWatcher(self._bootstrap, self._names, only=[request.run_id]) as watcher:
            await self._produce(request)
            found = await watcher.wait_for([request.run_id], timeout)
        return found.get(request.run_id)

    async def schedule(self, request: RunRequest, due_at: datetime) -> None:
        topic = self._names.request(request.agent)
        run = scheduled_run(request, due_at, topic=topic, record_key=self._key(request), trace=current_trace_context())
        await self._outbox.keyed(self._names.triggers, run.key, run.model_dump_json().encode())
