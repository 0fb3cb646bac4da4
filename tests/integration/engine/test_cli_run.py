"""`ferry run` on the example project, answered by the in-process simulator."""

from __future__ import annotations

import json
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
    assert any(line.startswith("tool_call") and "tool verify_totals" in line for line in trace)
    assert trace[-2].startswith("run ") and "tokens=" in trace[-2] and "cost=$" in trace[-2]
    assert trace[-1].startswith("completed in") and "4 LLM call(s)" in trace[-1]
    assert result["usage"]["llm_calls"] == 4 and result["usage"]["cost_usd"] > 0


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
