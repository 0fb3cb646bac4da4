"""`VersionedRunner`: each run on its deployment's engine; a switch never touches a run in flight."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.contracts import RunRequest, RunResult, RunStatus, SpanEvent
from app.contracts.spans import SpanKind
from app.deploy.log import Book
from app.deploy.records import ActiveState, Deployment
from app.deploy.snapshot import version_of
from app.deploy.versions import Loaded, VersionedRunner
from app.project.project import Project


def _files(cap: int, prompt: str) -> dict[str, bytes]:
    agent = (
        f"version: '1.0'\nname: echo\ndescription: d\nmodel: openai/sim\nsystem_prompt: {prompt}\n"
        f"max_concurrent_runs: {cap}\n"
    )
    return {"agents/echo.yaml": agent.encode()}


class FakeEngine:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.gate = asyncio.Event()
        self.gate.set()
        self.ran: list[str] = []
        self.closed = False

    async def run(self, request: RunRequest, *, on_span: Any = None, **_: Any) -> RunResult:
        self.ran.append(request.run_id)
        await self.gate.wait()
        now = datetime.now(UTC)
        if on_span is not None:
            for kind in (SpanKind.LLM_CALL, SpanKind.RUN):
                on_span(
                    SpanEvent(
                        run_id=request.run_id,
                        trace_id="t",
                        span_id=kind.value,
                        kind=kind,
                        name=kind.value,
                        start=now,
                        end=now,
                        duration_ms=0.0,
                    )
                )
        prompt = self.project.agents["echo"].system_prompt  # type: ignore[union-attr]
        return RunResult.for_request(request, RunStatus.COMPLETED, started_at=now, ended_at=now, output=prompt)

    def cancel(self, run_id: str) -> bool:
        return False

    async def aclose(self) -> None:
        self.closed = True


def _book(*deployments: Deployment) -> Book:
    book = Book()
    for deployment in deployments:
        book.deployments[deployment.version] = deployment
    return book


def _deployment(cap: int, prompt: str) -> Deployment:
    files = _files(cap, prompt)
    return Deployment.of(version_of(files), files)


async def test_runs_use_the_active_version_and_in_flight_runs_finish_on_theirs(tmp_path: Path) -> None:
    base = FakeEngine(None)  # type: ignore[arg-type]  # no deployment active never happens here
    engines: dict[str, FakeEngine] = {}
    switched: list[Loaded | None] = []

    def make(project: Project) -> FakeEngine:
        engine = FakeEngine(project)
        engines[project.root.name] = engine
        return engine

    runner = VersionedRunner(base, make, on_switch=switched.append, root=tmp_path)
    v1, v2 = _deployment(4, "one"), _deployment(16, "two")
    book = _book(v1, v2)
    book.state = ActiveState().activate(v1.version, "deploy")
    await runner.follow(book)
    assert switched[-1] is not None and switched[-1].project.agents["echo"].max_concurrent_runs == 4

    engines[v1.version].gate.clear()  # a v1 run that is still running when v2 becomes active
    slow = asyncio.create_task(runner.run(RunRequest.new("echo", {"message": "slow"})))
    await asyncio.sleep(0.01)
    assert runner.in_flight() == {v1.version: 1}
    book.state = book.state.activate(v2.version, "deploy")
    await runner.follow(book)
    fresh = await runner.run(RunRequest.new("echo", {"message": "new"}))
    assert (fresh.deployment, fresh.output) == (v2.version, "two")
    engines[v1.version].gate.set()
    old = await slow
    assert (old.deployment, old.output) == (v1.version, "one")

    spans: list[SpanEvent] = []
    pinned = await runner.run(RunRequest.new("echo", {"message": "p"}, deployment=v1.version), on_span=spans.append)
    assert pinned.deployment == v1.version  # a pinned run, while v2 is active
    assert [s.attributes.get("deployment") for s in spans] == [None, v1.version]  # the run span says which

    back = book.state.rolled_back()
    assert back is not None
    book.state = back
    await runner.follow(book)
    assert (await runner.run(RunRequest.new("echo", {"message": "r"}))).deployment == v1.version
    assert len(engines) == 2  # rollback reused the loaded v1: no reload
    await runner.aclose()
    assert all(e.closed for e in engines.values())


async def test_a_version_that_does_not_load_is_never_switched_to(tmp_path: Path) -> None:
    runner = VersionedRunner(FakeEngine(None), FakeEngine, root=tmp_path)  # type: ignore[arg-type]
    good = _deployment(2, "ok")
    broken_files = {"agents/echo.yaml": b"version: '1.0'\nname: echo\nmodel: [unclosed\n"}
    broken = Deployment.of(version_of(broken_files), broken_files)
    book = _book(good, broken)
    book.state = ActiveState().activate(good.version, "deploy")
    await runner.follow(book)
    book.state = book.state.activate(broken.version, "deploy")
    await runner.follow(book)
    assert runner.state.active == good.version
    assert (await runner.run(RunRequest.new("echo", {"message": "m"}))).deployment == good.version
    unknown = await runner.run(RunRequest.new("echo", {"message": "m"}, deployment="v000000000000"))
    assert unknown.status == RunStatus.FAILED and unknown.error is not None
    assert "no deployment 'v000000000000'" in unknown.error.message
    await runner.aclose()


async def test_a_canary_takes_whole_pipelines_split_by_the_pipelines_run_id(tmp_path: Path) -> None:
    from app.contracts.runs import PipelineContext

    runner = VersionedRunner(FakeEngine(None), FakeEngine, root=tmp_path)  # type: ignore[arg-type]
    active, canary = _deployment(2, "active"), _deployment(2, "canary")
    book = _book(active, canary)
    book.state = ActiveState().activate(active.version, "deploy").with_canary(canary.version, 50, "canary")
    await runner.follow(book)
    for n in range(40):
        root = f"pipeline-{n}"
        stages = [
            RunRequest.new("echo", {"message": "s"}, pipeline=PipelineContext(pipeline="p", stage=i, root_run_id=root))
            for i in range(3)
        ]
        versions = {(await runner.run(stage)).deployment for stage in stages}
        assert len(versions) == 1, root  # every stage of one pipeline on one version
    await runner.aclose()
