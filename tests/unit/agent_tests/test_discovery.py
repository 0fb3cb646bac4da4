"""Collecting suites: Connic's files collect unchanged; a bad file is one line with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from connic.cli import _discover_test_suites

from app.agent_tests import collect_tests
from app.contracts.errors import ConfigError
from tests.unit.agent_tests.conftest import FIXTURE


def test_the_suites_of_a_connic_project_collect_as_connic_itself_discovers_them() -> None:
    connic = [(path, agent) for path, agent, parsed, error in _discover_test_suites(FIXTURE) if error is None]
    collection = collect_tests(FIXTURE)
    assert [(suite.rel, suite.agent) for suite in collection.suites] == connic
    assert [case.id for case in collection.cases] == [
        "calculator::adds_two_numbers",
        "calculator::multiplies_numbers_from_a_builder",
        "calculator::notifies_the_team_through_a_mock",
        "calculator::approves_nothing_yet",
        "dispatcher::dispatches_to_the_summarizer_and_the_doubler",
        "note-reader::reads_the_attached_note",
        "doubler::doubles_a_number",
    ]


def test_defaults_merge_into_each_case_as_the_sdk_resolves_them() -> None:
    cases = {case.name: case for case in collect_tests(FIXTURE).cases}
    assert cases["adds_two_numbers"].settings["runs"] == 3
    assert cases["adds_two_numbers"].settings["success_threshold"] == 60
    assert cases["multiplies_numbers_from_a_builder"].settings["runs"] == 1
    assert cases["multiplies_numbers_from_a_builder"].settings["timeout_s"] == 30
    assert cases["doubles_a_number"].settings["timeout_s"] == 10


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("builder", ["calculator::multiplies_numbers_from_a_builder"]),
        ("doubler", ["dispatcher::dispatches_to_the_summarizer_and_the_doubler", "doubler::doubles_a_number"]),
        ("doubler::", ["doubler::doubles_a_number"]),
        ("*::dispatches_*", ["dispatcher::dispatches_to_the_summarizer_and_the_doubler"]),
        ("adds_*", ["calculator::adds_two_numbers"]),
        ("nothing-matches", []),
    ],
)
def test_filter_is_a_substring_of_agent_and_name_or_a_glob(pattern: str, expected: list[str]) -> None:
    assert [case.id for case in collect_tests(FIXTURE, pattern=pattern).cases] == expected


def test_one_suite_file_can_be_collected_alone() -> None:
    collection = collect_tests(FIXTURE / "tests" / "smoke" / "quick.yaml")
    assert collection.root == FIXTURE.resolve()
    assert [case.id for case in collection.cases] == ["doubler::doubles_a_number"]


def test_material_folders_python_test_packages_and_nested_projects_are_not_searched(connic_project: Path) -> None:
    tests = connic_project / "tests"
    for folder in ("cassettes/x", "files", "unit", "fixtures/other"):
        (tests / folder).mkdir(parents=True, exist_ok=True)
        (tests / folder / "not-a-suite.yaml").write_text("just: data\n")
    (tests / "unit" / "__init__.py").write_text("")
    (tests / "fixtures" / "other" / "agents").mkdir()
    (tests / "empty.yaml").write_text("")  # an empty suite is skipped, as by Connic's runner
    assert len(collect_tests(connic_project).suites) == 4


def _suite_error(project: Path, text: str) -> str:
    (project / "tests" / "broken.yaml").write_text(text)
    with pytest.raises(ConfigError) as raised:
        collect_tests(project)
    return raised.value.message


def test_bad_yaml_names_file_and_line(connic_project: Path) -> None:
    message = _suite_error(connic_project, 'version: "1.0"\ntests:\n  - name: x\n    payload: [unclosed\n')
    assert message.startswith("tests/broken.yaml:5:") or message.startswith("tests/broken.yaml:4:")
    assert "invalid YAML" in message


def test_a_value_out_of_range_names_the_line_of_its_key(connic_project: Path) -> None:
    text = 'version: "1.0"\nagent: calculator\ntests:\n  - name: x\n    payload: "{}"\n    runs: 0\n'
    message = _suite_error(connic_project, text)
    assert message.startswith("tests/broken.yaml:6: tests.0.runs:"), message


def test_a_case_without_payload_or_builder_is_refused_at_its_line(connic_project: Path) -> None:
    text = 'version: "1.0"\nagent: calculator\ntests:\n  - name: ok\n    payload: "{}"\n  - name: x\n    runs: 2\n'
    message = _suite_error(connic_project, text)
    assert message.startswith("tests/broken.yaml:6:"), message
    assert "must specify either `payload` or `builder`" in message


def test_an_unknown_agent_is_refused_with_the_close_names(connic_project: Path) -> None:
    message = _suite_error(connic_project, 'version: "1.0"\nagent: calculater\ntests:\n  - name: x\n    payload: hi\n')
    assert message.startswith("tests/broken.yaml:2: unknown agent 'calculater'")
    assert "Did you mean 'calculator'?" in message


def test_a_missing_mock_module_is_refused_at_the_line_naming_it(connic_project: Path) -> None:
    text = 'version: "1.0"\nagent: calculator\ntests:\n  - name: x\n    payload: hi\n    mocks: nowhere\n'
    message = _suite_error(connic_project, text)
    assert message == "tests/broken.yaml:6: tests/mocks/nowhere.py does not exist"


def test_an_expression_that_does_not_parse_is_refused_before_anything_runs(connic_project: Path) -> None:
    text = (
        'version: "1.0"\nagent: calculator\ntests:\n  - name: x\n    payload: hi\n    expected_result: output.sum ==\n'
    )
    message = _suite_error(connic_project, text)
    assert message.startswith("tests/broken.yaml:6: invalid expression 'output.sum =='")
