"""Running suites through the engine: what passes, what fails and why, cassettes recorded and replayed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.agent_tests import CaseStatus, CassetteUse, SuiteReport, arun_project_tests
from app.contracts.errors import AuthError
from app.engine.model import LLMRequest
from app.engine.testing import FunctionLLM, Outcome
from tests.unit.agent_tests.conftest import calculator_answer


def _by_name(report: SuiteReport) -> dict[str, object]:
    return {case.test_name: case for case in report.cases}


async def test_the_connic_fixture_runs_mocks_builders_files_children_and_tool_agents(
    connic_project: Path, model: FunctionLLM
) -> None:
    finished: list[str] = []
    report = await arun_project_tests(connic_project, real_model=model, on_case=lambda c: finished.append(c.id))
    cases = {case.test_name: case for case in report.cases}
    assert finished == [case.id for case in report.cases]  # progress as each case finishes
    for name in (
        "adds_two_numbers",
        "multiplies_numbers_from_a_builder",
        "notifies_the_team_through_a_mock",  # the real notify.send raises: only the mock passes
        "approves_nothing_yet",
        "dispatches_to_the_summarizer_and_the_doubler",
        "reads_the_attached_note",
        "doubles_a_number",
    ):
        assert cases[name].status is CaseStatus.PASSED, (name, cases[name].failure_reason)
    assert cases["adds_two_numbers"].successes == 3
    assert cases["adds_two_numbers"].run_reports[0].tool_calls == ["math.calculator.add"]
    # The parent's calls only: the children's (the doubler's tool) are theirs.
    assert cases["dispatches_to_the_summarizer_and_the_doubler"].run_reports[0].tool_calls == ["trigger_agent"] * 2
    assert (report.passed, report.failed, report.errored) == (7, 0, 0)
    assert report.exit_code() == 0


async def test_child_agent_expectations_fail_naming_the_child(connic_project: Path, model: FunctionLLM) -> None:
    suite = connic_project / "tests" / "dispatcher.yaml"
    suite.write_text(
        suite.read_text()
        .replace('output.summary != ""', 'output.summary == "something else"')
        .replace("expected_triggered: 1", "expected_result: output.n == 42")
        + "      calculator:\n        expected_triggered: 1\n"
    )
    report = await arun_project_tests(suite, real_model=model)
    reason = report.cases[0].failure_reason or ""
    assert 'child summarizer: expected_result `output.summary == "something else"` is false' in reason
    assert (
        "child doubler: its output and tool calls can only be checked on a run triggered with wait_for_response=True"
        in reason
    )
    assert "child calculator: was never triggered" in reason


async def test_a_wrong_answer_fails_the_case_saying_which_expectation_and_what_came_out(connic_project: Path) -> None:
    wrong = FunctionLLM(lambda request: calculator_answer(request, wrong_sum=True))
    report = await arun_project_tests(connic_project, real_model=wrong, pattern="adds_two_numbers")
    (case,) = report.cases
    assert case.status is CaseStatus.FAILED
    assert case.successes == 0
    assert case.failure_reason is not None
    assert case.failure_reason.startswith("0/3 runs passed, 60% needed; run 1: expected_result `output.sum == 10")
    assert '"sum": 11' in case.failure_reason
    assert "no call satisfies `params.a == 4 and result == 10`" not in case.failure_reason  # the tool did add right
    assert report.exit_code() == 1


async def test_a_case_passes_when_enough_runs_pass_for_its_threshold(connic_project: Path) -> None:
    answers = {"count": 0}

    def one_wrong_in_three(request: LLMRequest) -> Outcome:
        final = any(m.get("role") == "tool" for m in request.messages)
        if final:
            answers["count"] += 1
        return calculator_answer(request, wrong_sum=final and answers["count"] == 1)

    report = await arun_project_tests(connic_project, real_model=FunctionLLM(one_wrong_in_three), pattern="adds_two")
    (case,) = report.cases
    assert (case.status, case.successes, case.runs) == (CaseStatus.PASSED, 2, 3)  # 67 % ≥ 60 %
    assert sum(not run.passed for run in case.run_reports) == 1


async def test_strict_mocks_refuse_an_unmocked_tool_and_fail_the_case(connic_project: Path, model: FunctionLLM) -> None:
    (connic_project / "tests" / "strict.yaml").write_text(
        'version: "1.0"\nagent: calculator\ndefaults:\n  mocks: calc_mocks\n  strict_mocks: true\n'
        'tests:\n  - name: adds_for_real\n    payload: \'{"a": 1, "b": 2}\'\n'
    )
    report = await arun_project_tests(connic_project / "tests" / "strict.yaml", real_model=model)
    (case,) = report.cases
    assert case.status is CaseStatus.FAILED
    assert "strict_mocks: math.calculator.add has no mock (tests/mocks/calc_mocks.py), so it was not run" in (
        case.failure_reason or ""
    )


async def test_tool_call_expectations_fail_naming_the_tool(connic_project: Path, model: FunctionLLM) -> None:
    (connic_project / "tests" / "tools.yaml").write_text(
        'version: "1.0"\nagent: calculator\ntests:\n'
        '  - name: wrong_expectations\n    payload: \'{"a": 1, "b": 2}\'\n'
        "    expected_tool_calls:\n      - math.calculator.multiply\n      - math.calculator.add: params.a == 5\n"
        "    expected_no_tool_calls:\n      - add\n"
    )
    report = await arun_project_tests(connic_project / "tests" / "tools.yaml", real_model=model)
    reason = report.cases[0].failure_reason or ""
    assert "math.calculator.multiply was never called (called: [math.calculator.add])" in reason
    assert "math.calculator.add: no call satisfies `params.a == 5` (1 call(s))" in reason
    assert "add was called 1 time(s) but must not be" in reason  # the name the model saw works too


async def test_no_cassette_and_no_key_is_an_error_that_says_how_to_fix_it(
    connic_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FERRY_LLM_BASE_URL", raising=False)
    report = await arun_project_tests(connic_project, pattern="calculator::adds")
    (case,) = report.cases
    assert case.status is CaseStatus.ERRORED
    reason = case.failure_reason or ""
    assert reason.startswith("no cassette (tests/cassettes/calculator/adds_two_numbers.json) and no provider key")
    assert "OPENAI_API_KEY" in reason and "ferry test --record" in reason


def _no_model(request: LLMRequest) -> Outcome:
    raise AuthError("the real model must not be called when a cassette exists")


async def test_record_then_replay_offline_then_fail_clearly_when_the_prompt_changed(
    connic_project: Path, model: FunctionLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FERRY_LLM_BASE_URL", raising=False)
    recorded = await arun_project_tests(connic_project, real_model=model, record=True, pattern="*")
    assert [case.cassette for case in recorded.cases if case.agent_name != "doubler"] == [CassetteUse.RECORDED] * 6
    path = connic_project / "tests" / "cassettes" / "calculator" / "adds_two_numbers.json"
    cassette = json.loads(path.read_text())
    assert len(cassette["runs"]) == 3 and len(cassette["runs"][0]["exchanges"]) == 2
    assert cassette["runs"][0]["exchanges"][0]["request"]["model"] == "openai/gpt-4o-mini"
    calls_while_recording = len(model.requests)

    replayed = await arun_project_tests(connic_project, pattern="*")  # no key, no real model
    assert [(case.status, case.cassette) for case in replayed.cases if case.agent_name != "doubler"] == [
        (CaseStatus.PASSED, CassetteUse.REPLAYED)
    ] * 6, [case.failure_reason for case in replayed.cases]  # children's fresh run ids included
    assert len(model.requests) == calls_while_recording
    again = await arun_project_tests(connic_project, real_model=FunctionLLM(_no_model), pattern="*")
    assert again.failed == 0 and again.errored == 0

    agent = connic_project / "agents" / "calculator.yaml"
    agent.write_text(agent.read_text().replace("never do arithmetic yourself", "never guess"))
    changed = await arun_project_tests(connic_project, pattern="calculator::adds")
    (case,) = changed.cases
    assert case.status is CaseStatus.FAILED
    reason = case.failure_reason or ""
    assert "the cassette no longer matches: LLM call 1: the system prompt changed" in reason
    assert "never do arithmetic" in reason and "never guess" in reason
    assert "tests/cassettes/calculator/adds_two_numbers.json; `ferry test --record` refreshes it" in reason


async def test_a_changed_tool_result_and_an_extra_call_are_named(
    connic_project: Path, model: FunctionLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FERRY_LLM_BASE_URL", raising=False)
    await arun_project_tests(connic_project, real_model=model, record=True, pattern="calculator::adds")
    tool = connic_project / "tools" / "math" / "calculator.py"
    tool.write_text(tool.read_text().replace("return a + b", "return a + b + 0.5"))
    report = await arun_project_tests(connic_project, pattern="calculator::adds")
    assert "LLM call 2: the result of tool add changed" in (report.cases[0].failure_reason or "")


async def test_a_tool_agent_records_no_cassette(connic_project: Path, model: FunctionLLM) -> None:
    report = await arun_project_tests(connic_project, real_model=model, record=True, pattern="doubles_a_number")
    assert report.cases[0].status is CaseStatus.PASSED
    assert report.cases[0].cassette is CassetteUse.NONE
    assert not (connic_project / "tests" / "cassettes").exists()


async def test_timeout_s_bounds_each_run(connic_project: Path) -> None:
    (connic_project / "tests" / "slow.yaml").write_text(
        'version: "1.0"\nagent: calculator\ndefaults:\n  timeout_s: 1\n'
        'tests:\n  - name: answers_too_slowly\n    payload: \'{"a": 1, "b": 2}\'\n'
    )
    slow = FunctionLLM(calculator_answer, latency=30.0)
    report = await arun_project_tests(connic_project / "tests" / "slow.yaml", real_model=slow)
    (case,) = report.cases
    assert case.status is CaseStatus.FAILED
    assert case.duration_ms < 10_000
    assert (case.failure_reason or "").startswith("the run ended timeout (run did not finish within 1s)")
