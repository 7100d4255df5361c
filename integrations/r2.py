"""Cloudflare R2 through its S3-compatible API (boto3 with an endpoint URL, region ``auto``).

What log ingestion and the audit checkpoints need: list the objects under a prefix, fetch one,
and create one that must not exist yet. Any S3 server speaks the same protocol, so the tests use
a local one. Credentials come from the caller (the settings), never from the database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

REGION = "auto"
MISSING = {"NoSuchKey", "404", "NotFound", "PreconditionFailed", "412"}


class R2Error(Exception):
    """The bucket could not be read now (network, 5xx, credentials); worth trying again later."""


class ObjectGone(R2Error):
    """The object vanished or changed between listing and fetching it."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    etag: str
    size: int
    last_modified: datetime


def endpoint_for(account_id: str) -> str:
    return f"https://{account_id}.r2.cloudflarestorage.com"


def client(
    *,
    endpoint_url: str,
    access_key_id: str,
    secret_access_key: str,
    timeout: float = 10.0,
    attempts: int = 3,
):
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(
            signature_version="s3v4",
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": attempts, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    )


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def list_objects(
    s3, bucket: str, prefix: str, *, start_after: str | None = None
) -> Iterator[StoredObject]:
    """Every object under ``prefix`` (all pages); with ``start_after`` only keys that sort after
    it (S3's ``StartAfter``: one call that answers an empty page when nothing is newer)."""
    arguments = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        arguments["StartAfter"] = start_after
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(**arguments):
            for item in page.get("Contents", []):
                yield StoredObject(
                    key=item["Key"],
                    etag=item.get("ETag", "").strip('"'),
                    size=item.get("Size", 0),
                    last_modified=item["LastModified"],
                )
    except (ClientError, BotoCoreError) as exc:
        raise R2Error(f"listing {bucket}/{prefix}: {_error_text(exc)}") from exc


def get_object(s3, bucket: str, key: str, *, etag: str | None = None) -> bytes:
    """The object's bytes; with ``etag`` only that version (ObjectGone if it changed)."""
    arguments = {"Bucket": bucket, "Key": key}
    if etag:
        arguments["IfMatch"] = f'"{etag}"'
    try:
        response = s3.get_object(**arguments)
        return response["Body"].read()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in MISSING or status in MISSING:
            raise ObjectGone(f"{key}: {_error_text(exc)}") from exc
        raise R2Error(f"fetching {key}: {_error_text(exc)}") from exc
    except BotoCoreError as exc:
        raise R2Error(f"fetching {key}: {_error_text(exc)}") from exc


def put_object_once(s3, bucket: str, key: str, body: bytes) -> bool:
    """Create the object unless one exists under ``key``: True if written, False if it existed.

    A conditional PUT (``If-None-Match: *``), which R2 and S3 honour, so that an existing object
    is never overwritten, not even by two writers at once.
    """
    try:
        s3.put_object(
            Bucket=bucket, Key=key, Body=body, IfNoneMatch="*", ContentType="application/json"
        )
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if exc.response.get("Error", {}).get("Code") == "PreconditionFailed" or status == 412:
            return False
        raise R2Error(f"writing {bucket}/{key}: {_error_text(exc)}") from exc
    except BotoCoreError as exc:
        raise R2Error(f"writing {bucket}/{key}: {_error_text(exc)}") from exc
    return True
