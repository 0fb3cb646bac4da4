"""`ferry test` as a user runs it: the installed command, in its own process, with no provider key."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "unit" / "agent_tests" / "fixtures" / "connic_project"
FERRY = Path(sys.executable).parent / "ferry"
KEYS = ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "ANTHROPIC_API_KEY", "FERRY_LLM_BASE_URL")


def _ferry(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in KEYS}
    return subprocess.run([str(FERRY), "test", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=240)


def test_the_example_project_passes_offline_replaying_its_cassettes() -> None:
    done = _ferry()
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(
        line.startswith("PASS  invoice-extractor::extracts_the_acme_pdf_invoice  1/1 runs")
        and line.endswith("cassette")
        for line in lines
    ), done.stdout
    assert any(line.startswith("PASS  invoice-pipeline::") for line in lines)
    assert lines[-1].startswith("ferry: 7 passed, 0 failed, 0 errored in ")


def test_json_goes_to_stdout_and_progress_to_stderr() -> None:
    done = _ferry("--json", "--filter", "invoice-storer")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["status"], report["passed"], report["failed"], report["errored"]) == ("passed", 2, 0, 0)
    assert {case["test_name"] for case in report["cases"]} == {
        "stores_a_valid_invoice_as_one_record",
        "flags_an_unvalidated_invoice_for_review",
    }
    assert "PASS  invoice-storer::stores_a_valid_invoice_as_one_record" in done.stderr


def test_list_collects_a_connic_project_without_running_it() -> None:
    done = _ferry("--list", str(FIXTURE))
    assert done.returncode == 0, done.stderr
    assert "tests/calculator.yaml:10  calculator::adds_two_numbers  runs=3" in done.stdout
    assert "tests/smoke/quick.yaml:8  doubler::doubles_a_number  runs=1" in done.stdout
    assert done.stdout.splitlines()[-1] == "7 test(s) in 4 suite(s)"


def test_a_failing_test_exits_1_and_a_bad_file_exits_2_with_one_line(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(FIXTURE, project)
    (project / "tests" / "doubler.yaml").write_text(
        'version: "1.0"\ntests:\n  - name: doubles_wrong\n    payload: \'{"n": 2}\'\n    expected_result: output.n == 5\n'
    )
    failed = _ferry("--filter", "doubles_wrong", cwd=project)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL  doubler::doubles_wrong  0/1 runs" in failed.stdout
    assert 'expected_result `output.n == 5` is false (status completed, output {"n": 4})' in failed.stdout

    (project / "tests" / "doubler.yaml").write_text(
        'version: "1.0"\ntests:\n  - name: x\n    runs: 500\n    payload: hi\n'
    )
    bad = _ferry(cwd=project)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "ferry: tests/doubler.yaml:4: tests.0.runs: Input should be less than or equal to 100"
    ]
