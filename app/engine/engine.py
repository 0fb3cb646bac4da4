"""`Engine`: one agent run, from `RunRequest` to `RunResult`, whatever happens on the way.

The engine knows nothing of Kafka: the streams layer, the API and `ferry run` all call
`Engine.run`. A run never raises for a failed run; every failure is a result with a
status and one error category:

    completed                 the agent answered (and the answer validated)
    failed    / <category>    an LLM, tool, validation or budget error ended the run
    timeout   / timeout       the run deadline passed (`on_timeout: partial` keeps the
                              best output so far, `partial: true`)
    cancelled / cancelled     `Engine.cancel(run_id)` was called
    failed    / internal      a bug in Ferry: reported, never raised

Cancelling the task that awaits `run` (rather than calling `Engine.cancel`) propagates
`CancelledError` as asyncio expects, after the run's tasks and processes are stopped.

Shared between runs: the project (immutable), the LLM client, the tool thread pool,
the tracer provider, the cost model and the Connic backends (document and session
stores, the agent trigger). Per run: context, messages, usage, deadline, and the
`ConnicRun` that `connic.tools` calls of the run reach (bound to the run's task, see
app/compat/runtime.py); middleware, guardrails and the session are ordered around the
agent by `connic_steps.py`, and middleware's cleanup runs here, last.

What the engine is given as objects are its arguments, apart from the data of
`EngineSettings`: `llm` (any `LLMClient`; default: the `ModelRouter`, the direct
OpenAI-protocol client or litellm per model, configured by the settings and ferry.yaml),
`llm_middleware` (wraps the client: the worker's rate limiter) and `clock` (tests pass a
`FakeClock`). litellm's price map prices calls only for the engine's own client; a
client passed in reports its costs, or the project's prices apply.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from app.compat.middleware import run_cleanup
from app.compat.runtime import bound
from app.compat.services import ConnicServices, environment_from
from app.compat.trigger import AgentTrigger, InProcessTrigger
from app.compat.web_search import WebSearch
from app.contracts import RunError, RunRequest, RunResult, RunStatus, SpanEvent
from app.contracts.errors import (
    BadInputError,
    CancelledRunError,
    FerryError,
    InternalError,
    RunTimeoutError,
)
from app.contracts.trace_context import TraceContext
from app.engine.approval import ApprovalPending
from app.engine.clock import Clock, Deadline, SystemClock
from app.engine.connic_steps import ConnicSteps, history_backends, page_reader
from app.engine.embeddings import knowledge_embeddings
from app.engine.isolation import ProcessIsolation
from app.engine.model import LLMClient, LLMMiddleware
from app.engine.model_router import ModelRouter
from app.engine.pricing import CostModel, ModelPrice, PriceMap, litellm_price_map_price
from app.engine.settings import EngineSettings
from app.engine.stage import carried_budget, result_pipeline
from app.engine.state import RunDeps, RunState
from app.engine.tools import ToolExecutor
from app.observability.redaction import Redactor
from app.observability.tracing import EngineTracing, SpanHandle, usage_attributes
from app.project.project import Project


def cost_model_for(project: Project, *, price_map: PriceMap | None = None) -> CostModel:
    prices: dict[str, ModelPrice] = {}
    for model, overrides in project.config.models.items():
        if overrides.input_cost_per_token is not None or overrides.output_cost_per_token is not None:
            prices[model] = ModelPrice(
                input_cost_per_token=overrides.input_cost_per_token or 0.0,
                output_cost_per_token=overrides.output_cost_per_token or 0.0,
            )
    return CostModel(prices, price_map=price_map)


class Engine:
    def __init__(
        self,
        project: Project,
        *,
        settings: EngineSettings | None = None,
        llm: LLMClient | None = None,
        llm_middleware: LLMMiddleware | None = None,
        clock: Clock | None = None,
        agent_trigger: AgentTrigger | None = None,
        connic: ConnicServices | None = None,
    ) -> None:
        """`agent_trigger`: how `trigger_agent` starts a run (a worker's goes through Kafka;
        None: this engine runs the child itself). `connic`: every backend of Connic's
        predefined tools at once (tests); None: the run-history database for `db_*`."""
        self.project = project
        self.settings = settings or EngineSettings()
        self._clock: Clock = clock or SystemClock()
        self._closers: list[Callable[[], Awaitable[None]]] = []  # what aclose releases: only what we built
        if llm is None:
            router = ModelRouter.for_project(project, self.settings)  # imports litellm only if a model needs it
            self._closers.append(router.aclose)
            llm = router
            self._cost_model = cost_model_for(project, price_map=litellm_price_map_price)
        else:
            self._cost_model = cost_model_for(project)
        self._llm: LLMClient = llm_middleware(llm) if llm_middleware is not None else llm
        self._tracing = EngineTracing(Redactor.from_environment(extra=[self.settings.llm_api_key]))
        self._tools = ToolExecutor(
            threads=self.settings.tool_threads,
            isolation=ProcessIsolation(
                memory_mb=self.settings.process_memory_mb,
                default_cpu_seconds=self.settings.process_cpu_seconds,
                slots=self.settings.process_slots,
            ),
            project_root=project.root,
        )
        self._rng = random.Random(self.settings.random_seed)
        if connic is None:
            in_process = None if agent_trigger is not None else InProcessTrigger(self.run)
            if in_process is not None:
                self._closers.append(in_process.aclose)
            search = project.config.web_search
            embeddings = knowledge_embeddings(project, self.settings)  # None: knowledge ranked lexically
            if embeddings is not None:
                self._closers.append(embeddings.aclose)
            connic = ConnicServices(
                **history_backends(self._closers),
                web_search=WebSearch(search) if search is not None else None,
                page_reader=page_reader(project),
                trigger=agent_trigger or in_process,
                environment=environment_from(),
                embedder=embeddings,
            )
        self._connic = connic
        self._steps = ConnicSteps(project, connic, self._clock)
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._cancel_requested: set[str] = set()

    async def run(
        self,
        request: RunRequest,
        *,
        on_span: Callable[[SpanEvent], None] | None = None,
        trace_context: TraceContext | None = None,
    ) -> RunResult:
        """`trace_context`: the span this run continues (a submitter's, the previous pipeline
        stage's), so its run span joins that trace; None starts a new trace."""
        started_at, t0 = self._clock.now(), self._clock.monotonic()
        agent = self.project.agents.get(request.agent)
        state = RunState()
        with self._tracing.run_span(
            request.run_id,
            f"run {request.agent}",
            on_span,
            parent=trace_context,
            agent=request.agent,
            tenant=request.tenant,
        ) as (tracer, span):
            timeout = self._timeout_for(agent, request, started_at)
            deps = RunDeps(
                run_id=request.run_id,
                context=self._context_for(request),
                llm=self._llm,
                tools=self._tools,
                cost_model=self._cost_model,
                tracer=tracer,
                clock=self._clock,
                deadline=Deadline(self._clock, timeout),
                rng=self._rng,
                jitter=self.settings.retry_jitter,
                outer_budget=carried_budget(request.pipeline),  # a pipeline stage's share of its budget
                history=tuple(turn.model_dump() for turn in request.history),
                approvals=request.approvals,
                tool_hooks=self.project.tool_hooks,
            )
            status, output, error, partial = await self._execute(request, agent, deps, state, timeout)
            self._annotate(span, status, error, state)
        ended_at = self._clock.now()
        return RunResult.for_request(
            request,
            status,
            started_at=started_at,
            ended_at=ended_at,
            duration_ms=(self._clock.monotonic() - t0) * 1000.0,
            output=_jsonable(output),
            partial=partial,
            error=self._run_error(error) if error else None,
            usage=state.usage,
            pipeline=result_pipeline(request, agent, state, started_at),
            # StopProcessing(publish_outbound=False): no callback is delivered for this run.
            callback_url=request.callback_url if state.publish_outbound else None,
        )

    def cancel(self, run_id: str) -> bool:
        """End a running run as `cancelled` (its `run` call returns that result)."""
        task = self._running.get(run_id)
        if task is None or task.done():
            return False
        self._cancel_requested.add(run_id)
        task.cancel()
        return True

    async def aclose(self) -> None:
        self._tools.close()
        await self._tracing.aclose()  # with an OTLP export: its last spans are sent here
        for close in self._closers:
            await close()

    async def _execute(
        self, request: RunRequest, agent: Any, deps: RunDeps, state: RunState, timeout: float | None
    ) -> tuple[RunStatus, Any, FerryError | None, bool]:
        if agent is None:
            known = ", ".join(sorted(self.project.agents))
            return RunStatus.FAILED, None, BadInputError(f"no agent {request.agent!r} (known: {known})"), False
        task = asyncio.current_task()
        assert task is not None
        self._running[request.run_id] = task
        middleware = self.project.middleware.get(agent.name)
        namespaces = getattr(agent, "retrieval", None) or getattr(agent, "knowledge", None)
        connic_run = self._connic.run_for(
            request, self.project.agents, getattr(agent, "database", None), namespaces, getattr(agent, "files", None)
        )
        with bound(connic_run):  # connic.tools calls reach this run only
            outcome = await self._guarded(request, agent, deps, state, timeout, middleware)
            if middleware is not None and middleware.cleanup is not None:
                status, output, error, _ = outcome
                run = {"run_id": request.run_id, "status": status.value, "output": output}
                run["error"] = error.message if error is not None else None
                await run_cleanup(middleware, run, deps.context)
        return outcome

    async def _guarded(
        self, request: RunRequest, agent: Any, deps: RunDeps, state: RunState, timeout: float | None, middleware: Any
    ) -> tuple[RunStatus, Any, FerryError | None, bool]:
        task = asyncio.current_task()
        assert task is not None
        try:
            async with self._clock.timeout(timeout) as scope:
                output = await self._steps.run(request, agent, deps, state, middleware)
            if state.blocked is not None:
                return RunStatus.BLOCKED, None, BadInputError(f"blocked by the {state.blocked}"), False
            return RunStatus.COMPLETED, output, None, False
        except TimeoutError:
            if not scope.expired():
                return RunStatus.FAILED, None, InternalError("unexpected TimeoutError escaped the run"), False
            return self._timed_out(agent, state, RunTimeoutError(timeout or 0.0))
        except RunTimeoutError as exc:  # a chain stage's own timeout
            return self._timed_out(agent, state, exc)
        except ApprovalPending as exc:  # parked until a human decides (app/engine/approval.py)
            return RunStatus.PAUSED, None, exc, False
        except FerryError as exc:
            return RunStatus.FAILED, None, exc, False
        except asyncio.CancelledError:
            if request.run_id not in self._cancel_requested:
                raise
            task.uncancel()
            return RunStatus.CANCELLED, None, CancelledRunError("the run was cancelled"), False
        except Exception as exc:
            return RunStatus.FAILED, None, InternalError(f"{type(exc).__name__}: {exc}"), False
        finally:
            self._running.pop(request.run_id, None)
            self._cancel_requested.discard(request.run_id)

    def _run_error(self, error: FerryError) -> RunError:
        """The result's error, masked as the run's spans are: a provider's refusal may quote
        the API key, and a result travels to every consumer of runs.results."""
        found = RunError.from_exception(error)
        redactor = self._tracing.redactor
        details = redactor.mapping(found.details) if found.details is not None else None
        return found.model_copy(update={"message": redactor.text(found.message), "details": details})

    @staticmethod
    def _timed_out(
        agent: Any, state: RunState, error: RunTimeoutError
    ) -> tuple[RunStatus, Any, FerryError | None, bool]:
        if getattr(agent, "on_timeout", "partial") == "partial":
            partial = state.partial_output()
            return RunStatus.TIMEOUT, partial, error, partial is not None
        return RunStatus.TIMEOUT, None, error, False

    def _timeout_for(self, agent: Any, request: RunRequest, started_at: datetime) -> float | None:
        timeout = getattr(agent, "timeout", None)
        seconds = float(timeout) if timeout is not None else None
        if request.deadline is not None:
            deadline = request.deadline
            if deadline.tzinfo is None:  # a producer's naive timestamp is taken as UTC
                deadline = deadline.replace(tzinfo=UTC)
            left = max(0.0, (deadline - started_at).total_seconds())
            seconds = left if seconds is None else min(seconds, left)
        return seconds

    @staticmethod
    def _context_for(request: RunRequest) -> dict[str, Any]:
        """A fresh dict per run; the keys Ferry sets cannot be overridden by the request."""
        context: dict[str, Any] = dict(request.context)
        context.update(
            run_id=request.pipeline.root_run_id if request.pipeline else request.run_id,  # a stage: the pipeline's
            agent_name=request.agent,
            connector_id=request.trigger.metadata.get("connector") or request.trigger.source,  # Connic's key
            timestamp=datetime.now(UTC).isoformat(),
            tenant=request.tenant,
            payload=dict(request.input),
            trigger=request.trigger.model_dump(mode="json"),
        )
        if request.pipeline is not None:
            context["pipeline"] = request.pipeline.model_dump(mode="json")
        return context

    @staticmethod
    def _annotate(span: SpanHandle, status: RunStatus, error: FerryError | None, state: RunState) -> None:
        usage = state.usage
        span.set(
            status=status.value,
            **usage_attributes(usage),
            llm_calls=usage.llm_calls,
            tool_calls=usage.tool_calls,
            llm_retries=state.llm_retries,
        )
        if state.guardrail_warnings:
            span.set(guardrail_warnings=list(state.guardrail_warnings))
        if error is not None:
            span.fail(error)


def _jsonable(value: Any) -> Any:
    """The output as plain JSON values: a tool agent may return Decimals, dates, sets…,
    and a result must serialise on any topic (unknown types become their `str`)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError, RecursionError):  # e.g. a circular structure
        return repr(value)[:10_000]
