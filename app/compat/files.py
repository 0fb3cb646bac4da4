"""The `file_*` tools: a file tree per tenant and environment, in a directory by default.

`<root>/<tenant>/<environment>/` holds the files as they are (a team can look at them
with any tool), and `.ferry-meta/` beside them one JSON file per file: its metadata,
the SDK's system fields (`_name`, `_path`, `_folder`, `_mime_type`, `_size`, `_source`,
`_agent`, `_run_id`, `_session_id`, `_created_at`, `_updated_at`) plus the fields a
`file_write` or `file_update` gave. `file_list` filters on them with the `db_find`
operators. Paths are relative, `/`-separated, and can never leave the scope's folder.

The root is `$FERRY_FILES_DIR`, else `files/` under the Ferry home: every worker of one
machine shares it; several machines need a shared volume there.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol, TypeVar

from app.compat.documents import DocumentScope
from app.compat.filters import matches, sort_key
from app.contracts.errors import ToolError

META = ".ferry-meta"
MAX_LIMIT = 1000
_SAFE = re.compile(r"[^A-Za-z0-9._-]")
T = TypeVar("T")


def _scope_dir(root: Path, scope: DocumentScope) -> Path:
    return root / _SAFE.sub("_", scope.tenant) / _SAFE.sub("_", scope.environment)


def clean_path(path: Any, tool: str, *, folder: bool = False) -> str:
    """A relative POSIX path with no `.`/`..`/empty parts; "" is the root (folders only)."""
    if not isinstance(path, str):
        raise ToolError(f"{tool}: a path is a string", tool)
    parts = [p for p in path.strip().strip("/").split("/") if p not in ("", ".")]
    if any(p == ".." or p.startswith(META) or "\\" in p or "\x00" in p for p in parts):
        raise ToolError(f"{tool}: {path!r} is not a path inside the project files", tool)
    if not parts and not folder:
        raise ToolError(f"{tool}: a file path is needed", tool)
    return "/".join(parts)


@dataclass(frozen=True)
class RunFiles:
    """Who writes: the run's agent, run id and session, recorded on every file it writes."""

    agent: str
    run_id: str
    session_id: str | None = None


class FolderAccess(Protocol):
    """An agent's `files` rules (app.project.models.FilesAccessSpec)."""

    @property
    def folders(self) -> Mapping[str, Any] | None: ...

    @property
    def prevent_delete(self) -> bool: ...

    @property
    def prevent_write(self) -> bool: ...


def _below(path: str, folder: str) -> bool:
    return not folder or path == folder or path.startswith(folder + "/")


