"""The one error the dev stack raises: a cause a person can read and the fix to apply."""

from __future__ import annotations

from app.contracts.errors import ConfigError


class DevStackError(ConfigError):
    """A bad environment (missing Java, port in use, stale data dir…), never a stack trace.

    `str()` gives the one line the CLI prints: the cause, then what to do about it.
    """

    def __init__(self, cause: str, fix: str) -> None:
        super().__init__(f"{cause} — fix: {fix}")
        self.cause = cause
        self.fix = fix
