"""Middleware, tool hooks and custom guardrails: replaced by the case's mocks, or refused under the strict flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.agent_tests import CaseStatus, arun_project_tests
from app.engine.testing import FunctionLLM

SUITE = """version: "1.0"
agent: calculator
defaults:
  mocks: lifecycle_mocks
tests:
  - name: adds_with_every_phase_mocked
    payload: '{"a": 4, "b": 6}'
    expected_result: output.sum == 10
    expected_tool_calls:
      - math.calculator.add: params.a == 4
"""

REAL_PHASES_THAT_WOULD_BREAK_THE_RUN = {
    # after() spoils the answer, the before hook changes the numbers, the guardrail blocks every input.
    "middleware/calculator.py": "def after(response, context):\n    return '{\"sum\": -1}'\n",
    "hooks/calculator.py": "def before(tool_name, params, context):\n    return {**params, 'a': 100}\n",
    "guardrails/no_numbers.py": "def check(content, context):\n    return False\n",
}

MOCKS = """
def middleware_after(response, context):
    return response


def mock_math_calculator_add_hook_before(tool_name, params, context):
    return params


def guardrail_input_no_numbers(content, context):
    return True
"""


@pytest.fixture
def lifecycle_project(connic_project: Path) -> Path:
    for rel, text in REAL_PHASES_THAT_WOULD_BREAK_THE_RUN.items():
        (connic_project / rel).parent.mkdir(exist_ok=True)
        (connic_project / rel).write_text(text)
    agent = connic_project / "agents" / "calculator.yaml"
    agent.write_text(agent.read_text() + "guardrails:\n  input:\n    - type: custom\n      name: no_numbers\n")
    (connic_project / "tests" / "lifecycle.yaml").write_text(SUITE)
    return connic_project


async def test_the_real_phases_do_break_the_run_without_mocks(lifecycle_project: Path, model: FunctionLLM) -> None:
    (lifecycle_project / "tests" / "mocks" / "lifecycle_mocks.py").write_text("")
    report = await arun_project_tests(lifecycle_project / "tests" / "lifecycle.yaml", real_model=model)
    assert report.cases[0].status is CaseStatus.FAILED
    assert "blocked" in (report.cases[0].failure_reason or "")


async def test_mocks_replace_middleware_hooks_and_guardrails(lifecycle_project: Path, model: FunctionLLM) -> None:
    (lifecycle_project / "tests" / "mocks" / "lifecycle_mocks.py").write_text(MOCKS)
    report = await arun_project_tests(lifecycle_project / "tests" / "lifecycle.yaml", real_model=model)
    assert report.cases[0].status is CaseStatus.PASSED, report.cases[0].failure_reason


@pytest.mark.parametrize(
    ("flag", "said"),
    [
        (
            "strict_middleware_mocks",
            "strict_middleware_mocks: middleware/calculator.py after() has no middleware_after mock",
        ),
        ("strict_hook_mocks", "strict_hook_mocks: the before hook of math.calculator.add has no mock"),
        ("strict_guardrail_mocks", "strict_guardrail_mocks: the input guardrail 'no_numbers' has no mock"),
    ],
)
async def test_a_strict_flag_refuses_a_configured_phase_without_a_mock(
    lifecycle_project: Path, model: FunctionLLM, flag: str, said: str
) -> None:
    mocks = {
        "strict_middleware_mocks": MOCKS.replace("def middleware_after", "def unused_after"),
        "strict_hook_mocks": MOCKS.replace("def mock_math_calculator_add_hook_before", "def unused_before"),
        "strict_guardrail_mocks": MOCKS.replace("def guardrail_input_no_numbers", "def unused_check"),
    }[flag]
    (lifecycle_project / "tests" / "mocks" / "lifecycle_mocks.py").write_text(mocks)
    suite = lifecycle_project / "tests" / "lifecycle.yaml"
    suite.write_text(
        suite.read_text().replace("  mocks: lifecycle_mocks\n", f"  mocks: lifecycle_mocks\n  {flag}: true\n")
    )
    report = await arun_project_tests(suite, real_model=model)
    assert report.cases[0].status is CaseStatus.FAILED
    assert (report.cases[0].failure_reason or "").startswith(said)
