"""A project snapshot: exactly the files a worker needs to run it, and their content hash.

The version of a deployment is derived from these bytes alone (paths and contents, not
times or who deployed), so deploying the same tree twice is the same version and a
version names one set of files forever. A snapshot comes from a directory (`--allow-dirty`,
`ferry dev`) or from a git ref (`git ls-tree` + `git cat-file` of the tree at REF, so
uncommitted edits never leak into a deployment made from git).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from app.deploy.errors import DeploymentError

#: Folders of a project that workers load (the rest — tests, cassettes, docs — stay home).
DEPLOYED_FOLDERS = ("agents", "tools", "schemas", "middleware", "hooks", "guardrails", "topics", "connectors")
DEPLOYED_FILES = ("ferry.yaml",)
#: Sum of the file sizes a deployment may carry: the record (gzip'd JSON) must fit the
#: topic's `max.message.bytes` (see `log.py`) whatever the compression achieves.
MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024


def plain(path: str) -> bool:
    """No dot-file, dot-folder, cache or compiled file on the path."""
    parts = PurePosixPath(path).parts
    return bool(parts) and not any(
        p.startswith(".") or p == "__pycache__" or p.endswith((".pyc", ".pyo")) for p in parts
    )


def deployed(path: str) -> bool:
    """Whether a project-relative POSIX path belongs in a deployment."""
    parts = PurePosixPath(path).parts
    if not plain(path):
        return False
    if len(parts) == 1:
        return parts[0] in DEPLOYED_FILES
    return parts[0] in DEPLOYED_FOLDERS


def version_of(files: Mapping[str, bytes]) -> str:
    """`v` + 12 hex digits of a digest over every (path, sha256 of content), sorted."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(f"{path}\x00{hashlib.sha256(files[path]).hexdigest()}\n".encode())
    return "v" + digest.hexdigest()[:12]


def check_size(files: Mapping[str, bytes], limit: int = MAX_SNAPSHOT_BYTES) -> None:
    total = sum(len(data) for data in files.values())
    if total > limit:
        largest = sorted(files, key=lambda p: len(files[p]), reverse=True)[:3]
        shown = ", ".join(f"{p} ({len(files[p]):,} B)" for p in largest)
        raise DeploymentError(
            f"the project's files add up to {total:,} bytes, over the deployment limit of {limit:,} "
            f"(largest: {shown}) — fix: keep data files out of {', '.join(DEPLOYED_FOLDERS)}"
        )


def snapshot_directory(root: Path) -> dict[str, bytes]:
    """The deployed files under `root` as they are on disk now."""
    root = root.resolve()
    files: dict[str, bytes] = {}
    for name in DEPLOYED_FILES:
        if (root / name).is_file():
            files[name] = (root / name).read_bytes()
    for folder in DEPLOYED_FOLDERS:
        base = root / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and deployed(rel):
                if not path.resolve().is_relative_to(root):
                    raise DeploymentError(f"{rel} resolves outside the project (symlink?) — fix: copy it in")
                files[rel] = path.read_bytes()
    if not any(p.startswith("agents/") for p in files):
        raise DeploymentError(f"{root} has no agents/ folder: not a Ferry project")
    return files


def _git(repo: Path, *args: str, data: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], input=data, capture_output=True, check=False)
    except FileNotFoundError:
        raise DeploymentError("git is not installed — fix: install git, or deploy with --allow-dirty") from None
    if done.returncode != 0:
        raise DeploymentError(f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


class GitTree:
    """The project folder inside a git work tree, read at one ref."""

    def __init__(self, project: Path) -> None:
        self.project = project.resolve()
        try:
            top = _git(self.project, "rev-parse", "--show-toplevel").decode().strip()
        except DeploymentError:
            raise DeploymentError(
                f"{self.project} is not inside a git repository — fix: commit it to git, or deploy with --allow-dirty"
            ) from None
        self.top = Path(top).resolve()
        prefix = self.project.relative_to(self.top).as_posix()
        self.prefix = "" if prefix == "." else prefix + "/"

    def commit(self, ref: str) -> dict[str, str]:
        """commit, author and message of `ref`."""
        sha = _git(self.top, "rev-parse", "--verify", f"{ref}^{{commit}}").decode().strip()
        fields = _git(self.top, "show", "-s", "--format=%an <%ae>%x00%s", sha).decode().split("\x00", 1)
        return {"commit": sha, "author": fields[0].strip(), "message": fields[1].strip() if len(fields) > 1 else ""}

    def dirty_paths(self) -> list[str]:
        """Deployed files that differ from HEAD or are untracked (what the tree at REF would miss)."""
        out = _git(self.top, "status", "--porcelain", "-z", "--untracked-files=all", "--", self.prefix or ".")
        paths = []
        for entry in out.decode(errors="replace").split("\x00"):
            if len(entry) > 3:
                rel = entry[3:]
                inner = rel[len(self.prefix) :] if rel.startswith(self.prefix) else rel
                if deployed(inner):
                    paths.append(inner)
        return sorted(paths)

    def files(self, ref: str, extra_folders: tuple[str, ...] = ()) -> dict[str, bytes]:
        """The deployed files of the tree at `ref`, plus those under `extra_folders`."""
        listing = _git(self.top, "ls-tree", "-r", "-z", "--full-tree", ref, "--", self.prefix or ".")
        wanted: list[tuple[str, str]] = []
        for entry in listing.decode(errors="replace").split("\x00"):
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            mode, kind, sha = meta.split()
            inner = path[len(self.prefix) :] if path.startswith(self.prefix) else path
            extra = inner.split("/", 1)[0] in extra_folders and plain(inner)
            if kind == "blob" and mode != "120000" and (deployed(inner) or extra):
                wanted.append((inner, sha))
        return dict(zip((p for p, _ in wanted), _blobs(self.top, [s for _, s in wanted]), strict=True))


def _blobs(repo: Path, shas: Iterable[str]) -> list[bytes]:
    """Contents of blobs in one `git cat-file --batch` call."""
    shas = list(shas)
    if not shas:
        return []
    out = _git(repo, "cat-file", "--batch", data="".join(f"{s}\n" for s in shas).encode())
    blobs: list[bytes] = []
    pos = 0
    for _ in shas:
        header_end = out.index(b"\n", pos)
        size = int(out[pos:header_end].split()[2])
        blobs.append(out[header_end + 1 : header_end + 1 + size])
        pos = header_end + 1 + size + 1
    return blobs
