"""The Connic steps around one agent run: middleware, guardrails and the session.

    middleware before ─► input guardrails ─► session turns ─► the agent ─► output
    guardrails ─► session kept ─► middleware after          (cleanup: engine.py, last)

`StopProcessing` from any step (or from a tool) ends the run completed with its
response; a blocking guardrail leaves `state.blocked` set and no output. What each
step does is app/compat's; this module only orders them around `execute_agent`, so
`engine.py` keeps to the run's lifecycle (timeouts, cancellation, the result).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.compat.documents import DocumentScope
from app.compat.guardrails import Judge
from app.compat.guardrails import check as check_guardrails
from app.compat.judge import judge_messages, verdict
from app.compat.middleware import middleware_error, run_after, run_before
from app.compat.sdk import stop_processing
from app.compat.services import ConnicServices
from app.compat.sessions import SessionStore, answer_text, session_key
from app.compat.web_page import PageReader
from app.contracts import RunRequest, SpanKind
from app.contracts.errors import FerryError
from app.engine.clock import Clock
from app.engine.model import LLMRequest
from app.engine.model_call import side_call
from app.engine.prompt import user_message_text
from app.engine.stage import execute_agent
from app.engine.state import RunDeps, RunState
from app.observability.tracing import usage_attributes
from app.project.models import LLMAgentSpec
from app.project.project import Project

if TYPE_CHECKING:
    from connic.core import Middleware


@dataclass(frozen=True)
class ConnicSteps:
    """What the steps need of the engine: the project, its Connic backends, its clock."""

    project: Project
    connic: ConnicServices
    clock: Clock

    async def run(
        self, request: RunRequest, agent: Any, deps: RunDeps, state: RunState, middleware: Middleware | None
    ) -> Any:
        """The agent between its middleware's before and after; the run's output."""
        t0 = self.clock.monotonic()
        rules = getattr(agent, "guardrails", None)
        try:
            payload = await _user_step(run_before(middleware, request.input, deps.context), "before")
            if rules is not None and rules.input:
                judge = self._judge(agent, deps, state, "")
                checked = await self._guard(state, deps, "input", rules.input, payload, judge)
                if checked is None:  # blocked: the model never sees this input
                    if rules.run_after_on_block and middleware is not None and middleware.after is not None:
                        await _user_step(run_after(middleware, None, deps.context), "after")
                    return None
                payload = checked
            session = await self._open_session(request, agent, payload, deps)
            if session is not None:
                deps = replace(deps, history=(*deps.history, *session.turns))
            output = await execute_agent(deps, state, self.project, agent, payload)
            if rules is not None and rules.output:
                judge = self._judge(agent, deps, state, user_message_text(payload))
                output = await self._guard(state, deps, "output", rules.output, output, judge)
                if state.blocked is not None:
                    return None
            if session is not None:
                await session.keep(user_message_text(payload), output)
            if middleware is None or middleware.after is None:
                return output
            deps.context["token_usage"] = state.usage.model_dump(mode="json")
            deps.context["duration_ms"] = (self.clock.monotonic() - t0) * 1000.0
            return await _user_step(run_after(middleware, output, deps.context), "after")
        except stop_processing() as stop:
            state.publish_outbound = stop.publish_outbound
            return stop.response

    async def _open_session(
        self, request: RunRequest, agent: Any, payload: dict[str, Any], deps: RunDeps
    ) -> OpenSession | None:
        """The run's Connic session (an llm agent's `session:` with history), its turns loaded."""
        rules = getattr(agent, "session", None)
        store = self.connic.sessions
        if not isinstance(agent, LLMAgentSpec) or rules is None or not rules.history or store is None:
            return None
        key = session_key(rules, payload, deps.context)
        if key is None:
            return None
        scope = DocumentScope(request.tenant, self.connic.environment)
        ttl = timedelta(seconds=rules.ttl) if rules.ttl is not None else None
        return OpenSession(store, scope, agent.name, key, ttl, await store.load(scope, agent.name, key, ttl))

    async def _guard(self, state: RunState, deps: RunDeps, direction: str, rules: Any, value: Any, judge: Judge) -> Any:
        """The value after `rules` (redacted where a rule says so); None when one blocked it."""
        checked = await check_guardrails(direction, rules, value, deps.context, self.project.guardrails, judge)
        state.guardrail_warnings.extend(v.describe() for v in checked.warnings)
        if checked.blocked is not None:
            state.blocked = checked.blocked.describe()
            return None
        return checked.value

    @staticmethod
    def _judge(agent: Any, deps: RunDeps, state: RunState, request_text: str) -> Judge:
        """The judge of this run's judged guardrails: one model call per rule and text, traced as
        an `llm_call` span named for the guardrail, its usage and cost the run's."""

        async def judge(kind: str, text: str, config: Mapping[str, Any]) -> str | None:
            model = config.get("model") or getattr(agent, "model", None)
            if not model:
                return None  # `ferry lint` warned: no model to ask
            messages = judge_messages(
                kind, text, config, request=request_text, system_prompt=getattr(agent, "system_prompt", "")
            )
            with deps.tracer.span(SpanKind.LLM_CALL, f"guardrail {kind}", model=model, guardrail=kind) as span:
                request = LLMRequest(
                    model=str(model),
                    messages=messages,
                    temperature=0.0,
                    timeout=deps.deadline.cap(agent.retry_options.attempt_timeout),
                )
                response, usage = await side_call(deps, state, request)
                violation, reason = verdict(response.text)
                span.set(**usage_attributes(usage), guardrail__violation=violation)
            return (reason or f"the judge found a {kind} violation") if violation else None

        return judge


