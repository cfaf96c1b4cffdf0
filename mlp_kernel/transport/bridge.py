"""The pod side of the ingress transport: one WebSocket port in front of the kernel's loopback ZeroMQ ports.

Why: a member reached through an L7 ingress or east-west gateway (Istio, Cilium, an AWS load balancer) exposes
HTTP(S) routes, not five raw TCP ports on a pod IP. This bridge runs next to the kernel (a native sidecar: an
initContainer with ``restartPolicy: Always``, same image as the kernel) and accepts one WebSocket per ZeroMQ
connection on ``<any prefix>/<channel>``; it connects each to ``127.0.0.1:<channel port>`` and copies bytes
both ways. It never parses ZMTP: the kernel's messages (and CurveZMQ, end to end between the gateway and the
kernel) pass through unchanged, and ZeroMQ's own reconnect recovers a dropped tunnel.

Who may connect: a request must carry ``Authorization: Bearer <token>``, the per-kernel bridge token from the
kernel's Secret (compared in constant time, never logged). TLS, and mTLS with the gateway's client
certificate, terminate at the member's ingress (docs/design.md, "Kernels behind an ingress").

This file is shipped to the pod as it is (a ConfigMap mounted into the sidecar, see
docs/samples/transport/): it imports only the standard library and tornado, which every ipykernel image has.
Run: ``python bridge.py --connection-file kernel.json --token-file token [--listen 0.0.0.0:8765]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import signal
from pathlib import Path
from typing import Any

from tornado.iostream import StreamClosedError
from tornado.tcpclient import TCPClient
from tornado.web import Application, HTTPError, RequestHandler
from tornado.websocket import WebSocketClosedError, WebSocketHandler

log = logging.getLogger("mlp-kernel-bridge")

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
CHUNK = 256 * 1024  # bytes read from the kernel per WebSocket message
#: WebSocket pings keep an idle connection (a notebook nobody types in) open through load balancers that close
#: idle connections (an AWS ALB after 60 s by default); the gateway's side pings too.
PING_INTERVAL_S = 20.0
MAX_MESSAGE = 4 * 1024 * 1024


class Healthz(RequestHandler):
    """Readiness: the bridge is up (the kernel's own readiness is the gateway's kernel_info)."""

    def get(self) -> None:
        self.write("ok\n")


class Channel(WebSocketHandler):
    """One ZeroMQ connection of the gateway to one kernel channel."""

    def initialize(self, ports: dict[str, int], token: bytes) -> None:
        self.ports = ports
        self.token = token
        self.stream: Any = None
        self.copying: asyncio.Task[None] | None = None

    async def get(self, *args: Any, **kwargs: Any) -> None:
        channel = self.path_args[0]
        if channel not in self.ports:
            raise HTTPError(404)
        if not self._authorized():
            # The reason, never the token: an operator reading the log sees who was refused and why.
            log.warning("refused %s from %s: missing or wrong bridge token", channel, self.request.remote_ip)
            self.set_header("WWW-Authenticate", 'Bearer realm="mlp-kernel"')
            raise HTTPError(401)
        await super().get(*args, **kwargs)

    def _authorized(self) -> bool:
        scheme, _, given = self.request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token)

    def get_compression_options(self) -> None:
        return None  # ZMTP under CurveZMQ does not compress; plaintext cells are small and latency-bound

    async def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)
        port = self.ports[self.path_args[0]]
        try:
            self.stream = await TCPClient().connect("127.0.0.1", port)
        except OSError as exc:
            log.warning("kernel %s port %d not reachable: %s", self.path_args[0], port, exc)
            self.close(1011, "kernel not reachable")
            return
        self.stream.set_nodelay(True)
        self.copying = asyncio.ensure_future(self._kernel_to_socket())

    async def _kernel_to_socket(self) -> None:
        sent: Any = None
        try:
            while True:
                data = await self.stream.read_bytes(CHUNK, partial=True)
                if sent is not None:  # one message in flight while the next is read; a slow client holds
                    await sent  # the kernel back (backpressure) instead of filling this process's memory
                sent = self.write_message(data, binary=True)
        except (StreamClosedError, WebSocketClosedError):
            pass
        finally:
            self.close()

    async def on_message(self, message: str | bytes) -> None:
        # A coroutine: tornado delivers the next message only when this one is written (backpressure).
        if self.stream is None:
            return
        try:
            await self.stream.write(message if isinstance(message, bytes) else message.encode())
        except StreamClosedError:
            self.close()

    def on_close(self) -> None:
        if self.stream is not None:
            self.stream.close()


def make_app(ports: dict[str, int], token: bytes) -> Application:
    channels = "|".join(sorted(ports))
    return Application(
        [
            (r"/healthz", Healthz),
            (rf"(?:/[^/]+)*/({channels})", Channel, {"ports": ports, "token": token}),
        ],
        websocket_ping_interval=PING_INTERVAL_S,
        websocket_max_message_size=MAX_MESSAGE,
    )


def ports_of(connection_file: Path) -> dict[str, int]:
    info = json.loads(connection_file.read_text())
    return {channel: int(info[f"{channel}_port"]) for channel in CHANNELS if info.get(f"{channel}_port")}


def read_token(path: Path) -> bytes:
    token = path.read_bytes().strip()
    if len(token) < 16:
        raise SystemExit(f"{path}: the bridge token is missing or shorter than 16 characters")
    return token


async def serve(listen: str, ports: dict[str, int], token: bytes) -> None:
    host, _, port = listen.rpartition(":")
    server = make_app(ports, token).listen(int(port), address=host or "0.0.0.0", xheaders=False)
    log.info("bridge on %s for channels %s", listen, ", ".join(sorted(ports)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--connection-file", type=Path, required=True, help="the kernel's connection file")
    parser.add_argument("--token-file", type=Path, required=True, help="the per-kernel bridge token")
    parser.add_argument("--listen", default="0.0.0.0:8765", help="address:port of the WebSocket listener")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args.listen, ports_of(args.connection_file), read_token(args.token_file)))


if __name__ == "__main__":
    main()
