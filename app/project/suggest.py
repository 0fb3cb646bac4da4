"""The nearest known name to a misspelt one, for "did you mean …?" hints.

One cutoff for keys and tool refs alike. At 0.75 a slip of one or two letters
(`temprature`, `retry_option`, `parse_pfd`) is caught, while a key that merely shares a
few letters with a known one (`tags` and `agents` score 0.6) is not taken for a typo:
a wrong guess would turn a harmless extra key into an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.75


def nearest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to `word` (case-insensitively), or None if none is close enough."""
    by_lower: dict[str, str] = {}
    for candidate in sorted(set(candidates)):
        by_lower.setdefault(candidate.lower(), candidate)
    matches = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=CUTOFF)
    return by_lower[matches[0]] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """` — did you mean `x`?` for the nearest candidate, or "" when none is close."""
    match = nearest(word, candidates)
    return f" — did you mean `{match}`?" if match is not None else ""
