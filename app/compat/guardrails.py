"""Connic guardrails on a run's input and output: `regex`, `pii` / `pii_leakage`, `custom`,
and the judged kinds (a judge model's verdict, see judge.py).

A rule finds a violation or not; its `mode` says what then happens:

    block    the run ends `blocked` naming the rule, the model never sees a blocked input
             (and with `run_after_on_block: false` the middleware's after() is skipped)
    warn     the run goes on; the violation is kept on the run's trace (`guardrail_warnings`)
    redact   (pii kinds only) the findings are masked in place and the run goes on

Input rules see the run input after the middleware's before(); output rules the answer
before the middleware's after(). Text is every string in the value (a JSON input's
fields included); redaction rewrites those strings in place, keys and structure kept.
The judged kinds (prompt_injection, moderation, …) ask the `judge` the engine gives.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.compat import pii
from app.compat.judge import JUDGED_KINDS
from app.compat.user_code import call_user
from app.project.models import GuardrailRuleSpec

#: A judged rule's check: (kind, text, config) → what was found, or None.
Judge = Callable[[str, str, Mapping[str, Any]], Awaitable[str | None]]

#: The kinds matched here; the judged kinds are asked of `judge` (app/compat/judge.py).
MATCHED_KINDS = frozenset({"regex", "pii", "pii_leakage", "custom"})
RUN_KINDS = MATCHED_KINDS | JUDGED_KINDS


@dataclass(frozen=True)
class Violation:
    direction: str  # input | output
    kind: str
    name: str | None
    mode: str
    message: str

    def describe(self) -> str:
        rule = f"{self.kind} ({self.name})" if self.name else self.kind
        return f"{self.direction} guardrail {rule}: {self.message}"


@dataclass
class Checked:
    value: Any
    blocked: Violation | None = None
    warnings: list[Violation] = field(default_factory=list)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


def _rewrite(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, Mapping):
        return {key: item if key == "files" else _rewrite(item, change) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_rewrite(item, change) for item in value]
    return value


def regex_patterns(config: Mapping[str, Any]) -> list[re.Pattern[str]]:
    """`config.patterns` (a list) or `config.pattern` (one); `ValueError` if none or invalid."""
    raw = config.get("patterns", config.get("pattern"))
    patterns = [raw] if isinstance(raw, str) else list(raw or [])
    if not patterns or not all(isinstance(p, str) for p in patterns):
        raise ValueError("a regex guardrail needs config.patterns: a list of regular expressions")
    flags = re.IGNORECASE if config.get("case_sensitive") is False else 0
    return [re.compile(p, flags) for p in patterns]


async def _violation(
    rule: GuardrailRuleSpec,
    value: Any,
    context: dict[str, Any],
    custom: Mapping[str, Callable[..., Any]],
    judge: Judge | None,
) -> tuple[str | None, Any]:
    """(what was found or None, the value after redaction)."""
    text = "\n".join(_strings(value))
    if rule.type in JUDGED_KINDS:
        if judge is None or not text:
            return None, value
        return await judge(rule.type, text, rule.config), value
    if rule.type == "regex":
        hits = [p.pattern for p in regex_patterns(rule.config) if p.search(text)]
        return (f"matched {', '.join(hits)}" if hits else None), value
    if rule.type in ("pii", "pii_leakage"):
        entities = pii.entities_of(rule.config.get("entities"))
        found = sorted({name for name, _, _ in pii.find(text, entities)})
        if not found:
            return None, value
        redacted = _rewrite(value, lambda s: pii.redact(s, pii.find(s, entities)))
        return f"found {', '.join(found)}", redacted
    if rule.type == "custom":
        check = custom.get(rule.name or "")
        if check is None:
            return f"custom guardrail {rule.name!r} is not loaded", value
        outcome = await call_user(check, text, context=context)
        from connic.core import GuardrailResult  # a custom guardrail: a Connic project

        if isinstance(outcome, Mapping):
            outcome = GuardrailResult(**outcome)
        if isinstance(outcome, GuardrailResult):
            return (None if outcome.passed else outcome.message or "check failed"), value
        return (None if outcome else "check failed"), value
    return None, value


async def check(
    direction: str,
    rules: tuple[GuardrailRuleSpec, ...],
    value: Any,
    context: dict[str, Any],
    custom: Mapping[str, Callable[..., Any]],
    judge: Judge | None = None,
) -> Checked:
    checked = Checked(value)
    for rule in rules:
        if rule.type not in RUN_KINDS:
            continue
        found, redacted = await _violation(rule, checked.value, context, custom, judge)
        if found is None:
            continue
        violation = Violation(direction, rule.type, rule.name, rule.mode, found)
        if rule.mode == "block":
            checked.blocked = violation
            return checked
        if rule.mode == "redact":
            checked.value = redacted
        checked.warnings.append(violation)
    return checked
