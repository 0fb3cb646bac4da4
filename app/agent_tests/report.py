"""What a test session found: per run, per case, for the whole suite.

The field names of a case follow what Connic's `connic test --json` prints for one
(`agent_name`, `test_name`, `passed`, `runs`, `successes`, `success_threshold`,
`failure_reason`), so a CI script written for either reads both.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class CaseStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # the agent ran and an expectation did not hold often enough
    ERRORED = "errored"  # the case could not run (no provider, a builder that raised, …)


class CassetteUse(StrEnum):
    NONE = "none"  # no cassette: the configured model answered
    REPLAYED = "replayed"
    RECORDED = "recorded"


class RunReport(BaseModel):
    """One run of a case: its outcome and, when it did not pass, why."""

    index: int
    run_id: str
    status: str  # the RunResult status: completed, failed, timeout, …
    passed: bool
    failures: list[str] = Field(default_factory=list)
    output: Any = None
    error: str | None = None
    tool_calls: list[str] = Field(default_factory=list)  # refs, in call order
    duration_ms: float = 0.0


class CaseReport(BaseModel):
    agent_name: str
    test_name: str
    file: str  # the suite, relative to the project root
    status: CaseStatus
    runs: int
    successes: int
    success_threshold: int
    failure_reason: str | None = None
    cassette: CassetteUse = CassetteUse.NONE
    duration_ms: float = 0.0
    run_reports: list[RunReport] = Field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.agent_name}::{self.test_name}"

    @property
    def passed(self) -> bool:
        return self.status is CaseStatus.PASSED

    def as_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["passed"] = self.passed
        return data


class SuiteReport(BaseModel):
    """Every case that ran; what the deploy gate and `ferry test` decide on."""

    cases: list[CaseReport] = Field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def passed(self) -> int:
        return sum(1 for case in self.cases if case.status is CaseStatus.PASSED)

    @property
    def failed(self) -> int:
        return sum(1 for case in self.cases if case.status is CaseStatus.FAILED)

    @property
    def errored(self) -> int:
        return sum(1 for case in self.cases if case.status is CaseStatus.ERRORED)

    @property
    def ok(self) -> bool:
        """All cases passed (and there was at least one)."""
        return bool(self.cases) and self.passed == len(self.cases)

    @property
    def status(self) -> str:
        if self.failed:
            return "failed"
        if self.errored:
            return "error"
        return "passed"

    def exit_code(self) -> int:
        """0 every case passed; 1 a case failed; 2 a case could not run (and none failed)."""
        if self.failed:
            return 1
        return 2 if self.errored or not self.cases else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "passed": self.passed,
            "failed": self.failed,
            "errored": self.errored,
            "duration_ms": round(self.duration_ms, 1),
            "cases": [case.as_dict() for case in self.cases],
        }
