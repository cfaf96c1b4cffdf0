"""What a route returns to the HTTP layer: JSON, plain text, or a stream sent with chunked encoding."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class JsonResponse:
    code: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class TextResponse:
    code: int
    text: str
    content_type: str = "text/plain"


@dataclass
class StreamResponse:
    """Chunks are written as they come; a ``DropConnection`` raised by the iterator aborts the socket."""

    chunks: Iterator[bytes]
    content_type: str = "application/json"
    code: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RawResponse:
    """A proxied response: status, headers and a body that is either bytes or a stream of chunks."""

    code: int
    headers: dict[str, str]
    body: bytes | None = None
    chunks: Iterator[bytes] | None = None


class DropConnection(Exception):
    """Raised inside a stream to cut the TCP connection without a final chunk (a dropped watch)."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    raw_path: str = ""

    def json(self) -> Any:
        import json

        if not self.body:
            return None
        return json.loads(self.body)
