"""Jupyter wire-protocol framing and signing, without importing jupyter_client.

The gateway relays most frames untouched (the remote kernel shares its HMAC key), so on the hot path it only
needs to find the ``<IDS|MSG>`` delimiter. It signs only the few messages it authors or rewrites. Importing
``jupyter_client.session`` would pull in traitlets and most of jupyter_client, which costs start-up time and
memory in a process that exists once per open notebook; this module is the 100 lines of it we need.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

DELIM = b"<IDS|MSG>"
PROTOCOL_VERSION = "5.3"


class Malformed(ValueError):
    """Frames that are not a signed Jupyter message. Whoever received them drops them and logs why; nothing
    else happens (anyone who reaches a kernel port can send any frames, with or without the key)."""


class DropLog:
    """Warnings about dropped frames, rate-limited per source (a channel): the first ``burst`` of each
    ``interval`` in full, then only counted; the next drop after the interval first logs how many were hidden.

    Anyone who reaches a kernel port can send junk frames as fast as the network carries them; logged one
    line each, 2,000 frames were 2,000 lines (a flood that buries everything else in the server's log and
    costs the gateway a formatted write per frame). A drop here costs a clock read and a counter; the hidden
    count of the last interval is logged only when drops resume (no timer runs for it).
    """

    def __init__(self, warn: Callable[..., None], burst: int = 10, interval: float = 60.0) -> None:
        self._warn, self.burst, self.interval = warn, burst, interval
        self._windows: dict[str, list[float]] = {}  # source -> [window start, logged, hidden]

    def __call__(self, source: str, fmt: str, *args: Any) -> None:
        now = time.monotonic()
        w = self._windows.get(source)
        if w is None or now - w[0] >= self.interval:
            if w is not None and w[2]:
                self._warn(
                    "dropped %d more messages on %s in %.0f s without logging each",
                    int(w[2]),
                    source,
                    now - w[0],
                )
            w = self._windows[source] = [now, 0, 0]
        if w[1] >= self.burst:
            w[2] += 1
            return
        w[1] += 1
        self._warn(fmt, *args)
        if w[1] == self.burst:
            self._warn("more dropped messages on %s are only counted for %.0f s", source, self.interval)


def split(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Split raw frames into (identities, [signature, header, parent, metadata, content, *buffers])."""
    try:
        i = frames.index(DELIM)
    except ValueError:
        raise Malformed("no <IDS|MSG> delimiter") from None
    if len(frames) - i - 1 < 5:
        raise Malformed(f"{len(frames) - i - 1} frames after the delimiter, at least 5 expected")
    return frames[:i], frames[i + 1 :]


def load_dict(frame: bytes, part: str) -> dict[str, Any]:
    """One JSON object of a message (header, parent, metadata, content); anything else is ``Malformed``."""
    try:
        value = json.loads(frame)
    except (ValueError, TypeError, RecursionError) as exc:  # bad JSON or UTF-8, not bytes, 10^5-deep nesting
        raise Malformed(f"the {part} is not JSON ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise Malformed(f"the {part} is a JSON {type(value).__name__}, not an object")
    return value


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, default=str, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Signer:
    """HMAC signer/verifier for one connection key (``signature_scheme`` ``hmac-<digest>``)."""

    def __init__(self, key: str | bytes, scheme: str = "hmac-sha256") -> None:
        self.key = key.encode() if isinstance(key, str) else key
        algo = scheme.split("-", 1)[1] if scheme.startswith("hmac-") else "sha256"
        self.digest = getattr(hashlib, algo)

    def sign(self, parts: list[bytes]) -> bytes:
        if not self.key:
            return b""
        h = hmac.new(self.key, digestmod=self.digest)
        for p in parts:
            h.update(p)
        return h.hexdigest().encode()

    def verify(self, msg_frames: list[bytes]) -> bool:
        if not self.key:
            return True
        # One-shot HMAC over the joined parts: about half the cost of hmac.new() and four updates, and this
        # runs for every request the gateway relays.
        digest = hmac.digest(self.key, b"".join(msg_frames[1:5]), self.digest)
        return hmac.compare_digest(msg_frames[0], digest.hex().encode())


class Session:
    """Builds and parses messages for the gateway's own voice (username ``mlp-kernel``)."""

    def __init__(self, signer: Signer, username: str = "mlp-kernel") -> None:
        self.signer = signer
        self.session_id = uuid.uuid4().hex
        self.username = username
        self._counter = 0

    def header(self, msg_type: str) -> dict[str, Any]:
        self._counter += 1
        return {
            "msg_id": f"{self.session_id}_{os.getpid()}_{self._counter}",
            "msg_type": msg_type,
            "username": self.username,
            "session": self.session_id,
            "date": now_iso(),
            "version": PROTOCOL_VERSION,
        }

    def serialize(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: dict[str, Any] | None = None,
        idents: list[bytes] | None = None,
        metadata: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
    ) -> list[bytes]:
        parts = [
            _dumps(header or self.header(msg_type)),
            _dumps(parent or {}),
            _dumps(metadata or {}),
            _dumps(content),
        ]
        return [*(idents or []), DELIM, self.signer.sign(parts), *parts]

    def resign(self, idents: list[bytes], msg_frames: list[bytes], content: dict[str, Any]) -> list[bytes]:
        """Re-sign a relayed message whose content the gateway rewrote; header, parent, metadata are kept."""
        parts = [msg_frames[1], msg_frames[2], msg_frames[3], _dumps(content)]
        return [*idents, DELIM, self.signer.sign(parts), *parts, *msg_frames[5:]]


class Message:
    """A parsed incoming message; ``frames`` keeps the raw bytes for relaying untouched.

    Raises ``Malformed`` (a ``ValueError``) for anything that is not a message, and only that: with a
    ``signer`` the signature is checked before a byte of JSON is read, so frames from someone without the key
    cost one HMAC and are never parsed. The header is parsed at once, the other parts on first use (the hot
    path reads only the header); ``complete()`` parses them all, for code that must not fail half-way.
    """

    __slots__ = ("idents", "frames", "header", "_parent", "_metadata", "_content")

    def __init__(self, raw: list[bytes], signer: Signer | None = None) -> None:
        self.idents, self.frames = split(raw)
        if signer is not None and not signer.verify(self.frames):
            raise Malformed("invalid signature")
        self.header: dict[str, Any] = load_dict(self.frames[1], "header")
        self._parent: dict[str, Any] | None = None
        self._metadata: dict[str, Any] | None = None
        self._content: dict[str, Any] | None = None

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type", ""))

    @property
    def msg_id(self) -> str:
        return str(self.header.get("msg_id", ""))

    @property
    def parent(self) -> dict[str, Any]:
        if self._parent is None:
            self._parent = load_dict(self.frames[2], "parent header")
        return self._parent

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            self._metadata = load_dict(self.frames[3], "metadata")
        return self._metadata

    @property
    def content(self) -> dict[str, Any]:
        if self._content is None:
            self._content = load_dict(self.frames[4], "content")
        return self._content

    def complete(self) -> Message:
        """Parse every part now (``Malformed`` if one is not a JSON object); returns the message."""
        _ = self.parent, self.metadata, self.content
        return self

    def raw(self) -> list[bytes]:
        return [*self.idents, DELIM, *self.frames]
