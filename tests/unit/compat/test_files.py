"""The file_* tools on a folder: write, read, list with metadata filters, move, delete,
names never leaving the scope, and what the model reads of a file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from app.compat.documents import DocumentScope
from app.compat.files import Files, RunFiles
from app.contracts import RunRequest, RunStatus
from app.contracts.errors import ToolError
from app.engine import Engine
from app.engine.testing import Reply, ScriptedLLM, tool_call
from app.project import load_project


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path / "files", DocumentScope("acme", "prod"), RunFiles(agent="clerk", run_id="run-1"))


def test_write_read_list_update_and_delete(files: Files, tmp_path: Path) -> None:
    written = asyncio.run(files.file_write("invoices/2026/acme.md", "# Acme", metadata={"status": "pending"}))
    assert written["_path"] == "invoices/2026/acme.md" and written["_mime_type"] == "text/markdown"
    assert (written["_agent"], written["_run_id"], written["_size"]) == ("clerk", "run-1", 6)
    assert (tmp_path / "files" / "acme" / "prod" / "invoices" / "2026" / "acme.md").read_text() == "# Acme"
    again = asyncio.run(files.file_write("invoices/2026/acme.md", "# Acme v2"))
    assert again["_path"] == "invoices/2026/acme (2).md"  # never overwritten unless asked
    asyncio.run(files.file_write("invoices/2026/acme.md", "# Acme v3", overwrite=True, metadata={"status": "paid"}))
    read = asyncio.run(files.file_read("invoices/2026/acme.md"))
    assert read["content"] == b"# Acme v3" and read["file"]["status"] == "paid"

    top = asyncio.run(files.file_list())
    assert (top["folders"], top["files"]) == (["invoices"], [])
    paid = asyncio.run(files.file_list("invoices", recursive=True, filter={"status": "paid"}))
    assert [f["_path"] for f in paid["files"]] == ["invoices/2026/acme.md"] and paid["total"] == 1

    moved = asyncio.run(files.file_update("invoices/2026/acme.md", new_path="done/acme.md", metadata={"status": None}))
    assert moved["moved"] == 1 and "status" not in moved["file"] and moved["file"]["_folder"] == "done"
    folder = asyncio.run(files.file_update("invoices", new_path="archive/invoices"))
    assert folder == {"moved": 1, "folder": "archive/invoices"}
    assert asyncio.run(files.file_read("archive/invoices/2026/acme (2).md"))["content"] == b"# Acme v2"
    with pytest.raises(ToolError, match="pass recursive=true"):
        asyncio.run(files.file_delete("archive"))
    assert asyncio.run(files.file_delete("archive", recursive=True)) == {"deleted": 1}
    assert asyncio.run(files.file_list(recursive=True))["total"] == 1  # done/acme.md


@pytest.mark.parametrize("path", ["../escape.txt", "a/../../b", ".ferry-meta/x.json", ""])
def test_a_path_outside_the_scope_is_refused(files: Files, path: str) -> None:
    with pytest.raises(ToolError):
        asyncio.run(files.file_write(path, "x"))


def test_tenants_have_their_own_trees(files: Files, tmp_path: Path) -> None:
    asyncio.run(files.file_write("notes.txt", "mine"))
    other = Files(tmp_path / "files", DocumentScope("globex", "prod"), RunFiles(agent="clerk", run_id="run-2"))
    assert asyncio.run(other.file_list())["total"] == 0
    assert asyncio.run(other.file_read("notes.txt")) == {"error": "no file 'notes.txt'"}


async def test_the_model_reads_a_text_file_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_FILES_DIR", str(tmp_path / "files"))
    root = tmp_path / "project"
    (root / "agents").mkdir(parents=True)
    agent = {"version": "1.0", "name": "clerk", "description": "files things", "model": "openai/sim",
             "system_prompt": "Keep notes.", "tools": ["file_write", "file_read"]}  # fmt: skip
    (root / "agents" / "clerk.yaml").write_text(yaml.safe_dump(agent))
    llm = ScriptedLLM(
        [
            Reply(tool_calls=[tool_call("file_write", {"path": "notes/today.txt", "content": "call Bob"})]),
            Reply(tool_calls=[tool_call("file_read", {"path": "notes/today.txt"})]),
            "done",
        ]
    )
    engine = Engine(load_project(root), llm=llm)
    try:
        result = await engine.run(RunRequest.new("clerk", "note: call Bob", tenant="acme"))
    finally:
        await engine.aclose()
    assert result.status is RunStatus.COMPLETED
    read = json.loads([m for m in llm.requests[2].messages if m["role"] == "tool"][-1]["content"])
    assert read["content"] == "call Bob" and read["file"]["_agent"] == "clerk"
    assert (tmp_path / "files" / "acme" / "default" / "notes" / "today.txt").read_text() == "call Bob"


async def test_a_tool_returning_a_toolfile_or_bytes_is_readable_by_the_model(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "agents").mkdir(parents=True)
    (root / "tools").mkdir()
    (root / "tools" / "docs.py").write_text(
        "from connic import ToolFile\n\n\n"
        "def invoice() -> dict:\n"
        "    return ToolFile(data=b'%PDF-1.7\\xff', mime_type='application/pdf', name='inv.pdf')\n\n\n"
        "def note() -> str:\n"
        "    return b'plain words'\n"
    )
    agent = {"version": "1.0", "name": "reader", "description": "reads", "model": "openai/sim",
             "system_prompt": "Read.", "tools": ["docs.invoice", "docs.note"]}  # fmt: skip
    (root / "agents" / "reader.yaml").write_text(yaml.safe_dump(agent))
    llm = ScriptedLLM([Reply(tool_calls=[tool_call("invoice", {}), tool_call("note", {})]), "read"])
    engine = Engine(load_project(root), llm=llm)
    try:
        result = await engine.run(RunRequest.new("reader", "read them"))
    finally:
        await engine.aclose()
    assert result.status is RunStatus.COMPLETED
    pdf, note = [m["content"] for m in llm.requests[1].messages if m["role"] == "tool"]
    assert json.loads(pdf) == {"name": "inv.pdf", "mime_type": "application/pdf", "size_bytes": 9,
                               "base64": "JVBERi0xLjf/"}  # fmt: skip
    assert note == "plain words"


def test_an_agents_files_rules_bind_its_file_calls(tmp_path: Path) -> None:
    from app.project.models import FilesAccessSpec

    rules = FilesAccessSpec.model_validate(
        {"prevent_delete": True, "folders": {"inbox": {}, "reports/": {"prevent_write": True}}}
    )
    owner = Files(tmp_path / "files", DocumentScope("acme", "prod"), RunFiles(agent="clerk", run_id="r"))
    asyncio.run(owner.file_write("reports/q3.md", "Q3"))
    asyncio.run(owner.file_write("secrets/key.txt", "k"))
    limited = Files(tmp_path / "files", DocumentScope("acme", "prod"), RunFiles(agent="bot", run_id="r2"), rules)
    assert asyncio.run(limited.file_write("inbox/a.txt", "a"))["_path"] == "inbox/a.txt"
    assert [f["_path"] for f in asyncio.run(limited.file_list(recursive=True))["files"]] == [
        "inbox/a.txt",
        "reports/q3.md",
    ]  # secrets/ is not listed
    assert asyncio.run(limited.file_read("reports/q3.md"))["content"] == b"Q3"
    refusals = [
        (limited.file_read("secrets/key.txt"), "file_read: 'secrets/key.txt' is outside the folders agent 'bot' "
         "may use (inbox, reports)"),
        (limited.file_write("reports/q4.md", "x"), "file_write: agent 'bot' may not change 'reports/q4.md' "
         "(prevent_write)"),
        (limited.file_delete("inbox/a.txt"), "file_delete: agent 'bot' may not change 'inbox/a.txt' (prevent_delete)"),
    ]  # fmt: skip
    for call, message in refusals:
        with pytest.raises(ToolError) as refused:
            asyncio.run(call)
        assert refused.value.message == message
