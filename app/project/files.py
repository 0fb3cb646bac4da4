"""Reading project files: one place that hashes every byte the loader looks at.

The hashes make a loaded project reproducible and comparable (deployments pin them), so
no module may read a project file except through `ProjectFiles`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from app.project.problems import Loc, Problems


class ProjectFiles:
    def __init__(self, root: Path, problems: Problems) -> None:
        self.root = root.resolve()
        self.problems = problems
        self.hashes: dict[str, str] = {}

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()

    def inside(self, path: Path) -> bool:
        """Whether `path`, symlinks followed, stays within the project root."""
        return path.resolve().is_relative_to(self.root)

    def read_bytes(self, path: Path) -> bytes | None:
        rel = self.rel(path)
        if not self.inside(path):
            self.problems.error(Loc(rel), "resolves outside the project directory (symlink?); not read")
            return None
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.problems.error(Loc(rel), f"cannot read: {exc.strerror or exc}")
            return None
        self.hashes[rel] = hashlib.sha256(data).hexdigest()
        return data

    def read_text(self, path: Path) -> str | None:
        data = self.read_bytes(path)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problems.error(Loc(self.rel(path)), f"is not UTF-8 text: {exc.reason} at byte {exc.start}")
            return None

    def discover(self, folder: str, suffixes: tuple[str, ...], recursive: bool = True) -> Iterator[Path]:
        """Files under `folder` with one of `suffixes`, sorted; dot-files and dot-folders skipped."""
        base = self.root / folder
        if not base.is_dir():
            return iter(())
        found = base.rglob("*") if recursive else base.glob("*")
        paths = [
            p
            for p in found
            if p.suffix in suffixes
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(base).parts)
        ]
        return iter(sorted(paths, key=lambda p: p.relative_to(base).as_posix()))

    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for rel in sorted(self.hashes):
            digest.update(f"{rel}\x00{self.hashes[rel]}\n".encode())
        return digest.hexdigest()
