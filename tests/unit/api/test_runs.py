"""Submitting and reading runs through the app, with a fake sink in place of Kafka."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.api import ApiSettings, ApiStore, create_key
from app.contracts import RunResult, RunStatus


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _finish(history, request, output: str = "done") -> None:
    now = datetime.now(UTC)
    history.write(
        [
            RunResult.for_request(
                request, RunStatus.COMPLETED, started_at=now - timedelta(seconds=1), ended_at=now, output=output
            )
        ]
    )


def test_post_queues_one_request_and_get_shows_it_queued_then_finished(make_client, token, sink, history) -> None:
    client = make_client()
    response = client.post("/v1/agents/echo/runs", json={"input": {"message": "hi"}}, headers=_auth(token))
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    assert response.json() == {"run_id": run_id, "status": "queued"}
    assert [r.run_id for r in sink.requests] == [run_id]
    assert sink.requests[0].tenant == "acme" and sink.requests[0].input == {"message": "hi"}

    assert client.get(f"/v1/runs/{run_id}", headers=_auth(token)).json()["status"] == "queued"
    _finish(history, sink.requests[0])
    run = client.get(f"/v1/runs/{run_id}", headers=_auth(token)).json()
    assert run["status"] == "completed" and run["output"] == "done" and run["usage"]["total_tokens"] == 0


def test_same_idempotency_key_is_one_run_another_body_is_409_and_a_finished_run_comes_back_at_once(
    make_client, token, sink, history
) -> None:
    client = make_client()
    headers = {**_auth(token), "Idempotency-Key": "order-17"}
    first = client.post("/v1/agents/echo/runs", json={"input": {"n": 1}}, headers=headers)
    again = client.post("/v1/agents/echo/runs", json={"input": {"n": 1}}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["run_id"] == again.json()["run_id"]
    assert len(sink.requests) == 1

    conflict = client.post("/v1/agents/echo/runs", json={"input": {"n": 2}}, headers=headers)
    assert conflict.status_code == 409
    assert conflict.json()["type"].endswith("/idempotency-conflict")

    _finish(history, sink.requests[0], output="seventeen")
    finished = client.post("/v1/agents/echo/runs", json={"input": {"n": 1}}, headers=headers)
    assert finished.status_code == 200
    assert finished.json()["output"] == "seventeen"
    assert len(sink.requests) == 1


def test_two_tenants_with_the_same_key_get_two_runs_and_cannot_read_each_other(
    make_client, token, sink, history
) -> None:
    client = make_client()
    other = create_key(ApiStore(history.engine), "globex").token
    body = {"input": {"n": 1}}
    a = client.post("/v1/agents/echo/runs", json=body, headers={**_auth(token), "Idempotency-Key": "k"}).json()[
        "run_id"
    ]
    b = client.post("/v1/agents/echo/runs", json=body, headers={**_auth(other), "Idempotency-Key": "k"}).json()[
        "run_id"
    ]
    assert a != b
    assert client.get(f"/v1/runs/{a}", headers=_auth(other)).status_code == 404
    _finish(history, sink.requests[0])
    assert client.get(f"/v1/runs/{a}", headers=_auth(other)).status_code == 404
    assert client.get(f"/v1/runs/{a}/trace", headers=_auth(other)).status_code == 404
    assert [r["run_id"] for r in client.get("/v1/runs", headers=_auth(other)).json()["runs"]] == []
    assert [r["run_id"] for r in client.get("/v1/runs", headers=_auth(token)).json()["runs"]] == [a]


def test_refusals(make_client, token) -> None:
    client = make_client(ApiSettings(max_body_bytes=200))
    url = "/v1/agents/echo/runs"
    assert client.post(url, json={"input": {}}).status_code == 401
    assert client.post(url, json={"input": {}}, headers=_auth("fy_nope.nope")).status_code == 401
    missing = client.post("/v1/agents/nobody/runs", json={"input": {}}, headers=_auth(token))
    assert missing.status_code == 404 and missing.json()["type"].endswith("/agent-not-found")
    not_object = client.post(url, json={"input": [1, 2]}, headers=_auth(token))
    assert not_object.status_code == 422 and "input: must be a JSON object, not an array" in not_object.json()["detail"]
    too_large = client.post(url, json={"input": {"text": "x" * 500}}, headers=_auth(token))
    assert too_large.status_code == 413 and too_large.json()["type"].endswith("/body-too-large")


def test_a_chunked_body_over_the_limit_is_413(make_client, token) -> None:
    client = make_client(ApiSettings(max_body_bytes=100))

    def chunks():
        yield b'{"input": {"text": "'
        yield b"x" * 200
        yield b'"}}'

    response = client.post(
        "/v1/agents/echo/runs", content=chunks(), headers={**_auth(token), "Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_rate_limit_is_429_with_retry_after(make_client, token) -> None:
    client = make_client(ApiSettings(rate_per_second=0.5, rate_burst=2))
    codes = [client.get("/v1/agents", headers=_auth(token)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = client.get("/v1/agents", headers=_auth(token))
    assert refused.json()["type"].endswith("/rate-limited")
    assert int(refused.headers["Retry-After"]) >= 1


def test_list_runs_pages_with_a_cursor(make_client, token, history) -> None:
    from app.contracts import RunRequest

    client = make_client()
    requests = [RunRequest.new("echo", {"n": i}, tenant="acme") for i in range(5)]
    now = datetime.now(UTC)
    history.write(
        [
            RunResult.for_request(r, RunStatus.COMPLETED, started_at=now - timedelta(minutes=i), ended_at=now)
            for i, r in enumerate(requests)
        ]
    )
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/runs", params=params, headers=_auth(token)).json()
        seen += [r["run_id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r.run_id for r in requests]
    bad = client.get("/v1/runs", params={"cursor": "garbage!"}, headers=_auth(token))
    assert bad.status_code == 422


def test_agents_lists_the_project(make_client, token) -> None:
    agents = make_client().get("/v1/agents", headers=_auth(token)).json()["agents"]
    assert agents == [{"name": "echo", "type": "llm", "description": "test agent echo"}]


async def test_concurrent_duplicates_produce_the_run_once(project, history) -> None:
    import asyncio

    import httpx

    from app.api import ApiServices, create_app

    class SlowSink:
        def __init__(self) -> None:
            self.requests: list = []

        async def submit(self, request, key=None) -> None:
            await asyncio.sleep(0.3)
            self.requests.append(request)

    store = ApiStore(history.engine)
    services = ApiServices(project=project, history=history, store=store, open_sink=None)  # type: ignore[arg-type]
    app = create_app(ApiSettings(wait_poll_seconds=0.02), services)
    sink = SlowSink()
    services.sink = sink
    headers = {**_auth(create_key(store, "acme").token), "Idempotency-Key": "same"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        responses = await asyncio.gather(
            *(client.post("/v1/agents/echo/runs", json={"input": {"n": 1}}, headers=headers) for _ in range(5))
        )
    assert [r.status_code for r in responses] == [202] * 5
    assert len({r.json()["run_id"] for r in responses}) == 1
    assert len(sink.requests) == 1


def test_a_request_kafka_did_not_take_can_be_retried_at_once(make_client, token, sink) -> None:
    client = make_client()
    headers = {**_auth(token), "Idempotency-Key": "flaky"}
    real_submit = sink.submit
    calls = []

    async def failing_once(request, key=None) -> None:
        calls.append(request.run_id)
        if len(calls) == 1:
            raise ConnectionError("broker went away")
        await real_submit(request, key)

    sink.submit = failing_once
    first = client.post("/v1/agents/echo/runs", json={"input": {"n": 1}}, headers=headers)
    assert first.status_code == 500 and "broker went away" not in first.text
    second = client.post("/v1/agents/echo/runs", json={"input": {"n": 1}}, headers=headers)
    assert second.status_code == 202
    assert [r.run_id for r in sink.requests] == [second.json()["run_id"]] == calls[1:]


def test_a_callback_to_a_private_or_loopback_address_is_refused_at_submission(make_client, token, sink) -> None:
    client = make_client()
    for url, reason in (
        ("http://127.0.0.1:9000/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("ftp://example.com/hook", "only http:// and https://"),
    ):
        response = client.post("/v1/agents/echo/runs", json={"input": {}, "callback_url": url}, headers=_auth(token))
        assert response.status_code == 422, url
        assert response.json()["detail"].startswith("callback_url: ") and reason in response.json()["detail"]
    assert sink.requests == []
    public = client.post(
        "/v1/agents/echo/runs", json={"input": {}, "callback_url": "https://93.184.215.14/hook"}, headers=_auth(token)
    )
    assert public.status_code == 202
    assert sink.requests[0].callback_url == "https://93.184.215.14/hook"
