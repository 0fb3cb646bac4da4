"""Parts of the Connic format that Ferry reads but does not run yet, and what that means.

A Connic project must load in Ferry unchanged, so each of these is a warning, never an
error. The warning says what will not happen: "ignored" alone would hide that a
session, an approval step or an MCP server a team relies on is simply not there. The
names follow `connic-composer-sdk` (`connic.core.AgentConfig`, `connic.loader`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pydantic import BaseModel

from app.project.models import AGENT_CLASSES, RetryOptions

_AGENT_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "voice_config": "voice is not supported by Ferry yet — the agent runs as a text agent",
    }
)

_RETRY_KEYS: Mapping[str, str] = MappingProxyType(
    {"rerun_middleware": "Ferry runs middleware once per run, not again on a retry — ignored"}
)


def _connic_table(owner: type[BaseModel]) -> Mapping[str, str]:
    if owner in AGENT_CLASSES.values():
        return _AGENT_KEYS
    if owner is RetryOptions:
        return _RETRY_KEYS
    return {}


def connic_only_key(owner: type[BaseModel], key: str) -> str | None:
    """What will not happen because Ferry ignores this Connic key of `owner`, or None."""
    return _connic_table(owner).get(key)


def connic_only_keys(owner: type[BaseModel]) -> frozenset[str]:
    """The Connic keys of `owner` Ferry does not support (they count as known for suggestions)."""
    return frozenset(_connic_table(owner))


def unsupported_tool_ref(ref: str) -> str | None:
    """Why a Connic-only tool ref (an `api:` tool) gives the LLM nothing in Ferry.

    Predefined tools (bare names) are Ferry's own now: see `predefined_tools.py`."""
    if ref.startswith("api:"):
        return f"API-spec tools are not supported by Ferry yet — {ref} will not be offered to the LLM"
    return None
