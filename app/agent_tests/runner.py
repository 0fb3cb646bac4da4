"""Running collected cases through the engine: N runs each, checked, counted, reported.

Every run gets its own engine over its own instrumented copy of the project (tools
recorded, mocked where the case says) and its own model client: the replay of its
cassette, the real model wrapped by a recorder (`--record`), or the real model alone
when the case has no cassette. Nothing of one run is shared with another, so the runs
of a case may go concurrently. A run's id is derived from the suite, the case and the
run's index, so whatever a prompt or a tool makes of it is the same at every replay.

A case passes when at least `success_threshold` percent of its `runs` pass. A case
that cannot run at all (no cassette and no provider key, an unreadable cassette) is
`errored`, not failed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType, ModuleType

from app.agent_tests.assertions import RunObservation, run_failures
from app.agent_tests.cassette import Cassette, CassetteRun, cassette_path, read_cassette, write_cassette
from app.agent_tests.cassette_clients import Mask, RecordingClient, ReplayClient
from app.agent_tests.child_runs import RecordingTrigger, child_failures
from app.agent_tests.discovery import Case
from app.agent_tests.lifecycle_doubles import LifecycleDoubles, with_lifecycle_doubles
from app.agent_tests.payloads import PreparedInput, clean_up, prepare_input
from app.agent_tests.report import CaseReport, CaseStatus, CassetteUse, RunReport
from app.agent_tests.tool_doubles import ToolDoubles, ToolRecorder, instrumented_project
from app.agent_tests.user_modules import MockModule, import_test_module
from app.contracts import RunRequest
from app.engine import Engine, EngineSettings
from app.engine.isolation import ProcessIsolation
from app.engine.model import LLMClient, LLMRequest, LLMResponse
from app.project.project import Project

_MISMATCH = "the cassette no longer matches: "
_RUN_NAMESPACE = uuid.UUID("6f0b8f8e-2d1c-4c55-9a53-2f7d0c3e9b41")

#: Tells a caller a case has finished (progress lines, a live report).
CaseCallback = Callable[[CaseReport], None]
#: The real model, asked for at the first call that needs it (never by a replayed or LLM-free case).
RealModel = Callable[[], LLMClient]


@dataclass
class CaseRunner:
    """Runs cases of one project; `real_model` is asked for only by cases that need it."""

    project: Project
    real_model: RealModel
    #: Where the suites live (their mocks, builders, files and cassettes); default: the project's root.
    tests_root: Path | None = None
    settings: EngineSettings = field(default_factory=EngineSettings)
    record: bool = False
    max_parallel_runs: int = 4
    #: Says why a case cannot reach the real model (missing keys…), or None when it can.
    missing_provider: Callable[[str], str | None] = lambda agent: None

    def __post_init__(self) -> None:
        self._root = self.tests_root or self.project.root
        self._isolation = ProcessIsolation(
            memory_mb=self.settings.process_memory_mb,
            default_cpu_seconds=self.settings.process_cpu_seconds,
            slots=self.settings.process_slots,
        )

    async def run_case(self, case: Case) -> CaseReport:
        started = time.monotonic()
        report = await self._run_case(case)
        report.duration_ms = (time.monotonic() - started) * 1000.0
        return report

    async def _run_case(self, case: Case) -> CaseReport:
        settings = case.settings
        mocks_name = settings.get("mocks")
        doubles = ToolDoubles(
            mocks=MockModule(mocks_name, import_test_module(self._root, "mocks", mocks_name)) if mocks_name else None,
            strict_mocks=bool(settings.get("strict_mocks")),
        )
        builder = import_test_module(self._root, "builders", settings["builder"]) if settings.get("builder") else None
        path = cassette_path(self._root, case.suite.key, case.name)
        cassette: Cassette | None = None
        if not self.record and path.is_file():
            try:
                cassette = read_cassette(path)
            except ValueError as exc:
                return self._errored(case, f"cassette {self._shown(path)}: {exc}")
        else:
            missing = self.missing_provider(case.suite.agent)
            if missing is not None:
                hint = "" if self.record else f"no cassette ({self._shown(path)}) and "
                return self._errored(case, f"{hint}{missing}")
        use = CassetteUse.RECORDED if self.record else CassetteUse.REPLAYED if cassette else CassetteUse.NONE
        limit = asyncio.Semaphore(self.max_parallel_runs)
        recorders: dict[int, RecordingClient] = {}

        async def one(index: int) -> RunReport:
            def client_for(mask: Mask) -> LLMClient:
                if cassette is not None:
                    return ReplayClient(cassette.for_run(index), mask)
                if self.record:
                    recorders[index] = RecordingClient(_Deferred(self.real_model), mask)
                    return recorders[index]
                return _Deferred(self.real_model)

            async with limit:
                return await self._run_once(case, index, client_for, doubles, builder)

        runs = int(settings["runs"])
        reports = list(await asyncio.gather(*(one(index) for index in range(runs))))
        if self.record and any(recorder.run.exchanges for recorder in recorders.values()):
            recorded = [recorders[index].run if index in recorders else CassetteRun() for index in range(runs)]
            write_cassette(path, Cassette(suite=case.suite.rel, agent=case.suite.agent, test=case.name, runs=recorded))
        elif self.record:
            use = CassetteUse.NONE  # no LLM call to record (a tool agent)
        return self._verdict(case, reports, use, path)

    async def _run_once(
        self,
        case: Case,
        index: int,
        client_for: Callable[[Mask], LLMClient],
        doubles: ToolDoubles,
        builder: ModuleType | None,
    ) -> RunReport:
        run_id = str(uuid.uuid5(_RUN_NAMESPACE, f"{case.suite.key}\x00{case.name}\x00{index}"))
        started = time.monotonic()
        try:
            prepared = await prepare_input(self._root, case.settings, builder)
        except Exception as exc:
            failure = f"the builder raised {type(exc).__name__}: {exc}"
            return RunReport(index=index, run_id=run_id, status="not run", passed=False, failures=[failure])
        recorder = ToolRecorder()
        project = instrumented_project(self.project, recorder, doubles, self._isolation)
        project = with_lifecycle_doubles(project, recorder, _lifecycle(doubles, case))
        project = _bounded(project, case.suite.agent, int(case.settings["timeout_s"]))
        trigger = RecordingTrigger(lambda child: engine.run(child))  # children run in this same engine
        client = client_for(trigger.mask)
        engine = Engine(project, settings=self.settings, llm=client, agent_trigger=trigger)
        request = RunRequest.new(
            case.suite.agent,
            prepared.input,
            run_id=run_id,
            trigger={"source": "test", "metadata": {"suite": case.suite.rel, "test": case.name, "run": index}},
        )
        try:
            result = await engine.run(request)
        finally:
            await trigger.aclose()
            await engine.aclose()
        error = result.error.message if result.error else None
        observed = RunObservation(
            status=result.status.value,
            output=result.output,
            error=error,
            input=prepared.input,
            calls=[call for call in recorder.calls if call.run_id in (None, run_id)],
            context=prepared.context,
        )
        # A replay that went off its recording explains everything after it: say only that.
        failures = [*recorder.violations, *_cassette_failures(client)] or [
            *run_failures(observed, case.settings),
            *child_failures(
                case.settings.get("expected_child_agents"), run_id, trigger.children, recorder.calls, prepared.context
            ),
        ]
        cleanup = await clean_up(builder, _run_for_cleanup(request, result.output, prepared), prepared, case.settings)
        if cleanup:
            failures.append(cleanup)
        return RunReport(
            index=index,
            run_id=run_id,
            status=result.status.value,
            passed=not failures,
            failures=failures,
            output=result.output,
            error=f"{result.error.category.value}: {error}" if result.error else None,
            tool_calls=[call.ref for call in observed.calls],
            duration_ms=(time.monotonic() - started) * 1000.0,
        )

    def _verdict(self, case: Case, reports: list[RunReport], use: CassetteUse, path: Path) -> CaseReport:
        runs, threshold = len(reports), int(case.settings["success_threshold"])
        successes = sum(1 for report in reports if report.passed)
        passed = successes * 100 >= threshold * runs
        reason = None
        if not passed:
            first = next(report for report in reports if not report.passed)
            reason = "; ".join(first.failures) or f"run {first.index + 1} failed"
            if use is CassetteUse.REPLAYED and any(f.startswith(_MISMATCH) for f in first.failures):
                reason += f" (cassette {self._shown(path)}; `ferry test --record` refreshes it)"
            if runs > 1:
                reason = f"{successes}/{runs} runs passed, {threshold}% needed; run {first.index + 1}: {reason}"
        return CaseReport(
            agent_name=case.suite.agent,
            test_name=case.name,
            file=case.suite.rel,
            status=CaseStatus.PASSED if passed else CaseStatus.FAILED,
            runs=runs,
            successes=successes,
            success_threshold=threshold,
            failure_reason=reason,
            cassette=use,
            run_reports=reports,
        )

    def _errored(self, case: Case, reason: str) -> CaseReport:
        return CaseReport(
            agent_name=case.suite.agent,
            test_name=case.name,
            file=case.suite.rel,
            status=CaseStatus.ERRORED,
            runs=int(case.settings["runs"]),
            successes=0,
            success_threshold=int(case.settings["success_threshold"]),
            failure_reason=reason,
        )

    def _shown(self, path: Path) -> str:
        return path.relative_to(self._root).as_posix()


def _lifecycle(doubles: ToolDoubles, case: Case) -> LifecycleDoubles:
    return LifecycleDoubles(
        mocks=doubles.mocks,
        strict_middleware=bool(case.settings.get("strict_middleware_mocks")),
        strict_hooks=bool(case.settings.get("strict_hook_mocks")),
        strict_guardrails=bool(case.settings.get("strict_guardrail_mocks")),
    )


def _bounded(project: Project, agent: str, seconds: int) -> Project:
    """`timeout_s` as the agent's own run timeout (the shorter of the two), so a run that
    takes too long ends `timeout` as it would in production, partial output and all."""
    spec = project.agents.get(agent)
    if spec is None or (spec.timeout is not None and spec.timeout <= seconds):
        return project
    bounded = spec.model_copy(update={"timeout": seconds})  # private attrs (its tools) are copied along
    return replace(project, agents=MappingProxyType({**project.agents, agent: bounded}))


class _Deferred:
    """The real model, built at the first call: a case that never calls one (a tool agent)
    costs no client (nor litellm's import)."""

    def __init__(self, make: RealModel) -> None:
        self._make = make

    async def complete(self, request: LLMRequest) -> LLMResponse:
        return await self._make().complete(request)


def _cassette_failures(client: LLMClient) -> list[str]:
    if not isinstance(client, ReplayClient):
        return []
    if client.mismatch is not None:
        return [f"{_MISMATCH}{client.mismatch}"]
    if client.unplayed():
        return [f"{_MISMATCH}the run ended with {client.unplayed()} recorded LLM call(s) not made"]
    return []


def _run_for_cleanup(request: RunRequest, output: object, prepared: PreparedInput) -> dict[str, object]:
    """What a builder's cleanup gets as `run`: input, output and the run's context."""
    context = {
        "run_id": request.run_id,
        "agent_name": request.agent,
        "tenant": request.tenant,
        "payload": prepared.input,
    }
    return {"input": prepared.input, "output": output, "context": context}
