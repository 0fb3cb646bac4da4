"""`discoverable_tools`: tools the model finds with `search_tools` instead of seeing upfront.

Connic keeps an agent's discoverable tools out of the model's context (a large catalogue
costs tokens on every call) and offers one tool, `search_tools(query)`, that returns the
best-matching ones by name and description. A tool found is offered to the model from
its next call on, for the rest of the run; one never found cannot be called. Matching is
the knowledge tools' lexical ranking over each tool's name and description.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.compat.passages import Chunk, LexicalRetriever
from app.project.tooldef import ToolDef

SEARCH_TOOLS = "search_tools"
MAX_FOUND = 10


class Discovery:
    """One run's discoverable tools and the ones `search_tools` has found so far."""

    def __init__(self, candidates: Sequence[ToolDef]) -> None:
        self.candidates = {tool.name: tool for tool in candidates}
        self.found: dict[str, ToolDef] = {}

    async def search_tools(self, query: str, max_results: int = 5) -> dict[str, Any]:
        chunks = [
            Chunk(name, "", 0, f"{name} {name.replace('_', ' ')} {tool.description}", {})
            for name, tool in self.candidates.items()
        ]
        scored = sorted(
            zip(LexicalRetriever().scores(query, chunks), chunks, strict=True),
            key=lambda pair: (-pair[0], pair[1].entry_id),
        )
        hits = [c.entry_id for score, c in scored if score > 0][: max(1, min(int(max_results), MAX_FOUND))]
        for name in hits:
            self.found[name] = self.candidates[name]
        return {
            "tools": [{"name": name, "description": self.candidates[name].description} for name in hits],
            "note": "These tools can be called from now on." if hits else "No tool matches; try other words.",
        }

    def tool(self) -> ToolDef:
        parameters = {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What the tool you need should do."},
                "max_results": {"type": "integer", "description": "How many tools to return (default 5)."},
            },
            "required": ["query"],
        }
        description = "Find tools for a task among the tools not shown to you yet; the tools found can be called next."
        return ToolDef(
            name=SEARCH_TOOLS,
            ref=SEARCH_TOOLS,
            func=self.search_tools,
            schema={
                "type": "function",
                "function": {"name": SEARCH_TOOLS, "description": description, "parameters": parameters},
            },
            description=description,
            is_async=True,
            runs_inline=True,
        )
