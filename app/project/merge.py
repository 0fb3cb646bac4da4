"""`_defaults.yaml` merging, positions included.

Rules (AGENT_FORMAT.md, matching connic-composer-sdk): scalars override; maps merge per
key; `tools` lists concatenate, an entry whose ref is re-declared lower down replacing
the one above (so a folder can attach a condition to a tool its parent granted);
`agents` lists concatenate without duplicates; any other list is replaced. The shadow
(positions) is merged alongside, so every merged value keeps the file it came from.
"""

from __future__ import annotations

from typing import Any

from app.project.yamlmarks import PathKey, Shadow

#: Keys that identify one agent; inheriting them would give two agents one identity.
DEFAULTS_FORBIDDEN_KEYS: tuple[str, ...] = ("name", "description")


def tool_entry_ref(entry: Any) -> str | None:
    """The ref of a raw `tools:` entry (`"m.f"` or `{"m.f": condition}`), None if malformed."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and len(entry) == 1:
        key = next(iter(entry))
        return key if isinstance(key, str) else None
    return None


def _merge_tools(base: list[Any], bs: Shadow, over: list[Any], os: Shadow) -> tuple[list[Any], Shadow]:
    redeclared = {ref for ref in map(tool_entry_ref, over) if ref is not None}
    items: list[tuple[Any, Shadow]] = [
        (entry, bs.children[i]) for i, entry in enumerate(base) if tool_entry_ref(entry) not in redeclared
    ]
    items += [(entry, os.children[i]) for i, entry in enumerate(over)]
    return _as_list(items, os)


def _merge_agent_names(base: list[Any], bs: Shadow, over: list[Any], os: Shadow) -> tuple[list[Any], Shadow]:
    items: list[tuple[Any, Shadow]] = []
    seen: list[Any] = []
    for values, shadow in ((base, bs), (over, os)):
        for i, item in enumerate(values):
            if item not in seen:
                seen.append(item)
                items.append((item, shadow.children[i]))
    return _as_list(items, os)


def _as_list(items: list[tuple[Any, Shadow]], outer: Shadow) -> tuple[list[Any], Shadow]:
    shadow = Shadow(outer.loc, outer.key_loc, {i: s for i, (_, s) in enumerate(items)})
    return [value for value, _ in items], shadow


def merge_values(base: Any, bs: Shadow, over: Any, os: Shadow, path: tuple[PathKey, ...] = ()) -> tuple[Any, Shadow]:
    """Merge `over` onto `base` (neither is modified) and their position shadows."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        children = dict(bs.children)
        for key, value in over.items():
            if key in merged:
                merged[key], children[key] = merge_values(
                    merged[key], children[key], value, os.children[key], (*path, key)
                )
            else:
                merged[key], children[key] = value, os.children[key]
        return merged, Shadow(os.loc, os.key_loc, children)
    if isinstance(base, list) and isinstance(over, list):
        if path == ("tools",):
            return _merge_tools(base, bs, over, os)
        if path == ("agents",):
            return _merge_agent_names(base, bs, over, os)
    return over, os
