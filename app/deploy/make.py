"""What `ferry deploy` builds before it publishes: the deployment, and the tree its gate checks.

From git (the default) the files are the tree at REF and a work tree with uncommitted
changes to deployed files is refused, so a deployment says exactly which commit it is.
`allow_dirty` deploys the files on disk instead and records that it did (`dirty`), with
the commit they were based on when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from app.deploy.errors import DeploymentError
from app.deploy.records import Deployment, GitSource
from app.deploy.snapshot import GitTree, check_size, plain, snapshot_directory, version_of

#: Besides the deployed files, what the gate needs from the same tree (`ferry test`'s suites).
GATE_FOLDERS = ("tests",)


@dataclass
class Candidate:
    deployment: Deployment
    files: dict[str, bytes]
    gate_files: dict[str, bytes] = field(default_factory=dict)  # tests/ of the same tree

    @property
    def version(self) -> str:
        return self.deployment.version


def _gate_files_on_disk(root: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for folder in GATE_FOLDERS:
        base = root / folder
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                rel = path.relative_to(root).as_posix()
                if path.is_file() and plain(rel):
                    found[rel] = path.read_bytes()
    return found


def build_candidate(
    project: Path, *, ref: str | None = None, message: str | None = None, allow_dirty: bool = False
) -> Candidate:
    """The deployment of `project` at `ref` (default HEAD), or of its files on disk with `allow_dirty`."""
    project = project.resolve()
    try:
        tree: GitTree | None = GitTree(project)
    except DeploymentError:
        if not allow_dirty:
            raise
        tree = None
    if allow_dirty and ref is not None:
        raise DeploymentError("--ref deploys a commit, --allow-dirty the files on disk: give one of them")
    if allow_dirty:
        files = snapshot_directory(project)
        gate = _gate_files_on_disk(project)
        dirty = bool(tree.dirty_paths()) if tree is not None else True
        git = None
        if tree is not None:
            head = tree.commit("HEAD")
            git = GitSource(ref="HEAD", **head)
    else:
        assert tree is not None
        dirty_paths = tree.dirty_paths() if ref is None else []
        if dirty_paths:
            shown = ", ".join(dirty_paths[:5]) + (", …" if len(dirty_paths) > 5 else "")
            raise DeploymentError(
                f"uncommitted changes to deployed files ({shown}) — fix: commit them, or deploy with --allow-dirty"
            )
        wanted = ref or "HEAD"
        head = tree.commit(wanted)
        git = GitSource(ref=wanted, **head)
        everything = tree.files(head["commit"], extra_folders=GATE_FOLDERS)
        files = {p: d for p, d in everything.items() if not p.startswith(tuple(f + "/" for f in GATE_FOLDERS))}
        gate = {p: d for p, d in everything.items() if p not in files}
        dirty = False
        if not any(p.startswith("agents/") for p in files):
            raise DeploymentError(f"the tree at {wanted} has no agents/ under {tree.prefix or '.'}: nothing to deploy")
    check_size(files)
    version = version_of(files)
    text = message if message is not None else (git.message if git is not None else "")
    deployment = Deployment.of(version, files, message=text, git=git, dirty=dirty)
    return Candidate(deployment, files, gate)
