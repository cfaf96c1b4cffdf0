"""A kernel reached only through its member's ingress (real nginx, TLS + mTLS) and the pod's bridge.

What a deployment relies on: the direct path to the kernel's ports is closed; cells, output, interrupts and
stdin work through the tunnel with CurveZMQ end to end; a dropped tunnel reconnects by itself; the ingress
refuses a gateway without its client certificate and the bridge a request without the kernel's token.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from mlp_kernel.transport.tunnel import Tunnel

from .deploy import BRIDGE_PORT, INGRESS_PORT, KERNEL_PORTS, Member, reachable, sh

pytestmark = pytest.mark.timeout(180)


async def run(kc, code: str, timeout: float = 60, **kw) -> tuple[dict, str]:
    out: list[str] = []

    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

    reply = await kc.execute_interactive(code, output_hook=hook, timeout=timeout, **kw)
    return reply["content"], "".join(out)


def test_the_direct_path_is_closed(member: Member) -> None:
    # From the gateway's namespace: the ingress's TLS port answers; the pod's address has no route at all.
    assert reachable(member.edge_ip, INGRESS_PORT)
    assert (
        "mh" + member.tag not in sh("ip", "route", "get", member.pod_ip).stdout
    )  # not via the member's link
    for port in KERNEL_PORTS.values():
        assert not reachable(member.pod_ip, port, timeout=1, speaks="zmtp"), f"kernel port {port} answers"
    assert not reachable(member.pod_ip, BRIDGE_PORT, timeout=1, speaks="http"), "the bridge answers directly"
    # Even with a route the gateway could add, the edge does not forward (it is a proxy, not a router) ...
    sh("ip", "route", "add", f"{member.pod_ip}/32", "via", member.edge_ip)
    try:
        assert not reachable(member.pod_ip, BRIDGE_PORT, timeout=1, speaks="http")
    finally:
        sh("ip", "route", "del", f"{member.pod_ip}/32", "via", member.edge_ip, check=False)
    # The checks tell an answer from silence: from the edge (the ingress's namespace) the bridge answers.
    probe = (
        "import sys; sys.path.insert(0, %r); from tests.transport.deploy import reachable; "
        "sys.exit(0 if reachable(%r, %d, speaks=%r) else 1)"
    )
    root = str(Path(__file__).resolve().parents[2])
    assert sh(sys.executable, "-c", probe % (root, member.pod_ip, BRIDGE_PORT, "http"), ns=member.edge_ns)
    assert sh(
        sys.executable, "-c", probe % (root, "127.0.0.1", KERNEL_PORTS["shell"], "zmtp"), ns=member.pod_ns
    )
    # ... and in the member the kernel's ports are on the pod's loopback only: not even the edge gets one.
    probe_edge = probe % (root, member.pod_ip, KERNEL_PORTS["shell"], "zmtp")
    assert sh(sys.executable, "-c", probe_edge, ns=member.edge_ns, check=False).returncode == 1


async def test_cells_stdin_and_interrupts_through_the_ingress(through_ingress) -> None:
    member, tunnel, kc = through_ingress
    reply, out = await run(kc, "import os; print(6 * 7, os.getpid())")
    assert reply["status"] == "ok" and out.startswith("42 ")
    # A big output crosses in many WebSocket messages, in order.
    reply, out = await run(kc, "print('x' * 3_000_000)")
    assert reply["status"] == "ok" and out.count("x") == 3_000_000

    # stdin: the kernel's input_request reaches the client, the answer goes back.
    def answer(msg: dict) -> None:
        kc.input(f"hello {msg['content']['prompt'].strip()}")

    reply, out = await run(kc, "print(input('who?'))", allow_stdin=True, stdin_hook=answer)
    assert reply["status"] == "ok" and "hello who?" in out

    # An interrupt on the control channel stops a running cell.
    msg_id = kc.execute("import time; time.sleep(60)")
    await asyncio.sleep(1.5)
    interrupted = kc.session.msg("interrupt_request", {})
    kc.control_channel.send(interrupted)
    control = await kc.get_control_msg(timeout=30)
    assert control["msg_type"] == "interrupt_reply"
    start = time.monotonic()
    while True:
        shell = await kc.get_shell_msg(timeout=30)
        if shell["parent_header"].get("msg_id") == msg_id:
            break
    assert shell["content"]["status"] == "error" and shell["content"]["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - start < 20
    assert tunnel.opened >= 4 and tunnel.last_error == ""
    # Nothing of the token in what the ingress or the bridge logged.
    for name in ("nginx-access", "nginx-error"):
        assert member.token not in (member.root / f"{name}.log").read_text()
    assert member.token not in member.log("bridge")


async def test_a_dropped_tunnel_reconnects(through_ingress) -> None:
    member, tunnel, kc = through_ingress
    reply, _ = await run(kc, "state = 'kept'")
    assert reply["status"] == "ok"
    opened = tunnel.opened
    tunnel.drop()  # every WebSocket of the kernel closed at once, as a lost ingress would
    member.restart_bridge()  # and the pod's bridge restarted (the sidecar's restartPolicy: Always)
    deadline = time.monotonic() + 60
    # ZeroMQ reconnects by itself; the first request after the drop may be lost with it, or only its output:
    # the shell and iopub WebSockets reopen one by one, so a stream sent before iopub's is back never arrives.
    reply, out = {}, ""
    while not (reply.get("status") == "ok" and "kept" in out):
        assert time.monotonic() < deadline, (
            f"no reconnect (last reply {reply}, output {out!r}): {tunnel.last_error}\n{member.log('bridge')}"
        )
        try:
            reply, out = await run(kc, "print(state)", timeout=5)
        except TimeoutError:
            continue
    assert reply["status"] == "ok" and "kept" in out  # the same kernel, through new WebSockets
    assert tunnel.opened > opened


async def _open(member: Member, token: str | None, client_cert: bool = True, channel: str = "shell"):
    target = member.target(token=token, client_cert=client_cert)
    headers = {"Authorization": f"Bearer {target.token}"} if token != "" else {}
    request = HTTPRequest(f"{target.url}/{channel}", headers=headers, ssl_options=target.ssl_context())
    return await websocket_connect(request)


async def test_the_right_credentials_open_a_channel(member: Member) -> None:
    ws = await _open(member, None)  # the control case for the refusals below: same code, right credentials
    ws.close()


@pytest.mark.parametrize("token", ["", "wrong-token-of-the-right-length-0123456789"])
async def test_a_missing_or_wrong_token_is_refused(member: Member, token: str) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await _open(member, token)
    assert refused.value.code == 401
    assert "missing or wrong bridge token" in member.log("bridge")
    assert token not in member.log("bridge") or token == ""


async def test_a_gateway_without_its_client_certificate_is_refused(member: Member) -> None:
    with pytest.raises((HTTPClientError, ssl.SSLError, ConnectionError)) as refused:
        await _open(member, None, client_cert=False)
    if isinstance(refused.value, HTTPClientError):
        assert refused.value.code == 400  # nginx: "No required SSL certificate was sent"
    assert "missing or wrong bridge token" not in member.log("bridge")  # refused at the ingress already


async def test_the_tunnel_says_why_it_was_refused(member: Member) -> None:
    tunnel = Tunnel(member.target(token="wrong-token-of-the-right-length-0123456789"), channels=("shell",))
    port = tunnel.start()["shell"]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 15) == b""  # closed: ZeroMQ will retry
        writer.close()
        assert "401" in tunnel.last_error and member.token not in tunnel.last_error
        assert "wrong-token" not in repr(tunnel.target)
    finally:
        tunnel.close()
