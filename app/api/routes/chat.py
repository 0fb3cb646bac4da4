"""`WS /v1/agents/{agent}/chat`: a chat over a WebSocket (the protocol: `app.api.chat`).

Authentication as for every route, `Authorization: Bearer <key>` on the handshake, or,
from a browser (which cannot set that header), the key as the first message:
`{"type": "auth", "key": "<key>"}` (Connic's `{"secret": "<key>"}` is accepted too). A
key is never taken from the URL, where access logs would keep it. A bad key or an
unknown agent gets one `error` message and the socket is closed (1008).
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from app.api.chat import ChatSession
from app.api.keys import Principal, authenticate
from app.api.services import ApiServices

router = APIRouter(tags=["chat"])

#: How long a socket may take to send its key when the handshake had none.
AUTH_TIMEOUT_S = 10.0

_POLICY_VIOLATION = 1008


@router.websocket("/v1/agents/{agent}/chat")
async def chat(socket: WebSocket, agent: str, stream: bool = True) -> None:
    services: ApiServices = socket.app.state.services
    await socket.accept()
    try:
        caller = await _authenticate(socket, services)
        if caller is None:
            await _refuse(socket, "unauthorized", "send a valid API key (Authorization header or an auth message)")
            return
        if agent not in services.project.agents:
            await _refuse(socket, "agent-not-found", f"no agent {agent!r} is deployed here (GET /v1/agents lists them)")
            return
        await ChatSession(services, caller, agent, socket, streaming=stream).serve()
    except WebSocketDisconnect:
        return  # the client left; a run it started goes on and lands in the history


async def _authenticate(socket: WebSocket, services: ApiServices) -> Principal | None:
    scheme, _, token = socket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        try:
            first = json.loads(await asyncio.wait_for(socket.receive_text(), AUTH_TIMEOUT_S))
        except (TimeoutError, ValueError):
            return None
        found = first.get("key") or first.get("secret") if isinstance(first, dict) else None
        if not isinstance(found, str):
            return None
        token = found
    return await asyncio.to_thread(authenticate, services.store, token.strip())


async def _refuse(socket: WebSocket, code: str, detail: str) -> None:
    await socket.send_json({"type": "error", "id": None, "code": code, "error": detail})
    await socket.close(code=_POLICY_VIOLATION, reason=code)
