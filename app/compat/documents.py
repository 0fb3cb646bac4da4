"""The `db_*` tools: Connic's document store, one set of collections per tenant and environment.

The semantics (what each tool takes and returns, upsert's insert-document rule, the
empty-filter refusal of `db_delete`) are the SDK's docstrings'; the storage is a
`DocumentBackend` (the run-history database: app/observability/history/documents.py).
Filters are evaluated by `filters.py` on the documents of one collection, the same on
SQLite and PostgreSQL; a collection is read whole per call, which suits the agent-sized
collections Connic's tools are for (see docs/connic.md for the limits).

Every call is bound to one `DocumentScope`: a run can name a collection, never a tenant.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.compat.filters import equality_fields, filter_error, matches, project, sort_key
from app.contracts.errors import ToolError

MAX_LIMIT = 1000
_COLLECTION = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class DocumentScope:
    """Whose documents: a run sees exactly its tenant's collections in its environment."""

    tenant: str
    environment: str


@dataclass(frozen=True)
class StoredDocument:
    id: str
    data: dict[str, Any]

    def public(self) -> dict[str, Any]:
        return {"_id": self.id, **self.data}


class DocumentBackend(Protocol):
    """Rows of documents; every method is one transaction, scoped by `scope` and collection."""

    async def load(self, scope: DocumentScope, collection: str) -> list[StoredDocument]:
        """Every document of the collection, oldest first."""
        ...

    async def insert(self, scope: DocumentScope, collection: str, documents: Sequence[StoredDocument]) -> None: ...

    async def replace(self, scope: DocumentScope, collection: str, documents: Sequence[StoredDocument]) -> None: ...

    async def delete(self, scope: DocumentScope, collection: str, ids: Sequence[str]) -> int: ...

    async def collections(self, scope: DocumentScope) -> list[tuple[str, int, int]]:
        """(name, document count, size in bytes) of every collection with documents."""
        ...


def _collection(name: Any) -> str:
    if not isinstance(name, str) or not _COLLECTION.match(name):
        raise filter_error(
            f"collection name {name!r} is invalid: lowercase letters, digits and underscores, starting with a letter"
        )
    return name


