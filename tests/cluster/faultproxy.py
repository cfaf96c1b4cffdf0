"""A fault-injecting HTTPS proxy in front of a real kube-apiserver: the faults a real server will not make.

A real API server does not answer 500 on demand, cut a watch mid-stream when a test asks, or forget history
at a chosen moment; load balancers, restarts and etcd compaction do that to the product in production. So
the product's kubeconfig points at this proxy, which forwards every request to the member's kube-apiserver
unchanged (the client's ``Authorization`` header, body and query; streamed replies such as watches are passed
through chunk by chunk) unless a fault is armed. It terminates TLS with the plane's serving certificate
(``pki.py``: 127.0.0.1, same CA), so the kubeconfig differs only in the server's port.

The interface is the test API's own fault injector (``tests/kubeapi/faults.py``, subclassed here, so the
two cannot drift): ``fail_next(n, path=regex, method=, code=, reason=)`` answers with a Kubernetes ``Status``
as the API server writes it, ``slow(seconds, ...)`` delays, ``drop_watches(clean=)`` cuts the watch streams
open now (an abort, or a normal end of the chunked stream as at the server's request timeout), ``fired`` and
``clear()``. Added: ``requests`` (method, path with query) as the test API records them, and
``compact(resource_version)``: a watch resumed from an older version is then answered as the API server
answers one whose version etcd compacted away (HTTP 200 and one ``ERROR`` event, ``410 Expired``).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.kubeapi.errors import ApiError
from tests.kubeapi.faults import Faults

#: headers that describe one hop, not the message: never forwarded either way
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
#: requests and responses are passed on in pieces of at most this many bytes
CHUNK = 65536


class _Stream:
    """A watch stream being relayed: ``drop_watches`` shuts its upstream socket to end the relay at once."""

    def __init__(self, path: str, sock: socket.socket | None):
        self.path = path
        self.started = time.monotonic()
        self.sock = sock


class FaultProxy(Faults):
    """One member's proxy: ``start()``, ``url``, ``stop()``; the fault interface of ``Faults``."""

    def __init__(self, upstream: str, ca_file: str, cert_file: str, key_file: str):
        super().__init__()
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 443
        self.client_tls = ssl.create_default_context(cafile=ca_file)
        self.server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_tls.load_cert_chain(cert_file, key_file)
        self.server_tls.set_alpn_protocols(["http/1.1"])
        self.requests: deque[tuple[str, str]] = deque(maxlen=5000)
        self._streams: set[_Stream] = set()
        self._expired_before: int | None = None
        self._http: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._http = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.1}, name="faultproxy", daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._http is not None, "proxy not started"
        return f"https://127.0.0.1:{self._http.server_address[1]}"

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self.drop_watches()
            self._http = None

    # -- faults beyond the test API's ------------------------------------------------------------------

    def drop_watches(self, path: str = ".*", clean: bool = False) -> None:
        super().drop_watches(path, clean)
        now = time.monotonic()
        with self._lock:
            cut = [s for s in self._streams if s.started < now and self.watch_drop_armed(s)]
        for stream in cut:  # the relay thread wakes up from its read and asks watch_drop what to do
            _shutdown(stream.sock)

    def watch_drop_armed(self, stream: _Stream) -> bool:
        return any(stream.started < d.before and d.pattern.search(stream.path) for d in self._drops)

    def compact(self, resource_version: str | int) -> None:
        """Watches resumed from a version older than ``resource_version`` get ``410 Expired`` from now on."""
        with self._lock:
            self._expired_before = int(resource_version)

    def clear(self) -> None:
        super().clear()
        with self._lock:
            self._expired_before = None

    def reset(self) -> None:
        """Between tests: no faults armed, nothing recorded."""
        self.clear()
        with self._lock:
            self.fired.clear()
        self.requests.clear()

    def expired(self, path: str, resource_version: str) -> str | None:
        """The API server's message when a watch from ``resource_version`` is too old, else None."""
        with self._lock:
            before = self._expired_before
        if before is None or not resource_version.isdigit() or not 0 < int(resource_version) < before:
            return None  # "0" and no version mean "from any point": never too old
        with self._lock:
            self.fired.append(("expired", "GET", path))
        return f"too old resource version: {resource_version} ({before})"

    # -- used by the handler ---------------------------------------------------------------------------

    def open_stream(self, path: str, sock: socket.socket | None) -> _Stream:
        stream = _Stream(path, sock)
        with self._lock:
            self._streams.add(stream)
        return stream

    def close_stream(self, stream: _Stream) -> bool | None:
        with self._lock:
            self._streams.discard(stream)
        return self.watch_drop(stream.started, stream.path)