class Files:
    """The file tools of one run, bound to its scope and its agent's access rules."""

    def __init__(self, root: Path, scope: DocumentScope, writer: RunFiles, access: FolderAccess | None = None) -> None:
        self.base = _scope_dir(root, scope)
        self.writer = writer
        self._access = access

    def _visible(self, path: str) -> bool:
        folders = self._access.folders if self._access is not None else None
        return folders is None or any(_below(path, folder) for folder in folders)

    def _allowed(self, tool: str, path: str, *, write: bool = False, delete: bool = False) -> None:
        """Raise the tool error saying why, unless this agent may use `path` so."""
        access = self._access
        if access is None:
            return
        folders = access.folders
        if folders is not None and not self._visible(path):
            raise ToolError(
                f"{tool}: {path or '(the root)'!r} is outside the folders agent {self.writer.agent!r} may use "
                f"({', '.join(sorted(folders)) or 'none'})",
                tool,
            )
        closest = max((f for f in (folders or {}) if _below(path, f)), key=len, default=None)
        override = folders.get(closest) if folders is not None and closest is not None else None
        for wanted, flag_name in ((write, "prevent_write"), (delete, "prevent_delete")):
            flag = getattr(override, flag_name, None)
            if wanted and (flag if flag is not None else getattr(access, flag_name)):
                raise ToolError(f"{tool}: agent {self.writer.agent!r} may not change {path!r} ({flag_name})", tool)

    async def _io(self, work: Callable[[], T]) -> T:
        return await asyncio.to_thread(work)

    def _data(self, path: str) -> Path:
        return self.base.joinpath(*path.split("/")) if path else self.base

    def _meta(self, path: str) -> Path:
        return self.base.joinpath(META, *path.split("/")).with_name(path.split("/")[-1] + ".json")

    def _read_meta(self, path: str) -> dict[str, Any]:
        meta_file = self._meta(path)
        if meta_file.is_file():
            loaded: dict[str, Any] = json.loads(meta_file.read_text())
            return loaded
        data = self._data(path)
        return self._system(path, data.stat().st_size, mimetypes.guess_type(path)[0], None)

    def _system(self, path: str, size: int, mime: str | None, created: str | None) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        posix = PurePosixPath(path)
        return {
            "_name": posix.name,
            "_path": path,
            "_folder": "" if str(posix.parent) == "." else str(posix.parent),
            "_mime_type": mime or "application/octet-stream",
            "_size": size,
            "_source": "agent",
            "_agent": self.writer.agent,
            "_run_id": self.writer.run_id,
            "_session_id": self.writer.session_id,
            "_created_at": created or now,
            "_updated_at": now,
        }

    def _free_name(self, path: str) -> str:
        if not self._data(path).exists():
            return path
        posix = PurePosixPath(path)
        for number in range(2, 10_000):
            candidate = str(posix.with_name(f"{posix.stem} ({number}){posix.suffix}"))
            if not self._data(candidate).exists():
                return candidate
        raise ToolError(f"file_write: too many files named like {path!r}", "file_write")

    async def file_write(
        self,
        path: str,
        content: str | bytes,
        mime_type: str | None = None,
        metadata: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> dict[str, Any]:
        target = clean_path(path, "file_write")
        self._allowed("file_write", target, write=True)
        if any(str(key).startswith("_") for key in metadata or {}):
            raise ToolError("file_write: metadata keys must not start with '_' (those are system fields)", "file_write")
        raw = content.encode() if isinstance(content, str) else content
        if not isinstance(raw, bytes):
            raise ToolError("file_write: content is text or bytes", "file_write")

        def work() -> dict[str, Any]:
            final = target if overwrite else self._free_name(target)
            data = self._data(final)
            if data.is_dir():
                raise ToolError(f"file_write: {final!r} is a folder", "file_write")
            created = self._read_meta(final).get("_created_at") if data.is_file() else None
            data.parent.mkdir(parents=True, exist_ok=True)
            data.write_bytes(raw)
            mime = mime_type or mimetypes.guess_type(final)[0]
            meta = {**(metadata or {}), **self._system(final, len(raw), mime, created)}
            self._meta(final).parent.mkdir(parents=True, exist_ok=True)
            self._meta(final).write_text(json.dumps(meta))
            return meta

        return await self._io(work)

    async def file_read(self, path: str) -> dict[str, Any]:
        target = clean_path(path, "file_read")
        self._allowed("file_read", target)

        def work() -> dict[str, Any]:
            data = self._data(target)
            if not data.is_file():
                return {"error": f"no file {target!r}"}
            return {"file": self._read_meta(target), "content": data.read_bytes()}

        return await self._io(work)

    def _all_files(self, folder: str, recursive: bool) -> list[str]:
        base = self._data(folder)
        if not base.is_dir():
            return []
        found = base.rglob("*") if recursive else base.glob("*")
        return sorted(
            p.relative_to(self.base).as_posix()
            for p in found
            if p.is_file() and META not in p.relative_to(self.base).parts
        )

    async def file_list(
        self,
        folder: str = "",
        recursive: bool = False,
        filter: dict[str, Any] | None = None,
        scope: Literal["all", "session", "run"] = "all",
        sort: dict[str, int] | None = None,
        limit: int = 100,
        skip: int = 0,
    ) -> dict[str, Any]:
        base = clean_path(folder, "file_list", folder=True)
        if base:
            self._allowed("file_list", base)

        def work() -> dict[str, Any]:
            metas = [self._read_meta(p) for p in self._all_files(base, recursive) if self._visible(p)]
            if scope == "run":
                metas = [m for m in metas if m.get("_run_id") == self.writer.run_id]
            elif scope == "session":
                metas = [m for m in metas if self.writer.session_id and m.get("_session_id") == self.writer.session_id]
            metas = [m for m in metas if matches(m, filter)]
            for key, direction in reversed(list((sort or {"_name": 1}).items())):
                metas.sort(key=sort_key(key), reverse=direction == -1)
            folders = []
            if not recursive and self._data(base).is_dir():
                folders = sorted(
                    (PurePosixPath(base) / p.name).as_posix() if base else p.name
                    for p in self._data(base).iterdir()
                    if p.is_dir() and p.name != META
                )
            page = metas[max(0, skip) : max(0, skip) + max(0, min(limit, MAX_LIMIT))]
            return {"folder": base, "folders": folders, "files": page, "count": len(page), "total": len(metas)}

        return await self._io(work)

    async def file_update(
        self, path: str, new_path: str | None = None, metadata: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        source = clean_path(path, "file_update")
        target = clean_path(new_path, "file_update") if new_path is not None else source
        self._allowed("file_update", source, write=True)
        self._allowed("file_update", target, write=True)

        def work() -> dict[str, Any]:
            data = self._data(source)
            if data.is_dir():
                if metadata:
                    raise ToolError("file_update: metadata belongs to files, not folders", "file_update")
                moved = self._all_files(source, True)
                for old in moved:
                    self._move(old, target + old[len(source) :])
                shutil.rmtree(data, ignore_errors=True)
                shutil.rmtree(self._meta(source).with_suffix(""), ignore_errors=True)
                return {"moved": len(moved), "folder": target}
            if not data.is_file():
                raise ToolError(f"file_update: no file or folder {source!r}", "file_update")
            if target != source and self._data(target).exists():
                raise ToolError(f"file_update: {target!r} exists already", "file_update")
            meta = self._move(source, target) if target != source else self._read_meta(source)
            for key, value in (metadata or {}).items():
                if str(key).startswith("_"):
                    continue
                if value is None:
                    meta.pop(key, None)
                else:
                    meta[key] = value
            meta["_updated_at"] = datetime.now(UTC).isoformat()
            self._meta(target).write_text(json.dumps(meta))
            return {"moved": int(target != source), "file": meta}

        return await self._io(work)

    def _move(self, old: str, new: str) -> dict[str, Any]:
        meta = self._read_meta(old)
        self._data(new).parent.mkdir(parents=True, exist_ok=True)
        self._data(old).rename(self._data(new))
        posix = PurePosixPath(new)
        meta.update(_name=posix.name, _path=new, _folder="" if str(posix.parent) == "." else str(posix.parent))
        self._meta(new).parent.mkdir(parents=True, exist_ok=True)
        self._meta(new).write_text(json.dumps(meta))
        self._meta(old).unlink(missing_ok=True)
        return meta

    async def file_delete(self, path: str, recursive: bool = False) -> dict[str, Any]:
        target = clean_path(path, "file_delete")
        self._allowed("file_delete", target, delete=True)

        def work() -> dict[str, Any]:
            data = self._data(target)
            if data.is_dir():
                if not recursive:
                    raise ToolError(f"file_delete: {target!r} is a folder: pass recursive=true", "file_delete")
                count = len(self._all_files(target, True))
                shutil.rmtree(data)
                shutil.rmtree(self._meta(target).with_suffix(""), ignore_errors=True)
                return {"deleted": count}
            if not data.is_file():
                return {"deleted": 0}
            data.unlink()
            self._meta(target).unlink(missing_ok=True)
            return {"deleted": 1}

        return await self._io(work)

    def implementations(self) -> dict[str, Any]:
        return {
            "file_list": self.file_list,
            "file_read": self.file_read,
            "file_write": self.file_write,
            "file_update": self.file_update,
            "file_delete": self.file_delete,
        }