def _document(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise filter_error("a document must be a JSON object")
    try:
        data: dict[str, Any] = json.loads(json.dumps(dict(value)))
    except (TypeError, ValueError) as exc:
        raise filter_error(f"a document must be JSON: {exc}") from None
    return data


def _set_path(target: dict[str, Any], path: str, value: Any, *, remove_none: bool) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    if value is None and remove_none:
        target.pop(parts[-1], None)
    else:
        target[parts[-1]] = value


def _merged(data: Mapping[str, Any], update: Mapping[str, Any], *, remove_none: bool) -> dict[str, Any]:
    merged = json.loads(json.dumps(dict(data)))
    for key, value in _document(update).items():
        if key == "_id":
            continue  # a document's id never changes
        _set_path(merged, key, value, remove_none=remove_none)
    return dict(merged)


class Access(Protocol):
    """An agent's `database` rules (app.project.models.DatabaseAccessSpec)."""

    @property
    def collections(self) -> Mapping[str, Any] | None: ...

    @property
    def prevent_delete(self) -> bool: ...

    @property
    def prevent_write(self) -> bool: ...


class Documents:
    """The `db_*` tools of one run, bound to its scope and its agent's access rules."""

    def __init__(
        self,
        backend: DocumentBackend,
        scope: DocumentScope,
        locks: dict[tuple[Any, ...], asyncio.Lock],
        access: Access | None = None,
        agent: str = "",
    ):
        self.backend = backend
        self.scope = scope
        self._locks = locks  # engine-wide: read-modify-write calls on one collection take turns
        self._access = access
        self._agent = agent

    def _allowed(self, tool: str, collection: str, *, write: bool = False, delete: bool = False) -> str:
        """The collection name, if this agent may use it so; else the tool error saying why."""
        name = _collection(collection)
        access = self._access
        if access is None:
            return name
        listed = access.collections
        if listed is not None and name not in listed:
            raise ToolError(
                f"{tool}: collection {name!r} is not among the collections agent {self._agent!r} may use "
                f"({', '.join(sorted(listed)) or 'none'})",
                tool,
            )
        override = listed.get(name) if listed is not None else None
        if write:
            flag = getattr(override, "prevent_write", None)
            if flag if flag is not None else access.prevent_write:
                raise ToolError(f"{tool}: agent {self._agent!r} may not write to {name!r} (prevent_write)", tool)
        if delete:
            flag = getattr(override, "prevent_delete", None)
            if flag if flag is not None else access.prevent_delete:
                raise ToolError(f"{tool}: agent {self._agent!r} may not delete from {name!r} (prevent_delete)", tool)
        return name

    def _lock(self, collection: str) -> asyncio.Lock:
        return self._locks.setdefault((self.scope, collection), asyncio.Lock())

    async def _matching(self, collection: str, filter: Mapping[str, Any] | None) -> list[StoredDocument]:
        documents = await self.backend.load(self.scope, collection)
        return [doc for doc in documents if matches(doc.public(), filter)]

    async def db_find(
        self,
        collection: str,
        filter: dict[str, Any] | None = None,
        sort: dict[str, int] | None = None,
        limit: int = 100,
        skip: int = 0,
        fields: list[str] | None = None,
        distinct: str | None = None,
    ) -> dict[str, Any]:
        found = [doc.public() for doc in await self._matching(self._allowed("db_find", collection), filter)]
        for path, direction in reversed(list((sort or {}).items())):
            if direction not in (1, -1):
                raise filter_error(f"sort direction of {path!r} must be 1 or -1")
            found.sort(key=sort_key(path), reverse=direction == -1)
        if distinct is not None:
            values: list[Any] = []
            for document in found:
                value = project(document, [distinct]).get(distinct.split(".")[0])
                for part in distinct.split(".")[1:]:
                    value = value.get(part) if isinstance(value, dict) else None
                if value is not None and value not in values:
                    values.append(value)
            return {"values": values, "count": len(values)}
        window = found[max(0, skip) : max(0, skip) + max(0, min(limit, MAX_LIMIT))]
        documents = [project(document, fields) for document in window]
        return {"documents": documents, "count": len(documents)}

    async def db_insert(self, collection: str, documents: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
        items = [documents] if isinstance(documents, Mapping) else list(documents)
        if not items:
            raise filter_error("db_insert needs at least one document")
        stored = []
        for item in items:
            data = _document(item)
            given = data.pop("_id", None)
            stored.append(StoredDocument(str(given) if given is not None else str(uuid.uuid4()), data))
        await self.backend.insert(self.scope, self._allowed("db_insert", collection, write=True), stored)
        return {"inserted": [doc.public() for doc in stored], "inserted_count": len(stored)}

    async def db_update(self, collection: str, filter: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
        name = self._allowed("db_update", collection, write=True)
        if not update:
            raise filter_error("db_update needs a non-empty update")
        async with self._lock(name):
            changed = [
                StoredDocument(doc.id, _merged(doc.data, update, remove_none=False))
                for doc in await self._matching(name, filter)
            ]
            await self.backend.replace(self.scope, name, changed)
        return {"updated_ids": [doc.id for doc in changed], "updated_count": len(changed)}

    async def db_upsert(
        self,
        collection: str,
        filter: dict[str, Any],
        update: dict[str, Any],
        insert_only: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        name = self._allowed("db_upsert", collection, write=True)
        if not filter:
            raise filter_error("db_upsert needs a non-empty filter")
        if not update:
            raise filter_error("db_upsert needs a non-empty update")
        async with self._lock(name):
            found = await self._matching(name, filter)
            if found:
                first = found[0]
                await self.backend.replace(
                    self.scope, name, [StoredDocument(first.id, _merged(first.data, update, remove_none=True))]
                )
                return {"upserted_id": first.id, "operation": "updated"}
            data = _merged(equality_fields(filter), update, remove_none=True)
            data = _merged(data, insert_only or {}, remove_none=False)
            document = StoredDocument(str(uuid.uuid4()), data)
            await self.backend.insert(self.scope, name, [document])
        return {"upserted_id": document.id, "operation": "inserted"}

    async def db_delete(self, collection: str, filter: dict[str, Any]) -> dict[str, Any]:
        name = self._allowed("db_delete", collection, delete=True)
        if not filter:
            raise filter_error("db_delete needs a non-empty filter (it never empties a collection by accident)")
        async with self._lock(name):
            ids = [doc.id for doc in await self._matching(name, filter)]
            await self.backend.delete(self.scope, name, ids)
        return {"deleted_ids": ids, "deleted_count": len(ids)}

    async def db_count(self, collection: str, filter: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"count": len(await self._matching(self._allowed("db_count", collection), filter))}

    async def db_list_collections(self) -> dict[str, Any]:
        allowed = self._access.collections if self._access is not None else None
        listed = [
            {"name": name, "document_count": count, "size_bytes": size}
            for name, count, size in await self.backend.collections(self.scope)
            if allowed is None or name in allowed
        ]
        return {"collections": listed, "total": len(listed)}

    def implementations(self) -> dict[str, Any]:
        return {
            "db_find": self.db_find,
            "db_insert": self.db_insert,
            "db_update": self.db_update,
            "db_upsert": self.db_upsert,
            "db_delete": self.db_delete,
            "db_count": self.db_count,
            "db_list_collections": self.db_list_collections,
        }
