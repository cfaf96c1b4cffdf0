"""Frames from anyone who reaches the kernel's ports, with or without the key, against a real gateway.

Each of these once ended the task that serves a channel (after which ``%gpu`` cells, interrupts and shutdown
got no reply, and plain cells hung behind them) or, sent before the gateway bound its ports, the whole
process. Now they are dropped and logged, and the kernel keeps answering everything.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import zmq
from jupyter_client import AsyncKernelClient

from mlp_kernel.gateway.wire import DELIM, Signer
from tests.ports import free_port

from .conftest import ROOT, text_of
from .test_lifecycle import alive, wait_until


def bad_frames(key: bytes) -> list[list[bytes]]:
    """Unsigned and validly signed junk; a DEALER's frames (the ROUTER adds the identity)."""
    signer = Signer(key)

    def signed(header: bytes, content: bytes = b"{}") -> list[bytes]:
        parts = [header, b"{}", b"{}", content]
        return [DELIM, signer.sign(parts), *parts]

    return [
        [DELIM, b"x"],
        [DELIM],
        [b"no delimiter"],
        [DELIM, b"sig", b"[]", b"{}", b"{}", b"{}"],  # unsigned, header not an object
        [DELIM, b"sig", b"\xff", b"{}", b"{}", b"{}"],
        [DELIM, b"sig", b"[" * 50_000, b"{}", b"{}", b"{}"],
        signed(b"[]"),  # the right key, header []
        signed(b'{"msg_type": "execute_request", "msg_id": "m1"}', b"[]"),  # content not an object
        signed(b'{"msg_type": "interrupt_request", "msg_id": "m2"}', b"5"),
        signed(b'{"msg_type": "shutdown_request", "msg_id": "m3"}', b"[" * 50_000),
        signed(b'{"msg_type": "execute_request", "msg_id": "m4"}', b'{"code": 5}'),  # code not a string
    ]


def send_all(ctx: zmq.Context, url_of, key: bytes) -> list[zmq.Socket]:
    socks = []
    for channel in ("shell", "control"):
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 1000
        sock.connect(url_of(channel))
        for frames in bad_frames(key):
            sock.send_multipart(frames)
        socks.append(sock)
    return socks


async def control_request(kc, msg_type: str, content: dict, timeout: float = 30) -> dict:
    msg = kc.session.msg(msg_type, content)
    kc.control_channel.send(msg)
    while True:
        reply = await kc.control_channel.get_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            return reply


async def test_malformed_and_unsigned_frames_are_dropped_and_the_kernel_keeps_answering(start_kernel):
    k = await start_kernel()
    info = k.km.get_connection_info()
    ctx = zmq.Context()
    socks = send_all(ctx, lambda ch: f"tcp://{info['ip']}:{info[f'{ch}_port']}", k.km.session.key)
    try:
        await asyncio.sleep(1.0)  # let the gateway take them all
        reply, outputs = await k.run("%gpu", timeout=30)
        assert reply["content"]["status"] == "ok", text_of(outputs)
        reply, _ = await k.run("import time", timeout=90)  # starts a GPU kernel
        assert reply["content"]["status"] == "ok"
        socks += send_all(ctx, lambda ch: f"tcp://{info['ip']}:{info[f'{ch}_port']}", k.km.session.key)
        running = asyncio.ensure_future(k.run("time.sleep(60)", timeout=60))
        await asyncio.sleep(1.5)
        reply = await control_request(k.kc, "interrupt_request", {})
        assert reply["content"]["status"] == "ok"
        reply, _ = await running
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        reply, outputs = await k.run("%gpu\n'still here'", timeout=30)
        assert "still here" in text_of(outputs)
        reply = await control_request(k.kc, "shutdown_request", {"restart": False})
        assert reply["msg_type"] == "shutdown_reply" and reply["content"]["status"] == "ok"
        assert await wait_until(lambda: not alive(k.gateway_pid), 15)
    finally:
        for sock in socks:
            sock.close(linger=0)
        ctx.term()


def write_connection_file(path: Path, key: bytes) -> dict:
    """A tcp connection file on free loopback ports, for a gateway started by hand."""
    names = ("shell", "control", "stdin", "iopub", "hb")
    conn = {f"{n}_port": p for n, p in zip(names, [free_port("127.0.0.1") for _ in names], strict=True)}
    conn.update(ip="127.0.0.1", transport="tcp", key=key.decode(), signature_scheme="hmac-sha256")
    path.write_text(json.dumps(conn))
    return conn


async def test_frames_queued_before_the_gateway_binds_are_dropped_at_start_up(tmp_path: Path):
    """The early responder answers kernel_info while the gateway imports; it once read ``msg_type`` of an
    unsigned message before checking its signature, and a header that is not an object ended the process."""
    key = b"start-up-key"
    conn_file = tmp_path / "kernel-early.json"
    conn = write_connection_file(conn_file, key)
    ctx = zmq.Context()
    # queued in the DEALERs: nothing listens yet
    socks = send_all(ctx, lambda ch: f"tcp://127.0.0.1:{conn[f'{ch}_port']}", key)
    env = {
        **os.environ,
        "MLP_KERNEL_CONFIG": json.dumps(
            {"kernel_id": "early", "backend": "local", "kernelspec_dir": str(ROOT / "kernelspecs/gpu-auto")}
        ),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlp_kernel.gateway", "-f", str(conn_file)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    kc = AsyncKernelClient(connection_file=str(conn_file))
    kc.load_connection_file()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        reply = await kc.execute("%gpu", reply=True, timeout=30)
        assert reply["content"]["status"] == "ok"
        assert proc.poll() is None, "the gateway must survive frames queued before it bound its ports"
        kc.shutdown()
        assert proc.wait(timeout=20) == 0
        log = proc.stderr.read() if proc.stderr else ""
        assert "dropping a message on shell" in log and "dropping a message on control" in log, log
    finally:
        kc.stop_channels()
        for sock in socks:
            sock.close(linger=0)
        ctx.term()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_signed_requests_with_values_of_the_wrong_type_still_get_a_reply_and_an_idle(start_kernel):
    """With the key, a client (or a bug in one) can send ``"n": "lots"``: the handler's error becomes an
    error reply, not a request left waiting forever with the kernel's status stuck at busy."""
    k = await start_kernel()
    for msg_type, content in [
        ("history_request", {"hist_access_type": "tail", "n": "lots"}),
        ("complete_request", {"code": "x", "cursor_pos": "end"}),  # no GPU kernel yet: the gateway answers
    ]:
        msg = k.kc.session.msg(msg_type, content)
        k.kc.shell_channel.send(msg)
        reply = await k.kc.shell_channel.get_msg(timeout=10)
        assert reply["parent_header"]["msg_id"] == msg["header"]["msg_id"]
        assert reply["content"]["status"] == "error", reply["content"]
    comm_id = "c-junk"
    for msg_type, content in [
        ("comm_open", {"comm_id": comm_id, "target_name": "mlp_kernel.status", "data": {}}),
        ("comm_msg", {"comm_id": comm_id, "data": "not an object"}),
    ]:
        msg = k.kc.session.msg(msg_type, content)
        k.kc.shell_channel.send(msg)
        states = []
        while "idle" not in states:
            m = await k.kc.get_iopub_msg(timeout=10)
            if m["parent_header"].get("msg_id") == msg["header"]["msg_id"] and m["msg_type"] == "status":
                states.append(m["content"]["execution_state"])
        assert states == ["busy", "idle"]
    reply, outputs = await k.run("%gpu", timeout=30)
    assert reply["content"]["status"] == "ok", text_of(outputs)
