"""`DevLoop`: the project folder watched, every save an ephemeral deployment through the real path.

A save is noticed by polling the files' (mtime, size) every `poll_s` (no watcher
dependency, the same on every OS); once the tree is quiet for `settle_s` it is linted
where it is (errors are printed with file and line, and the loop carries on), then
published to `ferry.deployments` as an *ephemeral* deployment and made active, exactly as
`ferry deploy` would. The worker(s) of the loop switch to it between runs, like any
worker following a real deployment. The tests of the agents whose files changed run
afterwards (`ferry test`, filtered to those agents; every agent when a shared file —
a tool, a schema, `ferry.yaml` — changed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app.contracts.errors import FerryError
from app.deploy.errors import DeploymentError
from app.deploy.log import DeploymentLog
from app.deploy.records import Deployment
from app.deploy.snapshot import DEPLOYED_FILES, DEPLOYED_FOLDERS, plain, snapshot_directory, version_of
from app.project import format_problem, lint_project
from app.streams.naming import TopicNames

log = logging.getLogger("ferry.dev")

WATCHED_FOLDERS = (*DEPLOYED_FOLDERS, "tests")
Fingerprint = dict[str, tuple[int, int]]


def fingerprint(root: Path) -> Fingerprint:
    """(mtime in ns, size) of every watched file."""
    found: Fingerprint = {}
    for name in DEPLOYED_FILES:
        with contextlib.suppress(FileNotFoundError):  # deleted since listed: gone
            stat = (root / name).stat()
            found[name] = (stat.st_mtime_ns, stat.st_size)
    for folder in WATCHED_FOLDERS:
        for dirpath, dirnames, filenames in os.walk(root / folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__pycache__"]
            for filename in filenames:
                path = Path(dirpath) / filename
                rel = path.relative_to(root).as_posix()
                if plain(rel):
                    with contextlib.suppress(FileNotFoundError):  # deleted since listed: gone
                        stat = path.stat()
                        found[rel] = (stat.st_mtime_ns, stat.st_size)
    return found


def changed_paths(before: Fingerprint, after: Fingerprint) -> list[str]:
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def agents_to_test(changed: Iterable[str], agents: Iterable[str]) -> list[str] | None:
    """The agents whose tests to rerun (None: all of them, a shared file changed)."""
    known = set(agents)
    picked: set[str] = set()
    for path in changed:
        parts = PurePosixPath(path).parts
        stem = PurePosixPath(path).stem
        if parts[0] in ("agents", "tests") and len(parts) == 2 and stem in known:
            picked.add(stem)
        elif parts[0] == "tests" and ("cassettes" in parts or "mocks" in parts):
            agent = next((p for p in parts if p in known), None)
            if agent is None:
                return None
            picked.add(agent)
        else:
            return None
    return sorted(picked)


@dataclass
class Reload:
    version: str | None  # None: not published (lint errors, or no deployed file changed)
    changed: list[str]
    saved_at: float  # the newest mtime among the changed files (epoch seconds)
    published_at: float | None = None


class DevLoop:
    def __init__(
        self,
        root: Path,
        bootstrap: str,
        names: TopicNames,
        *,
        say: Callable[[str], None],
        in_force: Callable[[str], Awaitable[None]] | None = None,
        run_tests: Callable[[Path, list[str] | None], Awaitable[None]] | None = None,
        poll_s: float = 0.1,
        settle_s: float = 0.05,
        replication: int | None = None,
    ) -> None:
        """`in_force(version)` returns once the loop's worker runs `version`; `run_tests(root,
        agents)` reruns the tests of `agents` (None: all)."""
        self.root = root.resolve()
        self.bootstrap = bootstrap
        self.names = names
        self.say = say
        self._in_force = in_force
        self._run_tests = run_tests
        self.poll_s = poll_s
        self.settle_s = settle_s
        self.replication = replication
        self.version: str | None = None
        self.reloads: list[Reload] = []
        self._seen: Fingerprint = {}

    async def publish(self, changed: list[str] | None = None) -> str | None:
        """Lint the folder; publish and activate it if clean. None when lint found errors."""
        if not self._seen:  # the first look: saves from now on are changes to this
            self._seen = await asyncio.to_thread(fingerprint, self.root)
        report = await asyncio.to_thread(lint_project, self.root)
        for problem in report.errors:
            self.say(format_problem(problem))
        if not report.ok:
            self.say(f"{len(report.errors)} error(s): still running {self.version or 'the last good version'}")
            return None
        try:
            files = await asyncio.to_thread(snapshot_directory, self.root)
        except (DeploymentError, OSError) as exc:
            self.say(str(exc))
            return None
        version = version_of(files)
        if version == self.version:
            return version
        what = ", ".join(changed[:3]) + (", …" if changed and len(changed) > 3 else "") if changed else "start"
        deployment = Deployment.of(version, files, message=f"ferry dev: {what}", dirty=True, ephemeral=True)
        async with DeploymentLog(self.bootstrap, self.names, self.replication) as deployments:
            book = await deployments.read()
            if version not in book.deployments:
                await deployments.publish(deployment)
            await deployments.set_state(book.state.activate(version, reason="ferry dev"))
        self.version = version
        return version

    async def watch(self, stop: asyncio.Event) -> None:
        """Until `stop`: reload on every save (since the first `publish`, or now)."""
        if not self._seen:
            self._seen = await asyncio.to_thread(fingerprint, self.root)
        while not stop.is_set():
            changed, saved_at = await self._next_save(stop)
            if changed:
                await self.reload(changed, saved_at)

    async def watch_once(self, stop: asyncio.Event) -> None:
        """Wait for the next save (or `stop`), without publishing."""
        if not self._seen:
            self._seen = await asyncio.to_thread(fingerprint, self.root)
        while not stop.is_set():
            changed, _ = await self._next_save(stop)
            if changed:
                return

    async def _next_save(self, stop: asyncio.Event) -> tuple[list[str], float]:
        """(files changed, when the newest was saved) after one poll; nothing if none changed."""
        try:
            await asyncio.wait_for(stop.wait(), self.poll_s)
            return [], 0.0
        except TimeoutError:
            pass
        now = await asyncio.to_thread(fingerprint, self.root)
        if now == self._seen:
            return [], 0.0
        while True:  # an editor may write a file in several steps: wait for quiet
            await asyncio.sleep(self.settle_s)
            settled = await asyncio.to_thread(fingerprint, self.root)
            if settled == now:
                break
            now = settled
        changed = changed_paths(self._seen, now)
        self._seen = now
        return changed, max((now[p][0] for p in changed if p in now), default=time.time_ns()) / 1e9

    async def reload(self, changed: list[str], saved_at: float) -> Reload:
        try:
            version = await self.publish(changed)
        except FerryError as exc:
            self.say(f"reload failed: {exc}")
            version = None
        reload = Reload(version, changed, saved_at)
        if version is not None and self._in_force is not None:
            await self._in_force(version)
            reload.published_at = time.time()
            self.say(
                f"reloaded {version} ({', '.join(changed[:3])}) in {(reload.published_at - saved_at) * 1000:.0f} ms"
            )
        self.reloads.append(reload)
        if self._run_tests is not None and version is not None:
            project_agents = [p.stem for p in (self.root / "agents").glob("*.yaml") if not p.stem.startswith("_")]
            agents = agents_to_test(changed, project_agents)
            if agents != []:
                await self._run_tests(self.root, agents)
        return reload
