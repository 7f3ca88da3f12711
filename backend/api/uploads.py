"""Reading what cameras upload (evidence, live frames): a bounded body and its capture time."""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import HTTPException, Request, status
from starlette.requests import ClientDisconnect

log = logging.getLogger(__name__)


def captured_at_header(value: str | None) -> datetime | None:
    """The ``X-Captured-At`` header as an aware time; a header without a zone is refused, not guessed."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "X-Captured-At must be an ISO 8601 time with a zone, e.g. 2025-01-31T08:15:00Z")
    return parsed


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"at most {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # The camera hung up mid-upload: nothing is stored; its spool (evidence) or next frame (live) follows.
        log.info("upload to %s abandoned by %s", request.url.path, request.client.host if request.client else "?")
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "upload interrupted") from None
    return b"".join(chunks)
