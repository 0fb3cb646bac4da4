"""The db_* tools on the SQLite history database: the SDK's filter operators, sort,
projection, distinct, upsert's insert rule, and what a wrong call gets back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.compat.documents import Documents, DocumentScope
from app.contracts.errors import ToolError
from app.observability.history.documents import SqlDocumentBackend
from app.project.models import DatabaseAccessSpec

ORDERS = [
    {"order_id": "A", "status": "open", "total": 10, "tags": ["gift", "eu"], "customer": {"tier": "gold"}},
    {"order_id": "B", "status": "shipped", "total": 25.5, "tags": ["eu"], "customer": {"tier": "basic"}},
    {"order_id": "C", "status": "open", "total": 40, "tags": [], "note": "Call before delivery"},
    {"order_id": "D", "status": "cancelled", "total": None, "lines": [{"sku": "x", "qty": 2}, {"sku": "y", "qty": 9}]},
]


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SqlDocumentBackend]:
    store = SqlDocumentBackend.for_history(f"sqlite:///{tmp_path / 'history.db'}")
    yield store
    store.close()


@pytest.fixture
def db(backend: SqlDocumentBackend) -> Documents:
    documents = Documents(backend, DocumentScope("acme", "prod"), {})
    asyncio.run(documents.db_insert("orders", ORDERS))
    return documents


def ids(found: dict[str, Any]) -> list[str]:
    return [d["order_id"] for d in found["documents"]]


FILTERS = [
    ({"status": "open"}, ["A", "C"]),
    ({"status": {"$ne": "open"}}, ["B", "D"]),
    ({"total": {"$gt": 10}}, ["B", "C"]),
    ({"total": {"$gte": 10, "$lt": 40}}, ["A", "B"]),
    ({"total": {"$lte": 10}}, ["A"]),
    ({"status": {"$in": ["shipped", "cancelled"]}}, ["B", "D"]),
    ({"status": {"$nin": ["shipped", "cancelled"]}}, ["A", "C"]),
    ({"note": {"$exists": True}}, ["C"]),
    ({"note": {"$exists": False}}, ["A", "B", "D"]),
    ({"note": {"$regex": "^call", "$options": "i"}}, ["C"]),
    ({"note": {"$contains": "DELIVERY"}}, ["C"]),
    ({"tags": "eu"}, ["A", "B"]),
    ({"tags": {"$contains": "gift"}}, ["A"]),
    ({"customer.tier": "gold"}, ["A"]),
    ({"lines": {"$elemMatch": {"sku": "y", "qty": {"$gt": 5}}}}, ["D"]),
    ({"$or": [{"order_id": "A"}, {"total": {"$gt": 30}}]}, ["A", "C"]),
    ({"$and": [{"status": "open"}, {"total": {"$gt": 10}}]}, ["C"]),
    ({"$nor": [{"status": "open"}, {"status": "shipped"}]}, ["D"]),
    ({"total": {"$not": {"$gt": 10}}}, ["A", "D"]),
    ({"total": {"$gt": "10"}}, []),  # a string never compares with a number
]


@pytest.mark.parametrize(("filter", "expected"), FILTERS, ids=[str(f) for f, _ in FILTERS])
def test_the_documented_filter_operators(db: Documents, filter: dict[str, Any], expected: list[str]) -> None:
    assert ids(asyncio.run(db.db_find("orders", filter=filter))) == expected


def test_sort_skip_limit_fields_and_distinct(db: Documents) -> None:
    found = asyncio.run(db.db_find("orders", sort={"status": 1, "order_id": -1}, skip=1, limit=2, fields=["status"]))
    assert [{k: v for k, v in d.items() if k != "_id"} for d in found["documents"]] == [
        {"status": "open"},
        {"status": "open"},
    ]
    assert all("_id" in d for d in found["documents"])
    assert asyncio.run(db.db_find("orders", distinct="status")) == {
        "values": ["open", "shipped", "cancelled"],
        "count": 3,
    }
    assert asyncio.run(db.db_find("orders", distinct="customer.tier"))["values"] == ["gold", "basic"]


def test_update_upsert_delete_count_and_collections(db: Documents) -> None:
    updated = asyncio.run(db.db_update("orders", {"status": "open"}, {"status": "packing", "customer.tier": "vip"}))
    assert updated["updated_count"] == 2
    assert ids(asyncio.run(db.db_find("orders", {"customer.tier": "vip"}))) == ["A", "C"]

    first = asyncio.run(
        db.db_upsert("orders", {"order_id": "E", "total": {"$gt": 0}}, {"status": "new"}, {"src": "etl"})
    )
    assert first["operation"] == "inserted"
    (inserted,) = asyncio.run(db.db_find("orders", {"order_id": "E"}))["documents"]
    # Only the filter's plain equalities are copied into the new document, then update, then insert_only.
    assert {k: v for k, v in inserted.items() if k != "_id"} == {"order_id": "E", "status": "new", "src": "etl"}
    again = asyncio.run(db.db_upsert("orders", {"order_id": "E"}, {"status": "paid", "src": None}, {"src": "x"}))
    assert again == {"upserted_id": first["upserted_id"], "operation": "updated"}
    (paid,) = asyncio.run(db.db_find("orders", {"order_id": "E"}))["documents"]
    assert paid["status"] == "paid" and "src" not in paid  # None removes a field on the update path

    deleted = asyncio.run(db.db_delete("orders", {"status": "cancelled"}))
    assert deleted["deleted_count"] == 1
    assert asyncio.run(db.db_count("orders")) == {"count": 4}
    assert asyncio.run(db.db_count("orders", {"status": "packing"})) == {"count": 2}
    listed = asyncio.run(db.db_list_collections())
    assert listed["total"] == 1 and listed["collections"][0]["name"] == "orders"
    assert listed["collections"][0]["document_count"] == 4 and listed["collections"][0]["size_bytes"] > 0


def test_scopes_never_see_each_other(db: Documents, backend: SqlDocumentBackend) -> None:
    for scope in (DocumentScope("globex", "prod"), DocumentScope("acme", "staging")):
        other = Documents(backend, scope, {})
        assert asyncio.run(other.db_count("orders")) == {"count": 0}
        assert asyncio.run(other.db_delete("orders", {"status": {"$exists": True}})) == {
            "deleted_ids": [],
            "deleted_count": 0,
        }
    assert asyncio.run(db.db_count("orders")) == {"count": 4}


MISTAKES = [
    (lambda db: db.db_delete("orders", {}), "non-empty filter"),
    (lambda db: db.db_find("Orders!"), "collection name 'Orders!' is invalid"),
    (lambda db: db.db_find("orders", {"total": {"$between": [1, 2]}}), "unknown filter operator '$between'"),
    (lambda db: db.db_find("orders", {"$where": "1"}), "unknown top-level filter operator '$where'"),
    (lambda db: db.db_find("orders", {"note": {"$regex": "("}}), "not a valid pattern"),
    (lambda db: db.db_insert("orders", [{"_id": "same"}, {"_id": "same"}]), "already in the collection"),
    (lambda db: db.db_upsert("orders", {}, {"a": 1}), "non-empty filter"),
]


@pytest.mark.parametrize(("call", "message"), MISTAKES, ids=[m for _, m in MISTAKES])
def test_a_wrong_call_is_a_tool_error_naming_the_mistake(db: Documents, call: Any, message: str) -> None:
    with pytest.raises(ToolError, match=message.replace("$", r"\$").replace("(", r"\(")):
        asyncio.run(call(db))


def test_an_agents_database_rules_bind_every_call_of_its_runs(backend: SqlDocumentBackend) -> None:
    rules = DatabaseAccessSpec.model_validate(
        {"prevent_delete": True, "collections": {"orders": {"prevent_write": True}, "logs": {"prevent_delete": False}}}
    )
    db = Documents(backend, DocumentScope("acme", "prod"), {}, rules, "reporter")
    assert asyncio.run(db.db_insert("logs", {"line": 1}))["inserted_count"] == 1
    assert asyncio.run(db.db_delete("logs", {"line": 1}))["deleted_count"] == 1  # the override allows it
    refusals = [
        (db.db_insert("orders", {"a": 1}), "db_insert: agent 'reporter' may not write to 'orders' (prevent_write)"),
        (db.db_delete("orders", {"a": 1}), "db_delete: agent 'reporter' may not delete from 'orders' (prevent_delete)"),
        (db.db_find("customers"), "db_find: collection 'customers' is not among the collections agent 'reporter' "
         "may use (logs, orders)"),
    ]  # fmt: skip
    for call, message in refusals:
        with pytest.raises(ToolError) as refused:
            asyncio.run(call)
        assert refused.value.message == message
    assert asyncio.run(db.db_find("orders")) == {"documents": [], "count": 0}  # reading is allowed
    listed = DatabaseAccessSpec.model_validate({"collections": ["orders"]})
    assert listed.collections is not None and set(listed.collections) == {"orders"}
