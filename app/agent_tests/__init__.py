"""`ferry test`: the agent test suites of a project (Connic's `tests/<agent>.yaml`), run locally.

    run_project_tests(project_dir, pattern=None, record=False, ...) -> SuiteReport
    arun_project_tests(...)                the same, awaited on the caller's loop
    collect_tests(path, pattern=None)      parse and check the suites, run nothing (`--list`)

Suites are parsed with the SDK's own models (`connic.test_schema`), run through the
engine (no Kafka), with tools recorded and optionally mocked, and LLM cassettes
recorded or replayed (`tests/cassettes/`). See docs/testing.md.
"""

from app.agent_tests.discovery import Case, Suite, suite_error
from app.agent_tests.report import CaseReport, CaseStatus, CassetteUse, RunReport, SuiteReport
from app.agent_tests.session import Collection, arun_project_tests, collect_tests, run_project_tests

__all__ = [
    "Case",
    "CaseReport",
    "CaseStatus",
    "CassetteUse",
    "Collection",
    "RunReport",
    "Suite",
    "SuiteReport",
    "arun_project_tests",
    "collect_tests",
    "run_project_tests",
    "suite_error",
]
