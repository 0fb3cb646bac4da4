"""web_read_page: a page as markdown, behind the webhook connector's SSRF guard."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from app.compat.web_page import html_to_markdown
from app.contracts import RunRequest, RunStatus
from app.engine import Engine
from app.engine.testing import Reply, ScriptedLLM, tool_call
from app.project import load_project

PAGE = """<html><head><title>Returns</title><style>p {color: red}</style></head><body>
<h1>Returns policy</h1><p>Items can be returned within <strong>30 days</strong>.</p>
<ul><li>Unused items</li><li>With receipt</li></ul>
<p>See <a href="/faq">the FAQ</a>.</p><script>track()</script></body></html>"""


@pytest.fixture
async def site() -> AsyncIterator[str]:
    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def moved(_: web.Request) -> web.Response:
        raise web.HTTPFound("/policy")

    async def pdf(_: web.Request) -> web.Response:
        return web.Response(body=b"%PDF", content_type="application/pdf")

    app = web.Application()
    app.router.add_get("/policy", page)
    app.router.add_get("/old", moved)
    app.router.add_get("/doc.pdf", pdf)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


def test_html_becomes_markdown_without_scripts_or_styles() -> None:
    markdown, title = html_to_markdown(PAGE)
    assert title == "Returns"
    assert markdown == (
        "# Returns policy\n\nItems can be returned within **30 days**.\n\n- Unused items\n- With receipt\n\n"
        "See [the FAQ](/faq)."
    )


async def read(tmp_path: Path, calls: list[dict[str, Any]], allow_private: list[str]) -> list[Any]:
    root = tmp_path / "project"
    (root / "agents").mkdir(parents=True)
    agent = {"version": "1.0", "name": "reader", "description": "reads pages", "model": "openai/sim",
             "system_prompt": "Read.", "tools": ["web_read_page"]}  # fmt: skip
    (root / "agents" / "reader.yaml").write_text(yaml.safe_dump(agent))
    (root / "ferry.yaml").write_text(yaml.safe_dump({"webhooks": {"allow_private": allow_private}}))
    llm = ScriptedLLM([Reply(tool_calls=[tool_call("web_read_page", args) for args in calls]), "read"])
    engine = Engine(load_project(root), llm=llm)
    try:
        result = await engine.run(RunRequest.new("reader", "read it"))
    finally:
        await engine.aclose()
    assert result.status is RunStatus.COMPLETED
    return [json.loads(m["content"]) for m in llm.requests[1].messages if m["role"] == "tool"]


async def test_a_page_on_an_allowed_network_is_read_and_redirects_followed(site: str, tmp_path: Path) -> None:
    calls = [
        {"url": f"{site}/old"},
        {"url": f"{site}/old", "follow_redirects": False},
        {"url": f"{site}/doc.pdf"},
    ]
    followed, not_followed, pdf = await read(tmp_path, calls, ["127.0.0.1/32"])
    assert followed["url"] == f"{site}/policy" and followed["title"] == "Returns"
    assert followed["markdown"].startswith("# Returns policy")
    assert not_followed == {"url": f"{site}/old", "error": "the page redirects", "redirect_url": f"{site}/policy"}
    assert pdf == {"url": f"{site}/doc.pdf", "error": "not a text page (application/pdf)"}


async def test_a_private_address_is_refused_as_webhook_callbacks_are(site: str, tmp_path: Path) -> None:
    (refused,) = await read(tmp_path, [{"url": f"{site}/policy"}], [])
    assert refused["error"].startswith("web_read_page: ")
    assert "127.0.0.1" in refused["error"]
    (metadata,) = await read(tmp_path / "b", [{"url": "http://169.254.169.254/latest/meta-data"}], ["127.0.0.1/32"])
    assert "metadata" in metadata["error"]
