"""The invoice demo on the LLM simulator: what a good model would answer, made of rules.

The simulator answers from static rules, so the scenario does beforehand what the
model would do during the run: it reads each attached document with the project's
own tools (`parse_pdf`, `extract_text_from_image` — the very functions the run will
call), pulls the fields out of that tool text with regexes (`parse_invoice_text`: the
layouts and labels it reads are listed there), scores them with `score_invoice` and
checks them with `verify_totals`. It reads only what the tools return, as a model
would. The rules then play the model's part in each stage:

    invoice-extractor  turn 1: call parse_pdf / extract_text_from_image on the file
                       turn 2: (tool text in the conversation) call score_invoice with
                               the invoice read from it, the file name and the review
                               threshold the prompt names
                       turn 3: answer what score_invoice returned (invoice + confidence)
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

import inspect
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from app.contracts import document_input
from app.devstack.llm_sim import JsonReply, Match, Rule, RuleSet, ToolCall, ToolCallsReply
from app.project.models import LLMAgentSpec
from app.project.project import Project

UNCLEAR = "unclear"
# An amount as invoices print it: thousands separated by `,` `.` `'` or a space, a
# decimal point or comma, a currency code or symbol before or after.
_CURRENCY = r"(?:[A-Z]{3}|[€$£¥]|CHF|Fr\.)"
_AMOUNT = (
    rf"(?:{_CURRENCY}\s?)?-?(?P<number>\d{{1,3}}(?:[,.'\u00a0\u202f ]\d{{3}})+(?:[.,]\d{{1,2}})?|\d+(?:[.,]\d{{1,2}})?)"
    rf"(?!\d|\s?%|[.,]\d)(?:\s?{_CURRENCY})?"
)
_CELL_MONEY = r"\d{1,3}(?:[,.'\u00a0]\d{3})*[.,]\d{2}"
_LINE = re.compile(
    rf"(?P<desc>\S.*?)\s+(?P<qty>\d+)\s+[€$£]?\s?(?P<unit>{_CELL_MONEY})\s?[€$£]?\s+[€$£]?\s?(?P<amount>{_CELL_MONEY})(?=\s|$)"
)
# The labels of the amounts, most specific first ("Total HT" is the subtotal, "Sous-total"
# is not a total), in English, German and French.
_AMOUNT_LABELS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "subtotal",
        re.compile(
            r"sub[\s-]?total|zwischensumme|nettobetrag|netto|sous[\s-]?total|total\s+h\.?t\.?|montant\s+h\.?t\.?|net\s+amount",
            re.IGNORECASE,
        ),
    ),
    ("tax", re.compile(r"\b(?:tax|vat|gst|mwst|ust|umsatzsteuer|mehrwertsteuer|tva|taxe)\b", re.IGNORECASE)),
    (
        "total",
        re.compile(
            r"\b(?:total|gesamtbetrag|gesamtsumme|gesamt|rechnungsbetrag|amount\s+due|balance\s+due|montant\s+ttc|net\s+[àa]\s+payer)\b",
            re.IGNORECASE,
        ),
    ),
)
_TABLE_HEADER = re.compile(r"\b(?:amount|betrag|montant|unit\s+price|einzelpreis|prix\s+unitaire)\b", re.IGNORECASE)
_NUMBER_LABEL = (
    r"(?:invoice\s*(?:number|no\.?|#)|rechnungs?[\s-]*(?:nummer|nr\.?)|num[ée]ro\s+de\s+facture"
    r"|facture\s+n[°o]\.?|n[°o]\s+de\s+facture)"
)
_DATE_LABEL = r"(?:invoice\s+date|rechnungsdatum|datum|date\s+de\s+(?:la\s+)?facture|date)"
_DATE = (
    r"(\d{4}-\d{2}-\d{2}|\d{1,2}[./]\d{1,2}[./]\d{2,4}|\d{1,2}\.?\s+[^\W\d_]+\.?\s+\d{4}"
    r"|[^\W\d_]+\.?\s+\d{1,2},\s+\d{4})"
)
_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY"}


def _to_number(printed: str) -> float:
    """`1.234,56`, `1,234.56`, `1 234,56`, `1'234.56` → 1234.56: the last `.` or `,`
    followed by one or two digits is the decimal mark, the other separators group thousands."""
    digits = re.sub(r"['\u00a0\u202f ]", "", printed)
    mark = max(digits.rfind("."), digits.rfind(","))
    if mark >= 0 and len(digits) - mark - 1 in (1, 2):
        return float(re.sub(r"[.,]", "", digits[:mark]) + "." + digits[mark + 1 :])
    return float(re.sub(r"[.,]", "", digits))


def _number(text: str | None) -> float | str:
    return UNCLEAR if text is None else _to_number(text)


def _search(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text, re.IGNORECASE)
    return match.group(1).strip() if match else None


def _label(line: str) -> tuple[str, int] | None:
    """The amount field a line is labelled as, and where its label ends."""
    for name, pattern in _AMOUNT_LABELS:
        match = pattern.search(line)
        if match:
            return name, match.end()
    return None


def _amounts(lines: Sequence[str]) -> dict[str, str]:
    """subtotal, tax and total as printed: the last amount after a line's label, or alone on
    the next line (a PDF table puts label and value on lines of their own); the last
    line labelled as a field wins (the grand total comes last)."""
    found: dict[str, str] = {}
    for index, line in enumerate(lines):
        labelled = _label(line)
        if labelled is None:
            continue
        name, end = labelled
        matches = list(re.finditer(_AMOUNT, line[end:]))
        if not matches and index + 1 < len(lines) and re.fullmatch(_AMOUNT, lines[index + 1]):
            matches = list(re.finditer(_AMOUNT, lines[index + 1]))
        if matches:
            found[name] = matches[-1].group("number")
    return found


def _currency(text: str) -> str | None:
    """The currency as labelled ("Currency: EUR"), else a code printed beside an amount,
    else the code of a symbol printed with one (€, $, £, ¥)."""
    labelled = _search(r"(?:currency|w[äa]hrung|devise)\s*:?\s*([A-Z]{3})\b", text)
    if labelled:
        return labelled
    for code in re.finditer(r"(?<![A-Za-z])([A-Z]{3})\s?\d|\d\s?([A-Z]{3})(?![A-Za-z])", text):
        found = str(code.group(1) or code.group(2))
        if found not in {"TTC", "TVA", "VAT", "GST", "UST"}:
            return found
    symbol = re.search(r"[€$£¥](?=\s?\d)|(?<=\d)\s?[€$£¥]", text)
    return _SYMBOLS[symbol.group(0).strip()] if symbol else None


def _line_items(lines: Sequence[str]) -> list[dict[str, Any]]:
    first = next((i for i, line in enumerate(lines) if _TABLE_HEADER.search(line) and _label(line) is None), None)
    if first is None:
        return []
    end = next((i for i in range(first + 1, len(lines)) if _label(lines[i]) is not None), len(lines))
    # A PDF's header may be a line per column ("Qty", "Unit price", "Amount"): the rows start after the last.
    header = max(i for i in range(first, end) if _TABLE_HEADER.search(lines[i]))
    flat = " ".join(" ".join(lines[header + 1 : end]).split())
    return [
        {
            "description": m.group("desc").strip(),
            "quantity": int(m.group("qty")),
            "unit_price": _to_number(m.group("unit")),
            "amount": _to_number(m.group("amount")),
        }
        for m in _LINE.finditer(flat)
    ]


def parse_invoice_text(text: str) -> dict[str, Any]:
    """Fields of an invoice from the text a document tool returned (PDF text or OCR):
    English, German or French labels, with or without a colon, amounts in the usual
    printed formats. Only this text is read, as a model would read the tool's answer."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    amounts = _amounts(lines)
    return {
        "vendor": lines[0] if lines else UNCLEAR,
        "invoice_number": _search(rf"{_NUMBER_LABEL}\s*[:#]?\s*([A-Z0-9][\w/-]*)", text) or UNCLEAR,
        "invoice_date": _search(rf"{_DATE_LABEL}\s*:?\s*{_DATE}", text) or UNCLEAR,
        "currency": _currency(text),
        "line_items": _line_items(lines),
        "subtotal": _number(amounts.get("subtotal")),
        "tax": _number(amounts.get("tax")),
        "total": _number(amounts.get("total")),
    }


