"""Dropped-frame warnings are rate-limited: a flood of junk frames must not flood the gateway's log.

Anyone who reaches a kernel port can send frames as fast as the network carries them; each dropped one was a
log line (2,000 junk frames, 2,000 lines). Now the first few per channel and interval are logged in full,
the rest are counted and summed up in one line, and the kernel keeps answering throughout.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import zmq
from jupyter_client import AsyncKernelClient

from mlp_kernel.gateway.wire import DELIM, DropLog

from .conftest import ROOT
from .test_wire_attacks import write_connection_file

JUNK = 2000


def test_first_burst_in_full_then_counted_then_one_summary_per_interval():
    lines: list[str] = []
    drops = DropLog(lambda fmt, *args: lines.append(fmt % args), burst=3, interval=0.2)
    for i in range(100):
        drops("shell", "dropping %d", i)
    drops("control", "dropping on control")  # its own budget: a flood on shell hides nothing else
    assert lines[:3] == ["dropping 0", "dropping 1", "dropping 2"]
    assert "only counted" in lines[3] and lines[4:] == ["dropping on control"]
    time.sleep(0.25)
    drops("shell", "dropping again")
    assert lines[5].startswith("dropped 97 more messages on shell") and lines[6] == "dropping again"


async def test_a_flood_of_junk_frames_leaves_a_bounded_log_and_a_kernel_that_answers(tmp_path: Path):
    conn_file = tmp_path / "kernel-flood.json"
    conn = write_connection_file(conn_file, b"flood-key")
    config = {"kernel_id": "flood", "backend": "local", "kernelspec_dir": str(ROOT / "kernelspecs/gpu-auto")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlp_kernel.gateway", "-f", str(conn_file)],
        env={**os.environ, "MLP_KERNEL_CONFIG": json.dumps(config)},
        stderr=subprocess.PIPE,
        text=True,
    )
    kc = AsyncKernelClient(connection_file=str(conn_file))
    kc.load_connection_file()
    kc.start_channels()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    try:
        await kc.wait_for_ready(timeout=60)
        sock.connect(f"tcp://127.0.0.1:{conn['shell_port']}")
        for i in range(JUNK):
            sock.send_multipart([DELIM, b"sig", f"junk {i}".encode(), b"{}", b"{}", b"{}"])
        await asyncio.sleep(1.0)
        reply = await kc.execute("%gpu", reply=True, timeout=30)
        assert reply["content"]["status"] == "ok"
        kc.shutdown()
        assert proc.wait(timeout=20) == 0
        log = proc.stderr.read() if proc.stderr else ""
        dropped = [line for line in log.splitlines() if "dropping a message on shell" in line]
        # the early responder and the gateway each log at most one burst (10) and a notice
        assert 1 <= len(dropped) <= 20, log[-2000:]
        assert len(log.splitlines()) < 60, log[-2000:]
    finally:
        kc.stop_channels()
        sock.close(linger=0)
        ctx.term()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
