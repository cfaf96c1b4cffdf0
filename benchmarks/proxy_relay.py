"""A relay kernel in libzmq's C proxy: the floor of any relay that speaks ZeroMQ (``bench_relay_cpu.py``).

Why: ``bare_relay.py`` relays in a Python ``zmq_poll`` loop; this one does the same with no Python on the
path at all, ``zmq.proxy`` in a thread per channel (ROUTER <-> DEALER for shell, control and stdin, XPUB <->
XSUB for iopub, the heartbeat echoed by a ROUTER proxied to itself). What it still pays is the hop as libzmq
makes it: each message is read by libzmq's I/O thread, handed to the proxy's thread, and handed back to the
I/O thread to be written, on each side. So it says what a ZeroMQ relay costs when its own code costs nothing
(docs/benchmarks.md, "The relay's floor"). Not a kernel anyone should use: it exits when its ipykernel exits.

Run as a kernelspec: ``python benchmarks/proxy_relay.py -f {connection_file}``.
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import zmq
from bare_relay import CHANNELS, echo, start_kernel


def proxy(front: zmq.Socket[Any], back: zmq.Socket[Any]) -> None:
    try:
        zmq.proxy(front, back)
    except zmq.ZMQError:  # the context terminated: the kernel exited
        pass


def main() -> int:
    conn = json.loads(Path(sys.argv[sys.argv.index("-f") + 1]).read_text())
    ctx: zmq.Context[Any] = zmq.Context()
    url = f"{conn.get('transport', 'tcp')}://{conn['ip']}:"
    threading.Thread(target=echo, args=(ctx, url + str(conn["hb_port"])), daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="proxy-relay-") as tmp:
        kernel, urls = start_kernel(conn, Path(tmp))
        signal.signal(signal.SIGTERM, lambda *_: kernel.terminate())
        for name, kind in CHANNELS:
            front = ctx.socket(kind)
            front.linger = 0
            front.bind(url + str(conn[f"{name}_port"]))
            back = ctx.socket(zmq.XSUB if name == "iopub" else zmq.DEALER)
            back.linger = 0
            if name in ("shell", "stdin"):  # one identity for both: input_request goes back on stdin
                back.routing_id = f"proxy-relay-{kernel.pid}".encode()
            back.connect(urls[name])
            threading.Thread(target=proxy, args=(front, back), name=f"proxy-{name}", daemon=True).start()
        kernel.wait()
    return kernel.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
