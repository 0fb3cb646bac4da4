"""Secrets never leave a process in a span: redaction of span attributes and messages.

Three rules, applied to every attribute before a `SpanEvent` is built:
- a key that names a secret (api_key, authorization, password, token, secret…) has its
  value replaced whatever it is;
- the values of environment variables whose names contain KEY, SECRET, TOKEN or
  PASSWORD are replaced wherever they appear inside a string;
- well-known credential shapes (`Bearer …`, `sk-…`, `api_key=…`) are replaced.
The redactor is built once per engine from a snapshot of the environment and is
immutable afterwards (it only remembers which keys name secrets), so concurrent runs
share it safely.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"

_SECRET_ENV_MARKERS = ("KEY", "SECRET", "TOKEN", "PASSWORD")
_SECRET_KEY_RE = re.compile(
    r"(api[_-]?key|authorization|password|passwd|secret|token|credential|private[_-]?key|cookie)",
    re.IGNORECASE,
)
# Keys that contain a secret-looking word but hold counts, not credentials.
_NOT_SECRET_KEYS = re.compile(r"tokens", re.IGNORECASE)  # prompt_tokens, max_tokens…
_PATTERNS = (
    re.compile(r"(?i)\bBearer\s+[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)\b(api[_-]?key|token|secret|password)(\s*[=:]\s*)([^\s,;\"'&]{4,})"),
)
_KEYS_REMEMBERED = 4096
_MIN_SECRET_LENGTH = 6  # shorter env values ("1", "true") would redact half of every text


_ASSIGNED_WORDS = ("key", "token", "secret", "password")  # what _PATTERNS[2] needs before its `=` or `:`


def _may_assign_secret(lowered: str) -> bool:
    """Whether `lowered` has one of the words followed (after spaces) by `=` or `:`: the
    part of `_PATTERNS[2]` a plain scan can check; `tokens=7` has none."""
    end = len(lowered)
    for word in _ASSIGNED_WORDS:
        start = lowered.find(word)
        while start != -1:
            at = start + len(word)
            while at < end and lowered[at].isspace():
                at += 1
            if at < end and lowered[at] in "=:":
                return True
            start = lowered.find(word, start + 1)
    return False


class Redactor:
    def __init__(self, secret_values: Iterable[str] = ()) -> None:
        values = {v for v in secret_values if v and len(v) >= _MIN_SECRET_LENGTH}
        # Longest first, so a secret containing another is replaced whole.
        self._values: tuple[str, ...] = tuple(sorted(values, key=len, reverse=True))
        # Whether a key names a secret, by key: span attributes repeat a few dozen names, and
        # the two regex searches per key were two thirds of building a span's event.
        self._secret_keys: dict[str, bool] = {}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> Redactor:
        env = os.environ if environ is None else environ
        found = [value for name, value in env.items() if any(marker in name.upper() for marker in _SECRET_ENV_MARKERS)]
        return cls([*found, *extra])

    @staticmethod
    def is_secret_key(key: str) -> bool:
        return bool(_SECRET_KEY_RE.search(key)) and not _NOT_SECRET_KEYS.search(key)

    def text(self, value: str) -> str:
        for secret in self._values:
            if secret in value:
                value = value.replace(secret, REDACTED)
        # Each pattern runs only where a substring it needs is present: a regex scan costs
        # tens of µs on a log line, the checks well under one (every span and line pays them).
        lowered = value.lower()
        if "bearer" in lowered:
            value = _PATTERNS[0].sub(f"Bearer {REDACTED}", value)
        if "sk-" in value:
            value = _PATTERNS[1].sub(REDACTED, value)
        if _may_assign_secret(lowered):
            value = _PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", value)
        return value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return self.mapping(value)
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value

    def mapping(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {
            key: REDACTED if self._names_secret(str(key)) and value not in (None, "") else self.value(value)
            for key, value in values.items()
        }

    def _names_secret(self, key: str) -> bool:
        found = self._secret_keys.get(key)
        if found is None:
            found = self.is_secret_key(key)
            if len(self._secret_keys) < _KEYS_REMEMBERED:  # bounded: keys of arbitrary data pass here too
                self._secret_keys[key] = found
        return found
