"""Objects of a bucket, through the S3 API (boto3: every S3-compatible store speaks it).

boto3 is synchronous: each call runs on a thread, so a slow store never blocks the
event loop. It is imported with the first bucket (~25 MiB with botocore): a worker with no
S3 trigger never loads it. An object becomes a run's document (the `files` form tools read, see
`document_input`) with its place under `_s3`; one that is larger than the trigger's
`max_bytes` or of a type it does not accept is refused with a reason, never fetched whole.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import posixpath
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.contracts import RunRequest, document_input
from app.contracts.errors import BadInputError, ServiceUnreachableError
from app.contracts.runs import Trigger
from app.project.connectors import S3ConnectorSpec

TRIGGER_SOURCE = "s3"


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    etag: str
    size: int
    last_modified: datetime | None = None

    @property
    def identity(self) -> str:
        """The object as uploaded: a key written again with other content is another object."""
        return f"{self.key}@{self.etag}"


class ObjectRefused(BadInputError):
    """Not a document this trigger runs (too large, wrong type, gone); `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _expand(value: str | None) -> str | None:
    """`${VAR}` placeholders from the environment; a value whose variable is unset is no value
    (the store's default: AWS), not a URL with `${…}` in it."""
    expanded = os.path.expandvars(value) if value else None
    return None if not expanded or "${" in expanded else expanded


def client_for(spec: S3ConnectorSpec) -> Any:
    """A boto3 S3 client for the trigger's store; credentials from its env names or boto3's chain."""
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {
        "endpoint_url": _expand(spec.endpoint_url),
        "region_name": spec.region,
        "config": Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30),
    }
    if spec.access_key_env and spec.secret_key_env:
        options["aws_access_key_id"] = os.environ.get(spec.access_key_env)
        options["aws_secret_access_key"] = os.environ.get(spec.secret_key_env)
    return boto3.session.Session().client("s3", **{k: v for k, v in options.items() if v is not None})


class Bucket:
    """One trigger's bucket: list it, fetch an object as a run request."""

    def __init__(self, spec: S3ConnectorSpec, client: Any | None = None) -> None:
        self.spec = spec
        self._client = client or client_for(spec)

    async def listing(self) -> list[StoredObject]:
        """Every object under the trigger's prefix that it wants (suffixes)."""
        found: list[StoredObject] = await self._call(self._list)
        return found

    def _list(self) -> list[StoredObject]:
        found: list[StoredObject] = []
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.spec.bucket, Prefix=self.spec.prefix)
        for page in pages:
            for item in page.get("Contents", ()):
                if self.spec.wants(item["Key"]):
                    found.append(
                        StoredObject(
                            bucket=self.spec.bucket,
                            key=item["Key"],
                            etag=str(item.get("ETag", "")).strip('"'),
                            size=int(item.get("Size", 0)),
                            last_modified=item.get("LastModified"),
                        )
                    )
        return found

    async def request(self, stored: StoredObject) -> RunRequest:
        """The run of one object; `ObjectRefused` when it is not a document this trigger runs."""
        data, content_type, etag = await self._call(self._fetch, stored)
        name = posixpath.basename(stored.key)
        run_input = document_input(name, data, content_type)
        run_input["_s3"] = {"bucket": stored.bucket, "key": stored.key, "etag": etag, "size": len(data)}
        return RunRequest.new(
            self.spec.agent,
            run_input,
            tenant=self.spec.tenant,
            idempotency_key=f"s3:{self.spec.name}:{stored.bucket}/{stored.key}@{etag}",
            trigger=Trigger(
                source=TRIGGER_SOURCE,
                metadata={"connector": self.spec.name, "bucket": stored.bucket, "key": stored.key, "etag": etag},
            ),
        )

    def _fetch(self, stored: StoredObject) -> tuple[bytes, str, str]:
        head = self._client.head_object(Bucket=stored.bucket, Key=stored.key)
        size = int(head.get("ContentLength", 0))
        if size > self.spec.max_bytes:
            raise ObjectRefused(f"{size} bytes, over the trigger's max_bytes {self.spec.max_bytes}")
        content_type = _content_type(head.get("ContentType"), stored.key)
        if self.spec.content_types and content_type not in self.spec.content_types:
            raise ObjectRefused(f"type {content_type}, not one of {', '.join(self.spec.content_types)}")
        etag = str(head.get("ETag", stored.etag)).strip('"')
        body = self._client.get_object(Bucket=stored.bucket, Key=stored.key, IfMatch=head.get("ETag", "*"))["Body"]
        data: bytes = body.read(self.spec.max_bytes + 1)
        if len(data) > self.spec.max_bytes:  # the object was replaced by a larger one since
            raise ObjectRefused(f"over the trigger's max_bytes {self.spec.max_bytes}")
        return data, content_type, etag

    async def _call(self, function: Any, *args: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(function, *args)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in {"NoSuchKey", "404", "PreconditionFailed", "412"}:
                raise ObjectRefused(f"gone or replaced before it was read ({code})") from exc
            raise ServiceUnreachableError(
                "S3", f"{self.spec.endpoint_url or 'aws'}/{self.spec.bucket}", f"{code}: {error.get('Message', exc)}"
            ) from exc
        except BotoCoreError as exc:
            raise ServiceUnreachableError(
                "S3",
                f"{self.spec.endpoint_url or 'aws'}/{self.spec.bucket}",
                f"check the endpoint and credentials ({exc})",
            ) from exc


def _content_type(declared: str | None, key: str) -> str:
    """The stored type, unless it says nothing (`application/octet-stream`): then the key's suffix."""
    declared = (declared or "").split(";", 1)[0].strip().lower()
    if declared and declared not in {"application/octet-stream", "binary/octet-stream"}:
        return declared
    return mimetypes.guess_type(key)[0] or "application/octet-stream"
