"""TCP ports for the kernels the tests start, taken below the ephemeral range.

jupyter_client picks a kernel's ports by binding port 0 and closing the socket; the kernel binds them a
moment later. A port from the ephemeral range can meanwhile become the local end of any outgoing connection
(an HTTP request to the test API, a client's connection on another pytest-xdist worker), and the kernel then
dies with "Address already in use" (seen in CI: a plain kernel of tests/snapshot/test_torch.py). Nothing
takes a port below that range unless asked to, and each worker draws from its own slice of it, so a port one
worker picked (free when probed, bound only when its kernel starts) is never picked by another meanwhile.

``install()`` (called by tests/conftest.py) makes jupyter_client's port cache draw from here in the pytest
process: every kernel a ``KernelManager`` starts there, plain ones and GPU (auto)'s gateways alike. The
servers the tests start (the real control plane, the S3 store, Jupyter servers, JupyterHub) take their own
ports from ``free_port`` too: two ports drawn by binding 0 one after the other can even be the same one (the
S3 store's filer and volume server were given one port in a CI run). Servers the tests start as
subprocesses still pick their kernels' ports themselves.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

LOW = 20000
_CHOSEN: set[int] = set()
_PICK = random.Random(os.urandom(8))


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux: ``ip_local_port_range``)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def worker_slice(low: int, high: int) -> tuple[int, int]:
    """This pytest-xdist worker's share of ``[low, high)`` (all of it outside xdist)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2:
        return low, high
    size = (high - low) // count
    start = low + int(worker[2:]) * size
    return start, start + size


def free_port(ip: str = "0.0.0.0") -> int:
    """A port of this worker's slice below the ephemeral range, free on ``ip`` now and never handed out
    before in this process (a test may still be using one it was given)."""
    low, high = worker_slice(LOW, ephemeral_low())
    while True:
        port = _PICK.randrange(low, high)
        if port in _CHOSEN:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((ip, port))
            except OSError:
                continue
        _CHOSEN.add(port)
        return port


def install() -> None:
    """Make jupyter_client's ``LocalPortCache`` (what a ``KernelManager`` uses for tcp kernels) draw from
    ``free_port``."""
    from jupyter_client.connect import LocalPortCache

    def find_available_port(self: LocalPortCache, ip: str) -> int:
        port = free_port(ip or "0.0.0.0")
        self.currently_used_ports.add(port)
        return port

    LocalPortCache.find_available_port = find_available_port  # type: ignore[method-assign]
