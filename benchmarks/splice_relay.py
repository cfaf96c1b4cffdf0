"""A byte-level relay kernel with no ZeroMQ in it: what the hop costs without libzmq's thread handoffs.

Why: every relay measured so far speaks ZeroMQ, so each message crosses libzmq's I/O thread, the relaying
thread and the I/O thread again on each side: four thread handoffs a message, each a wake-up on a busy core
(docs/benchmarks.md, "The relay's floor"). This relay has one thread and no ZeroMQ socket: it listens on
the client's five ports and, for each connection the client makes, opens one to the same channel of an
ipykernel (on unix sockets, as the other floor relays) and copies bytes both ways in one epoll loop. ZMTP
passes through untouched (the client's greeting, handshake and frames reach ipykernel as if it connected
directly), so a message costs this process one wake-up, one ``recv`` and one ``send``. If a relay hop can
be cheap on two cores, this is how cheap. It cannot do anything a gateway must (answer before a kernel
exists, look at a request, send messages of its own): it is a measurement, not a design. It exits when its
ipykernel exits.

Run as a kernelspec: ``python benchmarks/splice_relay.py -f {connection_file}``.
"""

from __future__ import annotations

import json
import select
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bare_relay import start_kernel

PORTS = ("shell", "control", "stdin", "iopub", "hb")  # start_kernel numbers the ipc ports 1-5 in this order
CHUNK = 256 * 1024
IN, OUT = select.EPOLLIN, select.EPOLLOUT


class End:
    """One side of a spliced connection; ``pending`` holds what its socket did not take yet (back-pressure:
    while it is not empty, the peer is not read)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.setblocking(False)
        self.fd = sock.fileno()
        self.peer: End = self
        self.pending = b""

    def mask(self) -> int:
        return (0 if self.peer.pending else IN) | (OUT if self.pending else 0)


class Splicer:
    def __init__(self) -> None:
        self.ep = select.epoll()
        self.ends: dict[int, End] = {}
        self.listeners: dict[int, tuple[socket.socket, str]] = {}

    def listen(self, sock: socket.socket, upstream: str) -> None:
        self.listeners[sock.fileno()] = (sock, upstream)
        self.ep.register(sock.fileno(), IN)

    def accept(self, fd: int) -> None:
        listener, upstream = self.listeners[fd]
        client, _ = listener.accept()
        if client.family != socket.AF_UNIX:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as libzmq does on TCP
        kernel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        kernel.connect(upstream)
        a, b = End(client), End(kernel)
        a.peer, b.peer = b, a
        for end in (a, b):
            self.ends[end.fd] = end
            self.ep.register(end.fd, end.mask())

    def close(self, end: End) -> None:
        for e in (end, end.peer):
            if self.ends.pop(e.fd, None) is not None:
                self.ep.unregister(e.fd)
                e.sock.close()

    def update(self, *ends: End) -> None:
        for e in ends:
            if e.fd in self.ends:
                self.ep.modify(e.fd, e.mask())

    def write(self, end: End, data: bytes) -> None:
        try:
            sent = end.sock.send(data)
        except BlockingIOError:
            sent = 0
        end.pending = data[sent:]

    def serve(self, alive: Callable[[], bool]) -> None:
        while alive():
            for fd, events in self.ep.poll(0.5):
                if fd in self.listeners:
                    self.accept(fd)
                    continue
                end = self.ends.get(fd)
                if end is None:
                    continue
                try:
                    if events & OUT and end.pending:
                        self.write(end, end.pending)
                        self.update(end, end.peer)
                    if events & (select.EPOLLHUP | select.EPOLLERR) and end.peer.pending:
                        self.close(end)  # gone while its peer's side was full: nothing more to relay
                        continue
                    if events & (IN | select.EPOLLHUP | select.EPOLLERR) and not end.peer.pending:
                        data = end.sock.recv(CHUNK)
                        if not data:
                            self.close(end)
                            continue
                        self.write(end.peer, data)
                        if end.peer.pending:
                            self.update(end, end.peer)
                except OSError:
                    self.close(end)


def main() -> int:
    conn = json.loads(Path(sys.argv[sys.argv.index("-f") + 1]).read_text())
    with tempfile.TemporaryDirectory(prefix="splice-relay-") as tmp:
        kernel, _ = start_kernel(conn, Path(tmp))
        signal.signal(signal.SIGTERM, lambda *_: kernel.terminate())
        upstream = {name: f"{tmp}/k-{i}" for i, name in enumerate(PORTS, 1)}
        splicer = Splicer()
        for name in PORTS:  # listen at once: a client's connects wait in the backlog until the kernel is up
            if conn.get("transport", "tcp") == "tcp":
                sock = socket.create_server((conn["ip"], conn[f"{name}_port"]), backlog=16)
            else:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.bind(f"{conn['ip']}-{conn[f'{name}_port']}")
                sock.listen(16)
            splicer.listen(sock, upstream[name])
        deadline = time.monotonic() + 60
        while not all(Path(p).exists() for p in upstream.values()):  # ipykernel binds all five at start
            if kernel.poll() is not None or time.monotonic() > deadline:
                return kernel.poll() or 1
            time.sleep(0.01)
        splicer.serve(lambda: kernel.poll() is None)
    return kernel.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