#: What the scenario scripts: each agent with the tools its rules call.
SCRIPTED_TOOLS: Mapping[str, tuple[str, ...]] = {
    "invoice-extractor": ("parse_pdf", "extract_text_from_image", "score_invoice"),
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
    score_invoice = _tool(project, "invoice-extractor", "score_invoice")
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
        reading = parse_invoice_text(tool_text)
        threshold = _review_threshold(project, score_invoice)
        score_arguments = {"invoice": reading, "file_name": name, "review_threshold": threshold}
        invoice = dict(score_invoice(**score_arguments, context={"payload": dict(payload)}))
        report = dict(verify_totals(invoice))
        report["notes"] = _notes(report)
        number = invoice["invoice_number"]
        # The validator's rules first: its input (the scored invoice) names the file too,
        # and only the validator's carries the invoice JSON they match on.
        rules += [
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
            # Extractor, turn 3: answer what score_invoice returned, unchanged.
            Rule(
                name=f"extract-answer {name}",
                match=Match(has_tool_result="score_invoice", last_user_contains=name),
                reply=JsonReply(data=invoice),
            ),
            # Extractor, turn 2: the document text is in the conversation; have the reading scored.
            Rule(
                name=f"extract-score {name}",
                match=Match(has_tool_result=tool_name, last_user_contains=name),
                reply=ToolCallsReply(calls=[ToolCall(name="score_invoice", arguments=score_arguments)]),
            ),
            # Extractor, turn 1: read the attached file with the right tool.
            Rule(
                name=f"extract-read {name}",
                match=Match(last_user_contains=name, assistant_turns=0),
                reply=ToolCallsReply(calls=[ToolCall(name=tool_name, arguments={"file_name": name})]),
            ),
        ]
    return rules


def _review_threshold(project: Project, score_invoice: Any) -> float:
    """The threshold the extractor's prompt tells the model to pass ("review_threshold 0.8"),
    as a model following its prompt would; the tool's default when the prompt names none."""
    spec = project.agents["invoice-extractor"]
    prompt = spec.system_prompt if isinstance(spec, LLMAgentSpec) else ""
    named = re.search(r"review_threshold\D{0,12}?(0(?:\.\d+)?|1(?:\.0+)?|\.\d+)\b", prompt)
    if named:
        return float(named.group(1))
    default = inspect.signature(score_invoice).parameters["review_threshold"].default
    return float(default)


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
