"""The HTTP/1.1 layer: parse requests, apply faults, call the REST layer, write JSON or chunked streams.

Keep-alive and chunked transfer matter: the ``kubernetes`` client pools connections through urllib3 and
reads watch streams line by line from a chunked body.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from .errors import ApiError
from .responses import DropConnection, JsonResponse, RawResponse, Request, StreamResponse, TextResponse

if TYPE_CHECKING:
    from .server import KubeApiServer

log = logging.getLogger(__name__)


class ApiHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: KubeApiServer):
        super().__init__(address, ApiRequestHandler)
        self.api = api

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-request is normal in tests (dropped watches, teardown): not an error."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError, ValueError)):
            log.debug("connection from %s ended: %r", client_address, exc)
            return
        log.error(
            "test apiserver %s: unhandled error for %s\n%s",
            self.api.name,
            client_address,
            traceback.format_exc(),
        )


class ApiRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ApiHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        api = self.server.api
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            method,
            url.path,
            dict(parse_qsl(url.query, keep_blank_values=True)),
            {k.lower(): v for k, v in self.headers.items()},
            body,
            raw_path=self.path,
        )
        api.record_request(method, self.path)
        try:
            api.faults.before_request(method, url.path)
            response = api.rest.dispatch(req)
        except ApiError as exc:
            response = JsonResponse(exc.code, exc.status())
        except Exception as exc:  # a bug in the test server must reach the test as a 500, not a hang
            log.error("test apiserver error on %s %s\n%s", method, self.path, traceback.format_exc())
            response = JsonResponse(
                500, ApiError(500, "InternalError", f"test apiserver bug: {exc!r}").status()
            )
        try:
            self._send(response)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, response: Any) -> None:
        if isinstance(response, JsonResponse):
            payload = json.dumps(response.body).encode()
            self._send_bytes(response.code, "application/json", payload, response.headers)
        elif isinstance(response, TextResponse):
            self._send_bytes(response.code, response.content_type, response.text.encode())
        elif isinstance(response, StreamResponse):
            self._send_stream(response.code, response.content_type, response.chunks, response.headers)
        elif isinstance(response, RawResponse):
            if response.chunks is not None:
                self._send_stream(
                    response.code,
                    response.headers.get("Content-Type", "application/json"),
                    response.chunks,
                    {},
                )
            else:
                self._send_bytes(
                    response.code,
                    response.headers.get("Content-Type", "application/json"),
                    response.body or b"",
                    {},
                )
        else:
            raise TypeError(f"unknown response {response!r}")

    def _send_bytes(
        self, code: int, ctype: str, payload: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_stream(self, code: int, ctype: str, chunks: Any, headers: dict[str, str]) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.flush()
        try:
            for chunk in chunks:
                if not chunk:
                    if self._peer_closed():
                        return
                    continue
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
        except DropConnection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _peer_closed(self) -> bool:
        """True when the client has hung up (so an idle watch stops instead of lingering)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
