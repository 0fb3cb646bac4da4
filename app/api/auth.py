"""`Authorization: Bearer <key>` → the request's `Principal`, then the key's rate limit.

A missing, malformed, unknown or revoked key is one 401 (the client learns nothing
about which); a key over its rate is a 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request

from app.api.keys import Principal, authenticate
from app.api.problems import RATE_LIMITED, UNAUTHORIZED, ApiProblem
from app.api.ratelimit import retry_after_header
from app.api.services import ApiServices, services_of

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ferry"'}


async def principal(request: Request, services: Annotated[ApiServices, Depends(services_of)]) -> Principal:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem(UNAUTHORIZED, "send an API key as `Authorization: Bearer <key>`", headers=_CHALLENGE)
    found = await asyncio.to_thread(authenticate, services.store, token.strip())
    if found is None:
        raise ApiProblem(UNAUTHORIZED, "the API key is not valid (unknown, malformed or revoked)", headers=_CHALLENGE)
    if services.limiter is not None:
        wait = services.limiter.acquire(found.key_id)
        if wait > 0:
            retry_after = retry_after_header(wait)
            raise ApiProblem(
                RATE_LIMITED,
                f"this API key is over its rate limit; retry after {retry_after} s",
                headers={"Retry-After": retry_after},
            )
    return found


Caller = Annotated[Principal, Depends(principal)]
Services = Annotated[ApiServices, Depends(services_of)]
