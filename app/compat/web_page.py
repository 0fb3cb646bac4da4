"""`web_read_page`: a web page fetched and turned into markdown for the model.

A URL comes from the model, so from whoever wrote its input: the fetch is guarded as
webhook callbacks are (app/connectors/webhook/ssrf.py, given here as a `UrlGuard`): the
URL's host must resolve to public addresses only (or to a network `webhooks.allow_private`
of ferry.yaml lists), checked again by the connection's resolver so a DNS answer cannot
change in between, and at every redirect, which is followed by hand (at most 5). A page
may take `TIMEOUT_S` and `MAX_BYTES`; beyond, the fetch fails or the text is cut.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver

from app.contracts.errors import FerryError, ToolError

TIMEOUT_S = 20.0
MAX_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 5
MAX_MARKDOWN = 100_000
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml")


class UrlGuard(Protocol):
    async def check(self, url: str) -> None:
        """Raise (a FerryError) unless the URL's host may be fetched."""
        ...

    def resolver(self) -> AbstractResolver:
        """The resolver the connection uses: it resolves, checks and returns only safe addresses."""
        ...


class _Markdown(HTMLParser):
    """HTML to plain markdown: headings, paragraphs, lists, links, emphasis, code; scripts dropped."""

    _SKIP = frozenset({"script", "style", "noscript", "svg", "template", "head"})
    _BLOCK = frozenset({"p", "div", "section", "article", "main", "header", "footer", "table", "tr", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in self._SKIP:
            self._skip += 1
            return
        if re.fullmatch(r"h[1-6]", tag):
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self._BLOCK:
            self.out.append("\n\n")
        elif tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in ("strong", "b"):
            self.out.append("**")
        elif tag in ("em", "i"):
            self.out.append("*")
        elif tag in ("code", "pre"):
            self.out.append("`")
        elif tag == "a":
            self._links.append(dict(attrs).get("href"))
            self.out.append("[")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
            return
        if re.fullmatch(r"h[1-6]", tag) or tag in self._BLOCK:
            self.out.append("\n\n")
        elif tag in ("strong", "b"):
            self.out.append("**")
        elif tag in ("em", "i"):
            self.out.append("*")
        elif tag in ("code", "pre"):
            self.out.append("`")
        elif tag == "a" and self._links:
            href = self._links.pop()
            self.out.append(f"]({href})" if href else "]")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if not self._skip:
            self.out.append(re.sub(r"\s+", " ", data))

    def markdown(self) -> str:
        text = "".join(self.out)
        text = re.sub(r"[ \t]+\n", "\n", text)
        text = re.sub(r"\n{3,}", "\n\n", text)
        return text.strip()


def html_to_markdown(html: str) -> tuple[str, str]:
    """(markdown, title) of an HTML document."""
    parser = _Markdown()
    parser.feed(html)
    parser.close()
    return parser.markdown(), parser.title.strip()


class PageReader:
    def __init__(self, guard: UrlGuard) -> None:
        self._guard = guard

    async def web_read_page(self, url: str, follow_redirects: bool = True) -> dict[str, Any]:
        parts = urlsplit(url if isinstance(url, str) else "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ToolError(f"web_read_page: {url!r} is not an http(s) URL", "web_read_page")
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        connector = aiohttp.TCPConnector(resolver=self._guard.resolver(), limit=4)
        current = url
        try:
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
                for _ in range(MAX_REDIRECTS + 1):
                    await self._guard.check(current)  # literal addresses too: the resolver sees only names
                    async with session.get(current, allow_redirects=False) as response:
                        if response.status in (301, 302, 303, 307, 308) and "Location" in response.headers:
                            target = urljoin(current, response.headers["Location"])
                            if not follow_redirects:
                                return {"url": current, "error": "the page redirects", "redirect_url": target}
                            current = target
                            continue
                        if response.status >= 400:
                            return {"url": current, "error": f"HTTP {response.status}"}
                        return await self._page(current, response)
                return {"url": current, "error": f"more than {MAX_REDIRECTS} redirects"}
        except FerryError as exc:  # the guard refused the address
            raise ToolError(f"web_read_page: {exc.message}", "web_read_page") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            return {"url": current, "error": f"the page could not be fetched: {type(exc).__name__}"}

    @staticmethod
    async def _page(url: str, response: aiohttp.ClientResponse) -> dict[str, Any]:
        kind = response.headers.get("Content-Type", "text/html").split(";")[0].strip().lower()
        if not kind.startswith(_TEXT_TYPES):
            return {"url": url, "error": f"not a text page ({kind})"}
        body = await response.content.read(MAX_BYTES + 1)
        cut = len(body) > MAX_BYTES
        text = body[:MAX_BYTES].decode(response.charset or "utf-8", errors="replace")
        if kind in ("text/html", "application/xhtml+xml"):
            markdown, title = html_to_markdown(text)
        else:
            markdown, title = text, ""
        page: dict[str, Any] = {"url": url, "markdown": markdown[:MAX_MARKDOWN]}
        if title:
            page["title"] = title
        if cut or len(markdown) > MAX_MARKDOWN:
            page["truncated"] = True
        return page
