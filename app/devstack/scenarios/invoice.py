"""The invoice demo on the LLM simulator: what a good model would answer, made of rules.

The simulator answers from static rules, so the scenario does beforehand what the
model would do during the run: it reads each attached document with the project's
own tools (`parse_pdf`, `extract_text_from_image` — the very functions the run will
call), pulls the fields out of that tool text with regexes, and checks the result with
`verify_totals`. The rules then play the model's part in each stage:

    invoice-extractor  turn 1: call parse_pdf / extract_text_from_image on the file
                       turn 2: (tool text in the conversation) answer the invoice JSON
    invoice-validator  turn 1: call verify_totals with the invoice received
                       turn 2: answer {"invoice", "validation"} with the tool's report
    invoice-storer     a tool agent: no model involved

Rules are keyed by the file name and by the invoice number, so one simulator can hold
the rules of several documents: `sample_rules` scripts every sample under
`samples/invoices/`, and

    python -m app.devstack.scenarios.invoice > /tmp/invoice-rules.json
    python -m app.devstack.llm_sim --rules /tmp/invoice-rules.json

serves them from a simulator process (for a worker or `ferry dev`). A document whose text yields no invoice number still
gets a reply: fields it cannot read are "unclear", as the extractor prompt asks.

The scenario is the example project's: `scenario_applies` checks the project has the
agents and tools it scripts (not merely an agent named `invoice-extractor`), so any other
project gets no rules from it, and the simulator's generic reply.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from app.contracts import document_input
from app.devstack.llm_sim import JsonReply, Match, Rule, RuleSet, ToolCall, ToolCallsReply
from app.project.project import Project

UNCLEAR = "unclear"
_MONEY = r"\d[\d,]*\.\d{2}"
_LINE = re.compile(rf"(?P<desc>\S.*?)\s+(?P<qty>\d+)\s+(?P<unit>{_MONEY})\s+(?P<amount>{_MONEY})(?=\s|$)")


def _number(text: str | None) -> float | str:
    if text is None:
        return UNCLEAR
    return float(text.replace(",", ""))


def _search(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, re.IGNORECASE)
    return match.group(1).strip() if match else None


def parse_invoice_text(text: str) -> dict[str, Any]:
    """Fields of an invoice from the text a document tool returned (PDF text or OCR)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    table = re.search(r"\bAmount\b(.*?)\bSubtotal\b", text, re.DOTALL | re.IGNORECASE)
    items: list[dict[str, Any]] = []
    if table:
        flat = " ".join(table.group(1).split())
        for m in _LINE.finditer(flat):
            items.append(
                {
                    "description": m.group("desc").strip(),
                    "quantity": int(m.group("qty")),
                    "unit_price": _number(m.group("unit")),
                    "amount": _number(m.group("amount")),
                }
            )
    return {
        "vendor": lines[0] if lines else UNCLEAR,
        "invoice_number": _search(r"Invoice (?:number|no\.?)\s*[:#]?\s*(\S+)", text) or UNCLEAR,
        "invoice_date": _search(r"Invoice date\s*:?\s*(\S+)", text) or UNCLEAR,
        "currency": _search(r"Currency\s*:?\s*([A-Z]{3})\b", text),
        "line_items": items,
        "subtotal": _number(_search(rf"Subtotal\s+({_MONEY})", text)),
        "tax": _number(_search(rf"Tax(?:\s*\([^)]*\))?\s+({_MONEY})", text)),
        "total": _number(_search(rf"\bTotal(?:\s+[A-Z]{{3}})?\s+({_MONEY})", text)),
    }


#: What the scenario scripts: each agent with the tools its rules call.
SCRIPTED_TOOLS: Mapping[str, tuple[str, ...]] = {
    "invoice-extractor": ("parse_pdf", "extract_text_from_image"),
    "invoice-validator": ("verify_totals",),
}


