"""Finding personal data in text for the `pii` / `pii_leakage` guardrails, and masking it.

Each entity is a pattern plus, where the format has one, its checksum: a card number
must pass the Luhn check and an IBAN the mod-97 check, so an order number of sixteen
digits is not taken for a card. Redaction replaces each finding by `[REDACTED_<ENTITY>]`,
which keeps the sentence readable for the model and the reader.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass


def luhn_ok(digits: str) -> bool:
    numbers = [int(c) for c in digits if c.isdigit()]
    if not 13 <= len(numbers) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(numbers)):
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    compact = re.sub(r"\s+", "", text).upper()
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def phone_ok(text: str) -> bool:
    """E.164 allows at most 15 digits; fewer than 7 is an order number, a price, a date."""
    return 7 <= sum(c.isdigit() for c in text) <= 15


def ipv4_ok(text: str) -> bool:
    return all(0 <= int(part) <= 255 for part in text.split("."))


@dataclass(frozen=True)
class Entity:
    name: str
    pattern: re.Pattern[str]
    valid: Callable[[str], bool] = lambda _: True


ENTITIES: dict[str, Entity] = {
    entity.name: entity
    for entity in (
        Entity("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
        Entity("credit_card", re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), luhn_ok),
        Entity("iban", re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b"), iban_ok),
        Entity("ssn", re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")),
        Entity(
            "phone",
            re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){2,4}\b"),
            phone_ok,
        ),
        Entity("ip_address", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), ipv4_ok),
    )
}
#: The order findings are looked for: a card or IBAN first, so its digits are not read as a phone number.
ORDER = ("email", "credit_card", "iban", "ssn", "ip_address", "phone")
ALIASES = {"phone_number": "phone", "card": "credit_card", "card_number": "credit_card", "ip": "ip_address"}


def entities_of(names: Iterable[str] | None) -> list[Entity]:
    """The entities a rule's `config.entities` names (all of them when it names none);
    an unknown name raises `ValueError` (the loader reports it at the rule)."""
    if not names:
        return [ENTITIES[name] for name in ORDER]
    chosen = []
    for raw in names:
        name = ALIASES.get(str(raw).lower(), str(raw).lower())
        if name not in ENTITIES:
            raise ValueError(f"unknown PII entity {raw!r} (known: {', '.join(ORDER)})")
        chosen.append(ENTITIES[name])
    return sorted(chosen, key=lambda e: ORDER.index(e.name))


def find(text: str, entities: Iterable[Entity]) -> list[tuple[str, int, int]]:
    """(entity, start, end) of every finding, never two overlapping."""
    found: list[tuple[str, int, int]] = []
    for entity in entities:
        for match in entity.pattern.finditer(text):
            start, end = match.span()
            if any(start < e and s < end for _, s, e in found):
                continue
            if entity.valid(match.group(0)):
                found.append((entity.name, start, end))
    return sorted(found, key=lambda f: f[1])


def redact(text: str, findings: list[tuple[str, int, int]]) -> str:
    for name, start, end in sorted(findings, key=lambda f: f[1], reverse=True):
        text = f"{text[:start]}[REDACTED_{name.upper()}]{text[end:]}"
    return text
