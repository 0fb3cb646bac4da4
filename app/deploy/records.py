"""The two kinds of record on the compacted `ferry.deployments` topic.

    key = version (`v…`)   value = a `Deployment`: the files and where they came from
    key = `@active`        value = an `ActiveState`: the version new runs use, the canary,
                                   and the versions active before (what `rollback` returns to)

Compaction keeps the last record per key, so the topic holds every deployment once and
the latest active state: a worker that starts reads it from the beginning and knows all.
Values are gzip'd JSON: a project's YAML and Python compress well, and the size limit
(`snapshot.MAX_SNAPSHOT_BYTES`) is on the files before compression.
"""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ACTIVE_KEY = "@active"
#: How many earlier active versions `ActiveState` remembers (rollback steps).
HISTORY_KEPT = 50


def _now() -> datetime:
    return datetime.now(UTC)


class GitSource(BaseModel):
    model_config = ConfigDict(frozen=True)

    commit: str
    author: str = ""
    message: str = ""
    ref: str = "HEAD"


class Deployment(BaseModel):
    """One immutable version of the project. `files` maps project-relative paths to base64."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    version: str
    created_at: datetime = Field(default_factory=_now)
    message: str = ""
    git: GitSource | None = None
    dirty: bool = False  # made from a work tree with uncommitted changes (`--allow-dirty`)
    ephemeral: bool = False  # a `ferry dev` reload: never a rollback target
    files: dict[str, str] = Field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, version: str, files: dict[str, bytes], **fields: object) -> Deployment:
        encoded = {path: base64.b64encode(data).decode() for path, data in sorted(files.items())}
        return cls(version=version, files=encoded, **fields)  # type: ignore[arg-type]

    def file_bytes(self) -> dict[str, bytes]:
        return {path: base64.b64decode(data) for path, data in self.files.items()}

    def encode(self) -> bytes:
        return gzip.compress(self.model_dump_json().encode(), compresslevel=6)

    @classmethod
    def decode(cls, value: bytes) -> Deployment:
        return cls.model_validate_json(gzip.decompress(value))

    def summary(self) -> Deployment:
        """The same record without its files (what listings carry around)."""
        return self.model_copy(update={"files": {}})


class Canary(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str
    percent: float = Field(gt=0, le=100)


class ActiveState(BaseModel):
    """Which version new runs use. `previous` lists the versions active before, oldest first."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    active: str | None = None
    canary: Canary | None = None
    previous: tuple[str, ...] = ()
    updated_at: datetime = Field(default_factory=_now)
    reason: str = ""

    def activate(self, version: str, reason: str) -> ActiveState:
        """`version` active for every new run; the version it replaces becomes the rollback target."""
        previous = self.previous
        if self.active is not None and self.active != version:
            previous = (*previous, self.active)[-HISTORY_KEPT:]
        return ActiveState(active=version, canary=None, previous=previous, reason=reason)

    def with_canary(self, version: str, percent: float, reason: str) -> ActiveState:
        return self.model_copy(
            update={"canary": Canary(version=version, percent=percent), "updated_at": _now(), "reason": reason}
        )

    def rolled_back(self) -> ActiveState | None:
        """Back to the version active before this one (None: nothing to go back to). The
        canary, if any, ends too: a rollback means "what ran before", nothing new."""
        if not self.previous:
            return None
        *rest, target = self.previous
        return ActiveState(active=target, canary=None, previous=tuple(rest), reason=f"rollback from {self.active}")

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, value: bytes) -> ActiveState:
        return cls.model_validate_json(value)
