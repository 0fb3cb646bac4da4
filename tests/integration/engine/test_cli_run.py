"""`ferry run` on the example project, answered by the in-process simulator."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from app.cli import main

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "samples" / "invoices"


@pytest.mark.parametrize("document", ["acme-a-7781.pdf", "kestrel-kpw-1193.png"])
def test_ferry_run_extracts_a_sample_invoice(document: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "invoice-pipeline", "--input", f"@{SAMPLES / document}", "--project", str(ROOT), "--sim"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    expected = json.loads((SAMPLES / f"{Path(document).stem}.json").read_text())["expected"]
    record = result["output"]
    assert result["status"] == "completed"
    for key in ("vendor", "invoice_number", "invoice_date", "currency"):
        assert record[key] == expected[key]
    for key in ("subtotal", "tax", "total"):
        assert Decimal(record[key]) == Decimal(str(expected[key]))
    assert [i["description"] for i in record["line_items"]] == [i["description"] for i in expected["line_items"]]
    assert record["validation_status"] == "valid"
    tool = "parse_pdf" if document.endswith(".pdf") else "extract_text_from_image"
    trace = err.splitlines()
    assert any(line.startswith("tool_call") and f"tool {tool}" in line for line in trace)
    assert any(line.startswith("tool_call") and "tool score_invoice" in line for line in trace)
    assert any(line.startswith("tool_call") and "tool verify_totals" in line for line in trace)
    assert trace[-2].startswith("run ") and "tokens=" in trace[-2] and "cost=$" in trace[-2]
    # extractor: read, score, answer; validator: check, answer
    assert trace[-1].startswith("completed in") and "5 LLM call(s)" in trace[-1]
    assert result["usage"]["llm_calls"] == 5 and result["usage"]["cost_usd"] > 0
    assert record["needs_review"] is False and record["confidence"] > 0.8 and record["unsure_fields"] == []


def test_ferry_run_without_a_provider_explains_what_to_do(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "FERRY_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    code = main(["run", "invoice-extractor", "--input", '{"message": "hi"}', "--project", str(ROOT)])
    _, err = capsys.readouterr()
    assert code == 2
    assert "GEMINI_API_KEY" in err and "--sim" in err and "FERRY_LLM_BASE_URL" in err


def test_ferry_run_rejects_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "invoice-extractor", "--input", "{not json", "--project", str(ROOT), "--sim"]) == 2
    assert "not valid JSON" in capsys.readouterr().err


# --- As a new user runs it: a project of their own, the real `ferry` process ---------------------------


def _ferry(project: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("FERRY_LLM_BASE_URL", "FERRY_DEBUG")}
    return subprocess.Popen(
        [sys.executable, "-m", "app", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=project, env={**clean, "PYTHONPATH": str(ROOT), **env},
    )  # fmt: skip


def _finish(process: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


OWN_EXTRACTOR = """\
    version: "1.0"
    name: invoice-extractor
    description: not the example's extractor
    model: openai/gpt-4o-mini
    system_prompt: Extract the total.
    """


def test_sim_in_a_project_with_its_own_invoice_extractor_gets_the_generic_reply(tmp_path: Path) -> None:
    project = _write(tmp_path, {"agents/invoice-extractor.yaml": OWN_EXTRACTOR})
    code, out, err = _finish(_ferry(project, "run", "invoice-extractor", "--input", '{"message": "hi"}', "--sim"))
    assert code == 0, err
    assert "Traceback" not in err
    assert json.loads(out)["output"] == "Simulated reply to: hi"


def test_sim_rules_script_an_agent_with_an_output_schema(tmp_path: Path) -> None:
    project = _write(
        tmp_path,
        {
            "agents/invoice-extractor.yaml": OWN_EXTRACTOR + "output_schema: total\n",
            "schemas/total.json": '{"type": "object", "required": ["total"]}',
            "rules.json": '{"rules": [{"reply": {"kind": "json", "data": {"total": 12.5}}}]}',
            "bad-rules.json": '{"rules": [{"reply": {"kind": "jsn"}}]}',
        },
    )
    code, out, err = _finish(_ferry(project, "run", "invoice-extractor", "--sim-rules", "rules.json"))
    assert code == 0, err
    assert json.loads(out)["output"] == {"total": 12.5}

    code, out, err = _finish(_ferry(project, "run", "invoice-extractor", "--sim-rules", "bad-rules.json"))
    assert (code, out) == (2, "")
    assert err.startswith("ferry: --sim-rules bad-rules.json is not a valid rules file: rules.0.reply: ")
    assert "'jsn'" in err and err.count("\n") == 1

    code, _, err = _finish(_ferry(project, "run", "invoice-extractor"), timeout=120)
    assert code == 2 and err.count("\n") == 1
    assert "(missing: OPENAI_API_KEY)" in err and "--sim-rules FILE" in err and "no output schema accepts" in err


NAPPER = {
    "agents/napper.yaml": """\
        version: "1.0"
        name: napper
        description: a sync tool that outlives its timeout
        type: tool
        tool_name: slow.nap
        tool_timeout: 1
        retry_options:
          attempts: 1
        """,
    "tools/slow.py": """\
        import time


        def nap(payload: dict) -> dict:
            \"\"\"Sleep as long as asked.\"\"\"
            time.sleep(payload["seconds"])
            return {"slept": payload["seconds"]}
        """,
}
WAITING = (
    "ferry: waiting for tool `nap` (still running in its thread after its 1s timeout); "
    "Ctrl-C to quit now — use isolation: process to kill such tools"
)


def test_a_tool_thread_past_its_timeout_is_named_while_ferry_waits_for_it(tmp_path: Path) -> None:
    project = _write(tmp_path, NAPPER)
    code, out, err = _finish(_ferry(project, "run", "napper", "--input", '{"seconds": 4}'))
    assert code == 1
    assert json.loads(out)["error"]["category"] == "tool_timeout"
    lines = err.splitlines()
    assert lines[-2].startswith("failed (tool_timeout: tool 'nap' did not finish within 1s)")
    assert lines[-2].endswith("; 0 LLM call(s), 1 tool call(s)")  # a tool agent: no tokens, no cost
    assert lines[-1] == WAITING
    assert not any("tokens=" in line or "cost=" in line for line in lines)


def test_ctrl_c_while_waiting_for_a_tool_thread_exits_at_once(tmp_path: Path) -> None:
    project = _write(tmp_path, NAPPER)
    process = _ferry(project, "run", "napper", "--input", '{"seconds": 120}')
    assert process.stderr is not None
    try:
        seen = []
        while WAITING not in seen:
            line = process.stderr.readline()
            assert line, f"ferry ended without the waiting line: {seen}"
            seen.append(line.rstrip("\n"))
        process.send_signal(signal.SIGINT)
        code, out, err = _finish(process, timeout=30)  # the thread sleeps 2 minutes: only Ctrl-C ends this early
    finally:
        process.kill()
        process.wait()
    assert code == 130
    assert err.splitlines() == ["ferry: interrupted: quitting without waiting for the tool thread"]
    assert json.loads(out)["status"] == "failed"


def test_an_unreachable_llm_server_is_one_line_at_once(tmp_path: Path) -> None:
    project = _write(tmp_path, {"agents/greeter.yaml": OWN_EXTRACTOR.replace("invoice-extractor", "greeter")})
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/v1"
    code, out, err = _finish(_ferry(project, "run", "greeter", FERRY_LLM_BASE_URL=url), timeout=60)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"ferry: cannot reach the LLM server (FERRY_LLM_BASE_URL) at {url} — fix: start that server, "
        "or unset FERRY_LLM_BASE_URL to call providers with their keys, or add --sim"
    ]
