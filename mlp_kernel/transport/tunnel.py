"""The gateway side of the ingress transport: loopback listeners whose connections travel as WebSockets.

Why this shape: the relay (``gateway/pump.py``) speaks ZeroMQ to ``RemoteKernel.url(channel)`` and must not
care how the bytes get there. For a kernel behind a member's ingress, those URLs point at loopback listeners
of this tunnel; every TCP connection ZeroMQ makes to one is carried as one WebSocket (binary messages) to
``wss://<member ingress>/<kernel path>/<channel>``, where the pod's bridge (``bridge.py``) connects it to the
kernel's port. ZMTP and CurveZMQ pass through unchanged, so encryption stays end to end (gateway to kernel)
even though TLS ends at the ingress; and when a tunnel drops, the TCP connection is closed and ZeroMQ
reconnects on its own, which opens a fresh WebSocket.

The tunnel has its own thread and event loop, like the pump: copying bytes never waits behind the gateway's
own work. ``last_error`` says why the last WebSocket could not be opened (a 401 from the bridge: wrong token;
a TLS error: the ingress refused the client certificate), without the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import threading
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

log = logging.getLogger(__name__)

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
CHUNK = 256 * 1024
PING_INTERVAL_S = 20.0  # below every load balancer's idle timeout we know of (ALB: 60 s by default)
MAX_MESSAGE = 4 * 1024 * 1024
CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class IngressTarget:
    """Where one kernel's bridge is reached: ``url`` is ``wss://host[:port]/<kernel path>`` (no channel)."""

    url: str
    token: str  # the kernel's bridge token (from its Secret); sent as a bearer token, never logged
    ca_file: str = ""  # the CA that signed the ingress's certificate ("" = the system's trust store)
    cert_file: str = ""  # the gateway's client certificate, for an ingress that verifies clients (mTLS)
    key_file: str = ""

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file or None)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file or None)
        return ctx

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        return f"IngressTarget(url={self.url!r}, token=<hidden>)"


class Tunnel:
    """Loopback listeners, one per channel, tunnelled to one kernel's bridge; ``start`` returns the ports."""

    def __init__(self, target: IngressTarget, channels: tuple[str, ...] = CHANNELS) -> None:
        self.target = target
        self.channels = channels
        self.ports: dict[str, int] = {}
        self.last_error = ""
        self.last_status: int | None = None  # the HTTP status of the last refused WebSocket (401: the token)
        self.opened = 0  # WebSockets opened so far (a reconnect opens new ones)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mlp-tunnel", daemon=True)
        self._servers: list[asyncio.AbstractServer] = []
        self._live: set[asyncio.Task[None]] = set()
        self._ssl = target.ssl_context() if target.url.startswith("wss:") else None

    def start(self) -> dict[str, int]:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return dict(self.ports)

    def drop(self) -> None:
        """Close every open tunnel connection now (a lost ingress, in tests); ZeroMQ reconnects."""
        asyncio.run_coroutine_threadsafe(self._drop(), self._loop).result(timeout=10)

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> None:
        for channel in self.channels:
            server = await asyncio.start_server(functools.partial(self._carry, channel), "127.0.0.1", 0)
            self._servers.append(server)
            self.ports[channel] = server.sockets[0].getsockname()[1]

    async def _drop(self) -> None:
        for task in list(self._live):
            task.cancel()
        await asyncio.gather(*self._live, return_exceptions=True)

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        await self._drop()

    async def _carry(self, channel: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._live.add(task)
        ws: WebSocketClientConnection | None = None
        try:
            ws = await self._open(channel)
            if ws is None:
                return
            upstream = asyncio.ensure_future(self._to_socket(reader, ws))
            try:
                await self._to_kernel_side(ws, writer)
            finally:
                upstream.cancel()
                await asyncio.gather(upstream, return_exceptions=True)
        except asyncio.CancelledError:
            pass
        finally:
            self._live.discard(task)
            if ws is not None:
                ws.close()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _open(self, channel: str) -> WebSocketClientConnection | None:
        request = HTTPRequest(
            f"{self.target.url.rstrip('/')}/{channel}",
            headers={"Authorization": f"Bearer {self.target.token}"},
            ssl_options=self._ssl,
            connect_timeout=CONNECT_TIMEOUT_S,
            request_timeout=CONNECT_TIMEOUT_S,
        )
        try:
            ws = await websocket_connect(
                request, ping_interval=PING_INTERVAL_S, max_message_size=MAX_MESSAGE, compression_options=None
            )
        except HTTPClientError as exc:
            self.last_status = exc.code
            self._failed(channel, f"the ingress answered {exc.code} {exc.message or ''}".strip())
            return None
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
            self._failed(channel, f"{type(exc).__name__}: {exc}")
            return None
        self.opened += 1
        self.last_error = ""
        self.last_status = None
        ws.stream.set_nodelay(True)
        return ws

    def _failed(self, channel: str, why: str) -> None:
        self.last_error = why
        log.warning("tunnel to %s/%s not opened: %s", self.target.url, channel, why)

    @staticmethod
    async def _to_socket(reader: asyncio.StreamReader, ws: WebSocketClientConnection) -> None:
        """ZeroMQ -> kernel: each read becomes one binary message; waits while the ingress is slow."""
        sent: Any = None
        try:
            while data := await reader.read(CHUNK):
                if sent is not None:  # one message in flight while the next is read (backpressure)
                    await sent
                sent = ws.write_message(data, binary=True)
        except (WebSocketClosedError, ConnectionError):
            pass
        finally:
            ws.close()

    @staticmethod
    async def _to_kernel_side(ws: WebSocketClientConnection, writer: asyncio.StreamWriter) -> None:
        """Kernel -> ZeroMQ, until the WebSocket closes."""
        while True:
            message: Any = await ws.read_message()
            if message is None:
                return
            writer.write(message if isinstance(message, bytes) else message.encode())
            await writer.drain()


async def zmtp_answers(host: str, port: int, timeout_s: float = 3.0) -> bool:
    """Whether a ZeroMQ socket answers on ``host:port`` with its greeting (a ZMTP 3 signature starts with
    0xff). Through a tunnel's listener a bare TCP connect proves nothing (the listener is local); the greeting
    comes from the kernel, so it proves the whole path: ingress, bridge, kernel."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        writer.write(b"\xff" + b"\x00" * 8 + b"\x7f")
        first = await asyncio.wait_for(reader.read(1), timeout_s)
        return first == b"\xff"
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
