"""Every refusal is an RFC 9457 problem document with a stable type; no trace ever leaks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.problems import INTERNAL, INVALID_INPUT, MEDIA_TYPE, TYPE_BASE, problem_body


def _assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(MEDIA_TYPE)
    body = response.json()
    assert body["type"] == TYPE_BASE + slug
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


def test_problem_body_has_the_rfc_9457_members() -> None:
    body = problem_body(INVALID_INPUT, "input: must be a JSON object", "/v1/agents/echo/runs")
    assert body == {
        "type": "https://ferry.dev/problems/invalid-input",
        "title": "The request is not valid",
        "status": 422,
        "detail": "input: must be a JSON object",
        "instance": "/v1/agents/echo/runs",
    }


def test_an_unexpected_exception_is_a_500_problem_without_its_message_or_trace(make_client, token) -> None:
    client = make_client()
    router = APIRouter()

    @router.get("/v1/explode")
    async def explode() -> None:
        raise RuntimeError("secret-internal-detail at /srv/ferry/app.py line 12")

    client.app.include_router(router)
    response = client.get("/v1/explode", headers={"Authorization": f"Bearer {token}"})
    body = _assert_problem(response, 500, INTERNAL.slug)
    assert "secret-internal-detail" not in response.text
    assert "Traceback" not in response.text and "RuntimeError" not in response.text
    assert body["detail"] == "the server failed to answer this request; it has been logged"


def test_unknown_path_and_wrong_method_are_problems(make_client) -> None:
    client = make_client()
    _assert_problem(client.get("/v1/nothing-here"), 404, "not-found")
    _assert_problem(client.delete("/v1/agents"), 405, "method-not-allowed")


def test_a_malformed_json_body_is_a_422_problem(make_client, token) -> None:
    response = make_client().post(
        "/v1/agents/echo/runs",
        content=b"{not json",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    body = _assert_problem(response, 422, "invalid-input")
    assert "JSON" in body["detail"]


def test_openapi_document_lists_every_endpoint(make_client) -> None:
    client = make_client()
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) >= {
        "/v1/agents/{agent}/runs",
        "/v1/runs/{run_id}",
        "/v1/runs",
        "/v1/runs/{run_id}/trace",
        "/v1/agents",
    }
    assert client.get("/docs").status_code == 200
