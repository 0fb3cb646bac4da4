"""`VersionedRunner`: a worker runs each request on the engine of its deployment.

Each version a worker uses is materialised once into a directory of its own
(`<root>/<version>/`), loaded with the ordinary project loader (its tools imported from
there, under a package name of their own: two versions never share a module) and given
an engine built by the worker. The version of a run is chosen as it starts
(`canary.choose_version`: its pin, else the canary slice, else the active one) and
written into its request, so the result, the history row and the pipeline's next stage
all carry it. A run holds its engine to the end: swapping the active version changes
only which engine the *next* runs get, so runs in flight finish on the version they
started with, and nothing restarts.

A new active state is applied only once its versions are loaded (`follow`): until then
new runs keep the previous version, and a version that fails to load is never switched
to (the worker logs why and keeps serving the one before).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from app.contracts import RunError, RunRequest, RunResult, RunStatus, SpanEvent
from app.contracts.errors import ErrorCategory
from app.contracts.spans import SpanKind
from app.contracts.trace_context import TraceContext
from app.deploy.canary import choose_version
from app.deploy.errors import DeploymentError
from app.deploy.log import Book, DeploymentLog
from app.deploy.records import ActiveState, Deployment
from app.project import load_project
from app.project.project import Project
from app.streams.naming import TopicNames

log = logging.getLogger("ferry.deployments")  # a line per switch in `ferry worker`'s log

#: The run span's attribute naming the deployment that ran it.
DEPLOYMENT_ATTR = "deployment"
#: Loaded versions kept warm besides the active one and the canary: the rollback targets.
KEEP_PREVIOUS = 2


class VersionEngine(Protocol):
    async def run(
        self,
        request: RunRequest,
        *,
        on_span: Callable[[SpanEvent], None] | None = None,
        trace_context: TraceContext | None = None,
    ) -> RunResult: ...

    def cancel(self, run_id: str) -> bool: ...

    async def aclose(self) -> None: ...


@dataclass
class Loaded:
    version: str
    project: Project
    engine: VersionEngine


def materialise(deployment: Deployment, root: Path) -> Path:
    """The deployment's files under `root/<version>/` (written once; a directory appears whole)."""
    target = root / deployment.version
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f".{deployment.version}-", dir=root))
    for rel, data in deployment.file_bytes().items():
        path = (staging / rel).resolve()
        if not path.is_relative_to(staging.resolve()):
            raise DeploymentError(f"deployment {deployment.version}: file {rel!r} would land outside its directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (staging / "agents").mkdir(exist_ok=True)
    try:
        os.rename(staging, target)
    except OSError:  # another load got there first: theirs is the same bytes
        shutil.rmtree(staging, ignore_errors=True)
    return target


class VersionedRunner:
    def __init__(
        self,
        base: VersionEngine,
        make_engine: Callable[[Project], VersionEngine],
        *,
        on_switch: Callable[[Loaded | None], None] | None = None,
        root: Path | None = None,
    ) -> None:
        """`base`: the engine of the worker's own project (used while no deployment is
        active); `on_switch`: told the newly active version once it is in force."""
        self.base = base
        self._make_engine = make_engine
        self._on_switch = on_switch
        self._root = root or Path(tempfile.mkdtemp(prefix="ferry-deployments-"))
        self._owns_root = root is None
        self.book = Book()
        self.state = ActiveState()  # the state in force (its versions loaded)
        self.loaded: dict[str, Loaded] = {}
        self._loading: dict[str, asyncio.Task[Loaded]] = {}
        self._in_flight: Counter[str] = Counter()
        self._engine_of_run: dict[str, VersionEngine] = {}
        self.switches = 0
        self._changed = asyncio.Condition()

    @property
    def active(self) -> Loaded | None:
        return self.loaded.get(self.state.active) if self.state.active else None

    async def follow(self, book: Book) -> None:
        """Put `book`'s active state in force once its versions are loaded."""
        self.book = book
        state = book.state
        wanted = [v for v in (state.active, state.canary.version if state.canary else None) if v]
        try:
            for version in wanted:
                await self.load(version)
        except Exception as exc:
            log.error("deployments: staying on %s: %s could not be loaded: %s", self.state.active, wanted, exc)
            return
        changed = state.active != self.state.active
        self.state = state
        self.switches += 1
        async with self._changed:
            self._changed.notify_all()
        if changed or self.switches == 1:
            log.info("deployments: %s active%s", state.active, f", canary {state.canary}" if state.canary else "")
            if self._on_switch is not None:
                self._on_switch(self.active)
        await self._evict()

    async def in_force(self, version: str) -> None:
        """Return once `version` is the active version here (new runs start on it)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.state.active == version)

    async def load(self, version: str) -> Loaded:
        found = self.loaded.get(version)
        if found is not None:
            return found
        task = self._loading.get(version)
        if task is None:
            task = asyncio.create_task(self._load(version), name=f"load deployment {version}")
            self._loading[version] = task
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._loading.pop(version, None)

    async def _load(self, version: str) -> Loaded:
        deployment = self.book.deployments.get(version)
        if deployment is None:
            raise DeploymentError(f"no deployment {version!r} on the deployments topic")
        # Files and tool imports off the event loop: runs of other versions go on meanwhile.
        project = await asyncio.to_thread(lambda: load_project(materialise(deployment, self._root)))
        loaded = Loaded(version, project, self._make_engine(project))
        self.loaded[version] = loaded
        return loaded

    async def run(
        self,
        request: RunRequest,
        *,
        on_span: Callable[[SpanEvent], None] | None = None,
        trace_context: TraceContext | None = None,
    ) -> RunResult:
        # A pipeline's stages split by the pipeline's run id: a canary takes whole pipelines.
        split_by = request.pipeline.root_run_id if request.pipeline is not None else request.run_id
        version = choose_version(split_by, self.state, request.deployment)
        if version is None:
            return await self._run_on(self.base, request, on_span, trace_context)
        try:
            loaded = await self.load(version)
        except Exception as exc:
            return _refused(request.model_copy(update={"deployment": version}), str(exc))
        self._in_flight[version] += 1
        try:
            pinned = request.model_copy(update={"deployment": version})
            return await self._run_on(loaded.engine, pinned, _tagged(on_span, version), trace_context)
        finally:
            self._in_flight[version] -= 1

    async def _run_on(
        self,
        engine: VersionEngine,
        request: RunRequest,
        on_span: Callable[[SpanEvent], None] | None,
        trace_context: TraceContext | None,
    ) -> RunResult:
        self._engine_of_run[request.run_id] = engine
        try:
            return await engine.run(request, on_span=on_span, trace_context=trace_context)
        finally:
            self._engine_of_run.pop(request.run_id, None)

    def cancel(self, run_id: str) -> bool:
        engine = self._engine_of_run.get(run_id)
        return engine.cancel(run_id) if engine is not None else False

    def in_flight(self) -> dict[str, int]:
        """Version → runs executing on it now."""
        return {v: n for v, n in self._in_flight.items() if n > 0}

    async def _evict(self) -> None:
        """Close the engines of versions neither in force, nor a recent rollback target, nor running."""
        keep = {self.state.active, *(self.state.previous[-KEEP_PREVIOUS:])}
        if self.state.canary is not None:
            keep.add(self.state.canary.version)
        for version in [v for v in self.loaded if v not in keep and self._in_flight[v] <= 0]:
            loaded = self.loaded.pop(version)
            await loaded.engine.aclose()

    async def aclose(self) -> None:
        for loaded in list(self.loaded.values()):
            await loaded.engine.aclose()
        self.loaded.clear()
        if self._owns_root:
            shutil.rmtree(self._root, ignore_errors=True)


def _tagged(on_span: Callable[[SpanEvent], None] | None, version: str) -> Callable[[SpanEvent], None] | None:
    """`on_span` with the run span carrying its deployment (`runs.traces`, the history's spans)."""
    if on_span is None:
        return None
    forward = on_span

    def tag(event: SpanEvent) -> None:
        if event.kind == SpanKind.RUN:
            event = event.model_copy(update={"attributes": {**event.attributes, DEPLOYMENT_ATTR: version}})
        forward(event)

    return tag


def _refused(request: RunRequest, why: str) -> RunResult:
    now = datetime.now(UTC)
    return RunResult.for_request(
        request,
        RunStatus.FAILED,
        started_at=now,
        ended_at=now,
        error=RunError(category=ErrorCategory.BAD_INPUT, message=f"deployment {request.deployment}: {why}"),
    )


async def active_project(bootstrap: str, names: TopicNames, root: Path) -> Project:
    """The active deployment's project, materialised under `root`: what a worker started with
    no project folder of its own runs (`ferry worker --from-deployments`)."""
    async with DeploymentLog(bootstrap, names) as deployments:
        book = await deployments.read()
    if book.state.active is None:
        raise DeploymentError("no active deployment on ferry.deployments — fix: `ferry deploy` first")
    deployment = book.get(book.state.active)
    return await asyncio.to_thread(lambda: load_project(materialise(deployment, root)))
