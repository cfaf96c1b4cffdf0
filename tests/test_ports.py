"""tests/ports.py: the kernels the tests start take their ports below the ephemeral range."""

from __future__ import annotations

from jupyter_client.connect import LocalPortCache
from jupyter_client.manager import KernelManager

from tests import ports


def test_free_ports_are_below_the_ephemeral_range_in_this_workers_slice():
    low, high = ports.worker_slice(ports.LOW, ports.ephemeral_low())
    picked = [ports.free_port() for _ in range(50)]
    assert len(set(picked)) == 50
    assert all(low <= p < high for p in picked)


def test_worker_slices_do_not_overlap(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    slices = []
    for n in range(3):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{n}")
        slices.append(ports.worker_slice(20000, 32768))
    assert slices == [(20000, 24256), (24256, 28512), (28512, 32768)]


def test_a_kernel_started_by_a_kernel_manager_binds_ports_from_here():
    """A real tcp kernel, started the way the tests start plain kernels and gateways: its connection file's
    ports come from the port cache installed by tests/conftest.py (without it: the ephemeral range), and
    the kernel answers on them."""
    km = KernelManager()
    km.start_kernel()
    try:
        info = km.get_connection_info()
        used = [info[k] for k in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")]
        assert all(ports.LOW <= p < ports.ephemeral_low() for p in used), used
        assert set(used) <= LocalPortCache.instance().currently_used_ports
        client = km.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
        finally:
            client.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
