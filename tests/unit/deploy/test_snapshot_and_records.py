"""Snapshots, versions, topic records and the canary split: what a deployment is, without Kafka."""

from __future__ import annotations

import random
import subprocess
import uuid
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from app.deploy.canary import bucket, choose_version, in_canary
from app.deploy.errors import DeploymentError
from app.deploy.log import Book
from app.deploy.make import build_candidate
from app.deploy.records import ACTIVE_KEY, ActiveState, Deployment
from app.deploy.snapshot import check_size, deployed, snapshot_directory, version_of

AGENT = "version: '1.0'\nname: echo\ndescription: test\nmodel: openai/sim\nsystem_prompt: hi\n"


def _project(root: Path, prompt: str = "hi") -> Path:
    (root / "agents").mkdir(parents=True, exist_ok=True)
    (root / "agents" / "echo.yaml").write_text(AGENT.replace("hi", prompt))
    (root / "tools").mkdir(exist_ok=True)
    (root / "tools" / "calc.py").write_text("def add(a: int, b: int) -> int:\n    return a + b\n")
    (root / "tools" / "__pycache__").mkdir(exist_ok=True)
    (root / "tools" / "__pycache__" / "calc.cpython-311.pyc").write_bytes(b"\0junk")
    (root / "ferry.yaml").write_text("models: {}\n")
    (root / "tests").mkdir(exist_ok=True)
    (root / "tests" / "echo.yaml").write_text("version: '1.0'\ntests: []\n")
    (root / "notes.md").write_text("not deployed")
    return root


def _git(root: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
        "HOME": str(root),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True, env=env).stdout


def _repo(root: Path) -> Path:
    _project(root)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "first agent")
    return root


def test_a_snapshot_holds_the_files_workers_load_and_nothing_else(tmp_path: Path) -> None:
    files = snapshot_directory(_project(tmp_path))
    assert sorted(files) == ["agents/echo.yaml", "ferry.yaml", "tools/calc.py"]
    assert not deployed("tools/.secret.py") and not deployed("tests/echo.yaml") and deployed("schemas/a.json")


def test_the_version_depends_on_the_bytes_only(tmp_path: Path) -> None:
    one = snapshot_directory(_project(tmp_path / "a"))
    same = snapshot_directory(_project(tmp_path / "b"))  # another folder, same files
    other = snapshot_directory(_project(tmp_path / "c", prompt="changed"))
    assert version_of(one) == version_of(same)
    assert version_of(one) != version_of(other)
    assert version_of({"a": b"xy"}) != version_of({"ax": b"y"})  # path and content kept apart
    assert version_of(one).startswith("v") and len(version_of(one)) == 13


def test_a_snapshot_over_the_size_limit_is_refused_naming_the_largest_files() -> None:
    with pytest.raises(DeploymentError, match=r"over the deployment limit of 1,000 \(largest: tools/big\.bin"):
        check_size({"tools/big.bin": b"x" * 2000, "agents/a.yaml": b"y"}, limit=1000)


def test_from_git_the_tree_at_the_ref_is_deployed_with_its_commit(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    first = build_candidate(root)
    assert first.deployment.git is not None and first.deployment.git.message == "first agent"
    assert first.deployment.git.author == "Ada <ada@example.com>" and not first.deployment.dirty
    assert first.files == snapshot_directory(root)
    assert sorted(first.gate_files) == ["tests/echo.yaml"]  # the gate sees the tests of the same tree

    (root / "agents" / "echo.yaml").write_text(AGENT.replace("hi", "second"))
    with pytest.raises(DeploymentError, match=r"uncommitted changes to deployed files \(agents/echo\.yaml\)"):
        build_candidate(root)
    dirty = build_candidate(root, allow_dirty=True, message="try it")
    assert dirty.deployment.dirty and dirty.deployment.message == "try it"
    assert dirty.version != first.version
    assert build_candidate(root, ref="HEAD").version == first.version  # an explicit ref: the commit, not the disk

    (root / "notes.md").write_text("edited, but not deployed")
    _git(root, "checkout", "-q", "--", "agents/echo.yaml")
    assert build_candidate(root).version == first.version  # a change outside the deployed files is no reason to refuse


def test_a_project_outside_git_needs_allow_dirty(tmp_path: Path) -> None:
    _project(tmp_path)
    with pytest.raises(DeploymentError, match="not inside a git repository"):
        build_candidate(tmp_path)
    assert build_candidate(tmp_path, allow_dirty=True).deployment.dirty


def test_a_deployment_record_round_trips_its_files_compressed() -> None:
    files = {"agents/a.yaml": b"name: a\n" * 200, "tools/t.py": bytes(range(256))}
    deployment = Deployment.of(version_of(files), files, message="m")
    value = deployment.encode()
    assert len(value) < sum(map(len, files.values()))
    back = Deployment.decode(value)
    assert back.file_bytes() == files and back.version == deployment.version


def _record(key: str, value: bytes | None, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", 0, offset, 0, 0, key.encode(), value, None, 0, len(value or b""), [])


def test_the_book_keeps_every_deployment_and_the_latest_active_state() -> None:
    book = Book()
    v1 = Deployment.of("v1", {"agents/a.yaml": b"1"})
    v2 = Deployment.of("v2", {"agents/a.yaml": b"2"})
    assert not book.apply(_record("v1", v1.encode()))
    assert not book.apply(_record("v2", v2.encode()))
    assert book.apply(_record(ACTIVE_KEY, ActiveState().activate("v1", "deploy").encode()))
    assert book.apply(_record(ACTIVE_KEY, book.state.activate("v2", "deploy").encode()))
    assert not book.apply(_record("junk", b"not gzip"))  # unreadable: skipped, not fatal
    assert set(book.deployments) == {"v1", "v2"} and book.state.active == "v2"
    assert book.get("v1").version == "v1"
    with pytest.raises(DeploymentError, match="no deployment 'v9'"):
        book.get("v9")


def test_rollback_returns_to_the_version_active_before_step_by_step() -> None:
    state = ActiveState().activate("v1", "deploy").activate("v2", "deploy").activate("v3", "deploy")
    state = state.with_canary("v4", 10, "canary")
    back = state.rolled_back()
    assert back is not None and back.active == "v2" and back.canary is None
    again = back.rolled_back()
    assert again is not None and again.active == "v1"
    assert again.rolled_back() is None  # nothing before the first
    assert ActiveState().activate("v1", "x").activate("v1", "x").previous == ()  # re-activating is no step


def test_the_canary_split_is_stable_per_run_and_close_to_its_percentage() -> None:
    state = ActiveState().activate("v1", "deploy").with_canary("v2", 10, "canary")
    ids = [str(uuid.UUID(int=i * 7919 + 13, version=4)) for i in range(100_000)]
    share = sum(choose_version(i, state) == "v2" for i in ids) / len(ids)
    assert 0.095 <= share <= 0.105
    assert all(choose_version(i, state) == choose_version(i, state) for i in ids[:1000])
    assert choose_version(ids[0], state, pinned="v7") == "v7"  # a pin wins over the split
    rng = random.Random(11)  # run ids as `RunRequest.new` makes them (uuid4), reproducibly
    thousand = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(1000)]
    assert 70 <= sum(in_canary(i, 10) for i in thousand) <= 130  # 10 % ± 3 % of 1,000 runs
    assert all(0 <= bucket(i) < 10_000 for i in thousand)
    assert choose_version("x", ActiveState()) is None  # nothing deployed: the worker's own files
