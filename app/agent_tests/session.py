"""A test session: collect a project's suites, run the selected cases, report.

    report = run_project_tests("path/to/project")            # what `ferry test` runs
    report.passed, report.failed, report.errored, report.exit_code()

`collect_tests` only parses (for `--list`): it needs no loadable project, only the
agent names, read from `agents/**/*.yaml` without importing any tool. Running loads the
project with `app.project` and checks every suite first, so a bad file stops the session
before anything runs (`ConfigError`, one line `file:line: reason`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from app.agent_tests.discovery import (
    TESTS_DIR,
    Case,
    Suite,
    cases_of,
    check_suite,
    discover_suite_files,
    load_suite,
    matches_filter,
)
from app.agent_tests.report import SuiteReport
from app.agent_tests.runner import CaseCallback, CaseRunner
from app.agent_tests.user_modules import import_test_module
from app.contracts.errors import ConfigError
from app.engine import EngineSettings
from app.engine.model import LLMClient
from app.engine.model_router import ModelRouter
from app.project import Project, load_project


@dataclass(frozen=True)
class Collection:
    root: Path
    suites: tuple[Suite, ...]
    cases: tuple[Case, ...]  # after the filter


def project_root_of(path: str | Path) -> tuple[Path, Path | None]:
    """(project root, the one suite file to run or None): PATH is a project or a suite file in it."""
    target = Path(path).resolve()
    if target.is_file():
        for parent in target.parents:
            if parent.name == TESTS_DIR:
                return parent.parent, target
        raise ConfigError(f"{path} is not inside a tests/ folder of a project")
    if not target.is_dir():
        raise ConfigError(f"{path} does not exist")
    return target, None


def agent_names_in(root: Path) -> set[str]:
    """The `name:` of every agent file, read as plain YAML (no tool is imported)."""
    names: set[str] = set()
    agents_dir = root / "agents"
    for path in sorted(agents_dir.rglob("*.yaml")) if agents_dir.is_dir() else []:
        if path.name.startswith(("_", ".")):
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # `ferry lint` says what is wrong with it
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            names.add(data["name"])
    return names


def collect_tests(
    path: str | Path = ".", *, pattern: str | None = None, agent_names: Iterable[str] | None = None
) -> Collection:
    """Parse and check the suites of the project at `path` (or the one suite file `path`)."""
    root, only = project_root_of(path)
    known = set(agent_names) if agent_names is not None else agent_names_in(root)
    files = [only] if only is not None else discover_suite_files(root)
    suites: list[Suite] = []
    for file in files:
        suite = load_suite(root, file)
        if suite is None:
            continue
        check_suite(root, suite, known)
        suites.append(suite)
    cases = tuple(case for suite in suites for case in cases_of(suite) if matches_filter(case, pattern))
    return Collection(root=root, suites=tuple(suites), cases=cases)


async def arun_project_tests(
    project_dir: str | Path = ".",
    *,
    pattern: str | None = None,
    record: bool = False,
    project: Project | None = None,
    real_model: LLMClient | None = None,
    settings: EngineSettings | None = None,
    on_case: CaseCallback | None = None,
    max_parallel_runs: int = 4,
) -> SuiteReport:
    """Run the project's test cases (those matching `pattern`) and report.

    `project`: an already loaded project (the deploy gate's snapshot); else it is loaded
    from `project_dir`. `real_model`: the client of cases without a cassette (default:
    the engine's own router for the project, built only if a case needs it).
    """
    started = time.monotonic()
    root, _ = project_root_of(project_dir)
    project = project or load_project(root)
    settings = settings or EngineSettings()
    collection = collect_tests(project_dir, pattern=pattern, agent_names=project.agents)
    _import_suite_modules(collection)
    router: ModelRouter | None = None

    def real() -> LLMClient:
        nonlocal router
        if real_model is not None:
            return real_model
        if router is None:
            router = ModelRouter.for_project(project, settings)
        return router

    runner = CaseRunner(
        project=project,
        real_model=real,
        tests_root=collection.root,
        settings=settings,
        record=record,
        max_parallel_runs=max_parallel_runs,
        missing_provider=_provider_check(project, settings) if real_model is None else lambda agent: None,
    )
    report = SuiteReport()
    try:
        for case in collection.cases:
            case_report = await runner.run_case(case)
            report.cases.append(case_report)
            if on_case is not None:
                on_case(case_report)
    finally:
        if router is not None:
            await router.aclose()
    report.duration_ms = (time.monotonic() - started) * 1000.0
    return report


def run_project_tests(
    project_dir: str | Path = ".",
    *,
    pattern: str | None = None,
    record: bool = False,
    project: Project | None = None,
    real_model: LLMClient | None = None,
    settings: EngineSettings | None = None,
    on_case: CaseCallback | None = None,
    max_parallel_runs: int = 4,
) -> SuiteReport:
    """`arun_project_tests` from synchronous code, on an event loop of its own (litellm's
    HTTP clients, bound to that loop, are closed before it ends)."""

    async def session() -> SuiteReport:
        from app.engine.llm import close_llm_clients

        try:
            return await arun_project_tests(
                project_dir,
                pattern=pattern,
                record=record,
                project=project,
                real_model=real_model,
                settings=settings,
                on_case=on_case,
                max_parallel_runs=max_parallel_runs,
            )
        finally:
            await close_llm_clients()

    return asyncio.run(session())


def _import_suite_modules(collection: Collection) -> None:
    """Every mock and builder module the selected cases use, imported before any runs."""
    for case in collection.cases:
        if case.settings.get("mocks"):
            import_test_module(collection.root, "mocks", str(case.settings["mocks"]))
        if case.settings.get("builder"):
            import_test_module(collection.root, "builders", str(case.settings["builder"]))


def _provider_check(project: Project, settings: EngineSettings) -> Callable[[str], str | None]:
    known: dict[str, str | None] = {}

    def missing(agent: str) -> str | None:
        if agent not in known:
            from app.engine.provider_keys import missing_provider_keys

            keys = missing_provider_keys(project, agent, settings)
            known[agent] = (
                f"no provider key for the models of {agent!r} (missing: {', '.join(keys)}) — fix: set the key, "
                "point FERRY_LLM_BASE_URL at an OpenAI-compatible server, or record a cassette with "
                "`ferry test --record` where a model is reachable"
                if keys
                else None
            )
        return known[agent]

    return missing
