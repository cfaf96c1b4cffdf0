"""A bare relay kernel: the floor the gateway's relay is measured against (``bench_relay_cpu.py``).

Why: on the two-core development machine every microsecond of CPU a relay process spends per round trip
shows up in the wall time (docs/benchmarks.md), and some of that cost is the hop itself (ZeroMQ's I/O
thread, a wake-up per message), which no relay avoids. This process is the least a relay in Python can do:
it binds the client's five channels, starts an ipykernel on unix sockets with the same key and the option
GPU (auto) gives its remote kernels (history in memory), and relays frames untouched in one ``zmq_poll``
loop (ROUTER <-> DEALER for shell, control and stdin, XPUB <-> XSUB for iopub), with the heartbeat echoed in
a thread. No parsing, no signature check, no bookkeeping, no event loop. It is not a kernel anyone should
use: it exits when its ipykernel exits.

Run as a kernelspec: ``python benchmarks/bare_relay.py -f {connection_file}``.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import zmq

from mlp_kernel.backends.base import KERNEL_ARGS

CHANNELS = (("shell", zmq.ROUTER), ("control", zmq.ROUTER), ("stdin", zmq.ROUTER), ("iopub", zmq.XPUB))
PR_SET_PDEATHSIG = 1
_send, _recv = zmq.backend.Socket.send, zmq.backend.Socket.recv  # the Cython methods, as the gateway's pump
_SNDMORE, _NOBLOCK = int(zmq.SNDMORE), int(zmq.NOBLOCK)


def _die_with_parent() -> None:  # the ipykernel must not outlive a relay that was killed
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def start_kernel(conn: dict[str, Any], tmp: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    ports = {f"{name}_port": i for i, name in enumerate(("shell", "control", "stdin", "iopub", "hb"), 1)}
    remote = {**conn, **ports, "transport": "ipc", "ip": str(tmp / "k")}
    path = tmp / "kernel.json"
    path.write_text(json.dumps(remote))
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", str(path), *KERNEL_ARGS]
    proc = subprocess.Popen(argv, preexec_fn=_die_with_parent)  # noqa: PLW1509 - a prctl, no threads yet
    urls = {name: f"ipc://{tmp / 'k'}-{ports[name + '_port']}" for name, _ in CHANNELS}
    return proc, urls


def echo(ctx: zmq.Context[Any], url: str) -> None:
    sock = ctx.socket(zmq.ROUTER)
    sock.bind(url)
    try:
        zmq.proxy(sock, sock)
    except zmq.ZMQError:
        pass


def relay(
    front: dict[str, zmq.Socket[Any]], back: dict[str, zmq.Socket[Any]], kernel: subprocess.Popen[bytes]
):
    peer = {}
    for name, _ in CHANNELS:
        peer[front[name]] = back[name]
        peer[back[name]] = front[name]
    poller = zmq.Poller()
    for sock in peer:
        poller.register(sock, zmq.POLLIN)
    while kernel.poll() is None:
        for sock, _ in poller.poll(500):
            out = peer[sock]
            while True:
                try:
                    frame = _recv(sock, _NOBLOCK, False)
                except zmq.Again:
                    break
                while frame.more:
                    _send(out, frame, _SNDMORE, False)
                    frame = _recv(sock, 0, False)
                _send(out, frame, 0, False)


def main() -> int:
    conn = json.loads(Path(sys.argv[sys.argv.index("-f") + 1]).read_text())
    ctx: zmq.Context[Any] = zmq.Context()
    url = f"{conn.get('transport', 'tcp')}://{conn['ip']}:"
    front = {}
    for name, kind in CHANNELS:
        sock = front[name] = ctx.socket(kind)
        sock.linger = 0
        sock.bind(url + str(conn[f"{name}_port"]))
    threading.Thread(target=echo, args=(ctx, url + str(conn["hb_port"])), daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="bare-relay-") as tmp:
        kernel, urls = start_kernel(conn, Path(tmp))
        signal.signal(signal.SIGTERM, lambda *_: kernel.terminate())
        back = {}
        for name, _ in CHANNELS:
            sock = back[name] = ctx.socket(zmq.XSUB if name == "iopub" else zmq.DEALER)
            sock.linger = 0
            if name == "iopub":
                sock.send(b"\x01")
            elif name != "control":
                sock.routing_id = f"bare-relay-{os.getpid()}".encode()  # shell and stdin: input_request
            sock.connect(urls[name])
        relay(front, back, kernel)
    return kernel.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