async def _user_step(step: Awaitable[Any], which: str) -> Any:
    """A middleware function's outcome; what it raises (but StopProcessing) fails the run, named."""
    try:
        return await step
    except FerryError:
        raise
    except stop_processing():
        raise
    except Exception as exc:
        raise middleware_error(f"middleware {which}() raised {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class OpenSession:
    store: SessionStore
    scope: DocumentScope
    agent: str
    key: str
    ttl: timedelta | None
    turns: list[dict[str, str]]

    async def keep(self, message: str, output: Any) -> None:
        turns = [{"role": "user", "content": message}, {"role": "assistant", "content": answer_text(output)}]
        await self.store.append(self.scope, self.agent, self.key, turns, self.ttl)


FILES_DIR_ENV = "FERRY_FILES_DIR"


class _WebhookGuard:
    """The webhook connector's SSRF guard as `web_read_page`'s `UrlGuard` (the same rule,
    the same `webhooks.allow_private` networks of ferry.yaml)."""

    def __init__(self, allowed: Sequence[str]) -> None:
        self._networks = tuple(allowed)  # parsed on first use: the connector package loads only then

    def _allowed(self) -> Any:
        from app.connectors.webhook.ssrf import allow_list

        return allow_list(self._networks)

    async def check(self, url: str) -> None:
        from app.connectors.webhook.ssrf import check_callback_url

        await check_callback_url(url, self._allowed())

    def resolver(self) -> Any:
        from app.connectors.webhook.ssrf import GuardedResolver

        return GuardedResolver(self._allowed())


def page_reader(project: Project) -> PageReader:
    """`web_read_page` behind the webhook connector's SSRF guard (imported when a page is read)."""
    return PageReader(_WebhookGuard(project.config.webhooks.allow_private))


def history_backends(closers: list[Callable[[], Awaitable[None]]]) -> dict[str, Any]:
    """The document, session and knowledge stores on the run-history database, each opened
    on first use (imported here: SQLAlchemy loads when an engine is built, not on import),
    and the folder of the file tools (`$FERRY_FILES_DIR`, else `files/` under the Ferry home)."""
    from app.observability.history.documents import SqlDocumentBackend
    from app.observability.history.knowledge import SqlKnowledgeBackend
    from app.observability.history.sessions import SqlSessionStore
    from app.observability.history.settings import ferry_home

    stores: dict[str, Any] = {
        "documents": SqlDocumentBackend.for_history(),
        "sessions": SqlSessionStore.for_history(),
        "knowledge": SqlKnowledgeBackend.for_history(),
    }

    async def close() -> None:
        for store in stores.values():
            store.close()

    closers.append(close)
    files = os.environ.get(FILES_DIR_ENV)
    return {**stores, "files_root": Path(files) if files else ferry_home() / "files"}