def scenario_applies(project: Project) -> bool:
    """Whether `project` is the invoice example: the agents the rules play, with their tools."""
    return all(
        _find_tool(project, agent, name) is not None for agent, names in SCRIPTED_TOOLS.items() for name in names
    )


def _find_tool(project: Project, agent: str, name: str) -> Any:
    spec = project.agents.get(agent)
    if spec is None or spec.type != "llm":
        return None
    return next((tool.func for tool in spec.resolved_tools if tool.name == name), None)


def _tool(project: Project, agent: str, name: str) -> Any:
    func = _find_tool(project, agent, name)
    if func is None:
        raise LookupError(f"agent {agent!r} has no tool {name!r}: not the invoice example (see scenario_applies)")
    return func


def _document_tool(mime_type: str, name: str) -> str:
    if mime_type == "application/pdf" or name.lower().endswith(".pdf"):
        return "parse_pdf"
    return "extract_text_from_image"


def invoice_rules(project: Project, payload: Mapping[str, Any]) -> list[Rule]:
    """Simulator rules that carry `payload`'s documents through the invoice pipeline."""
    rules: list[Rule] = []
    files: Sequence[Any] = payload.get("files") or []
    verify_totals = _tool(project, "invoice-validator", "verify_totals")
    for file in files:
        if not isinstance(file, Mapping):
            continue
        name = str(file.get("name", ""))
        tool_name = _document_tool(str(file.get("mime_type", "")), name)
        read = _tool(project, "invoice-extractor", tool_name)
        try:
            tool_text = str(read(name, context={"payload": dict(payload)})["text"])
        except Exception:  # an unreadable document: the run calls the tool and reports its error
            continue
        invoice = parse_invoice_text(tool_text)
        report = dict(verify_totals(invoice))
        report["notes"] = _notes(report)
        number = invoice["invoice_number"]
        rules += [
            # Extractor, turn 2: the document text is in the conversation.
            Rule(
                name=f"extract-answer {name}",
                match=Match(has_tool_result=tool_name, last_user_contains=name),
                reply=JsonReply(data=invoice),
            ),
            # Extractor, turn 1: read the attached file with the right tool.
            Rule(
                name=f"extract-read {name}",
                match=Match(last_user_contains=name, assistant_turns=0),
                reply=ToolCallsReply(calls=[ToolCall(name=tool_name, arguments={"file_name": name})]),
            ),
            # Validator, turn 2: report what verify_totals found.
            Rule(
                name=f"validate-answer {number}",
                match=Match(has_tool_result="verify_totals", last_user_contains=f'"invoice_number": "{number}"'),
                reply=JsonReply(data={"invoice": invoice, "validation": report}),
            ),
            # Validator, turn 1: never do the arithmetic, call the tool.
            Rule(
                name=f"validate-call {number}",
                match=Match(last_user_contains=f'"invoice_number": "{number}"', assistant_turns=0),
                reply=ToolCallsReply(calls=[ToolCall(name="verify_totals", arguments={"invoice": invoice})]),
            ),
        ]
    return rules


def _notes(report: Mapping[str, Any]) -> str:
    if report.get("failed_checks"):
        return "Failed checks: " + ", ".join(report["failed_checks"]) + "."
    if report.get("unclear_fields"):
        return "Unclear fields: " + ", ".join(report["unclear_fields"]) + "."
    return "All totals add up."


DOCUMENT_SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


def sample_rules(project: Project, samples_dir: Path | None = None) -> list[Rule]:
    """Rules for every sample document of the example project."""
    folder = samples_dir or project.root / "samples" / "invoices"
    rules: list[Rule] = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in DOCUMENT_SUFFIXES:
            rules += invoice_rules(project, document_input(path.name, path.read_bytes()))
    return rules


if __name__ == "__main__":
    from app.project import load_project

    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
    print(RuleSet(rules=sample_rules(load_project(root))).model_dump_json(indent=2))