def _shutdown(sock: socket.socket | None) -> None:
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def status_body(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    """A ``Status`` as kube-apiserver writes it (an internal error names its cause in ``details``)."""
    if details is None and code == 500:
        details = {"causes": [{"message": message}]}
    return json.dumps(ApiError(code, reason, message, details).status()).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], proxy: FaultProxy):
        self.proxy = proxy
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:  # the TLS handshake in the connection's own thread: a slow client never stalls accept()
            request = self.proxy.server_tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    _upstream: http.client.HTTPSConnection | None = None

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._relay()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

    def finish(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
        super().finish()

    # -- one request -----------------------------------------------------------------------------------

    def _relay(self) -> None:
        proxy = self.server.proxy
        method, parts = self.command, urlsplit(self.path)
        proxy.requests.append((method, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        try:
            proxy.before_request(method, parts.path)
        except ApiError as exc:
            self._answer(exc.code, status_body(exc.code, exc.reason, exc.message))
            return
        query = parse_qs(parts.query)
        watch = query.get("watch", [""])[0] in ("true", "1")
        if watch and (message := proxy.expired(parts.path, query.get("resourceVersion", [""])[0])):
            event = {"type": "ERROR", "object": json.loads(status_body(410, "Expired", message))}
            self._answer(200, json.dumps(event).encode() + b"\n")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        resp = self._forward(method, body, headers)
        if resp is None:
            self._answer(503, status_body(503, "ServiceUnavailable", "fault proxy: upstream unreachable"))
            return
        self.send_response_only(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        if not resp.chunked:
            data = resp.read()
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(data)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._relay_chunks(resp, parts.path if watch else None)

    def _forward(
        self, method: str, body: bytes | None, headers: dict[str, str]
    ) -> http.client.HTTPResponse | None:
        """Send to the API server on this connection's own upstream connection (opened again once if the
        server closed an idle one)."""
        proxy = self.server.proxy
        for attempt in range(2):
            fresh = self._upstream is None
            if fresh:
                self._upstream = http.client.HTTPSConnection(
                    proxy.upstream_host, proxy.upstream_port, context=proxy.client_tls, timeout=300
                )
            assert self._upstream is not None
            try:
                self._upstream.request(method, self.path, body=body, headers=headers)
                return self._upstream.getresponse()
            except (http.client.RemoteDisconnected, ConnectionError, ssl.SSLError, OSError):
                self._upstream.close()
                self._upstream = None
                if fresh or attempt:
                    return None
        return None

    def _relay_chunks(self, resp: http.client.HTTPResponse, watch_path: str | None) -> None:
        """Pass a chunked reply on piece by piece; a watch can be cut by ``drop_watches``."""
        proxy = self.server.proxy
        upstream = self._upstream
        stream = proxy.open_stream(watch_path, upstream.sock if upstream else None) if watch_path else None
        ended = False
        try:
            while True:
                data = resp.read1(CHUNK)
                if not data:
                    ended = True
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
        except (OSError, http.client.HTTPException, ValueError):
            pass
        drop = proxy.close_stream(stream) if stream is not None else None
        if drop is not None or not ended:  # the upstream stream is cut or half-read: never reuse it
            resp.close()
            if upstream is not None:
                upstream.close()
            self._upstream = None
        if drop is False or (drop is None and not ended):
            self.close_connection = True  # the client sees the stream break mid-way
            _shutdown(self.connection)
            return
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response_only(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        if code == 429:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
