"""Making a pre-started kernel a user's: one silent execute that sets its HMAC key (issue 18 §3).

A warm-pool kernel (local ``local_pool.py``, Kubernetes ``kubernetes/pool.py``) is started before anyone
asks for it, so with a key of the pool's own. The gateway's relay forwards frames untouched, signed with the
user's key (``gateway/relay.py``), so a claimed kernel must sign and check with that key. The claim connects
with the pool's key and runs ``_CLAIM_SRC``: it sets ``get_ipython().kernel.session.key`` (jupyter_client's
Session recomputes its HMAC when the key changes), after the working directory, the environment and, where the
kernel shares the gateway's machine, a watch that ends the kernel when the gateway's process is gone. The
reply comes signed with the new key; the pool's key is worthless from then on. The request is silent (no
``execute_input`` on iopub, no history) and the code is constant: the values travel as one JSON string
literal, never spliced into the source. Nothing of the user reaches the kernel before the claim succeeded.

The claim is on the path of the user's first cell, so it talks to the kernel over one DEALER socket on the
shell port (CurveZMQ where the connection has a server key) with a ``Session`` of its own: a
``BlockingKernelClient`` would start five channels and an I/O thread with its own event loop for one
request (measured ~20 ms of the ~30 ms claim on the development machine, docs/benchmarks.md). The wait for
the reply is a ``poll`` on that socket: no fixed interval. ``wait_ready`` (off the path: a pool kernel
starting) keeps the client, and also runs ``prime`` there: user-independent code the claimed kernel would
otherwise run on the path (the snapshot agent compiled, ``snapshot/codegen.py``).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import zmq

# The claim, run silently in the pool kernel in a namespace of its own: directory, environment, a watch on
# the claiming gateway's process where it shares the machine (the kernel ends within a second of its death),
# and last the user's key.
_CLAIM_SRC = """
import os, sys, threading, time

sys._mlp_pool_claimed = True
if ARGS.get("cwd"):
    os.chdir(ARGS["cwd"])
os.environ.update(ARGS.get("env") or {})

def watch(owner=ARGS.get("owner")):
    while os.path.exists("/proc/%d" % owner):
        time.sleep(1)
    os._exit(1)

if ARGS.get("owner"):
    threading.Thread(target=watch, daemon=True).start()
get_ipython().kernel.session.key = ARGS["key"].encode()
"""


def _claim_code(args: dict[str, Any]) -> str:
    values = f"__import__('json').loads({json.dumps(args)!r})"  # a string literal: data, never source
    return f"exec({_CLAIM_SRC!r}, {{'get_ipython': get_ipython, 'ARGS': {values}}})"


def _client(conn: dict[str, Any]) -> Any:
    from jupyter_client import BlockingKernelClient

    c = BlockingKernelClient()
    c.load_connection_info(conn)  # type: ignore[arg-type]
    c.start_channels()
    return c


def wait_ready(conn: dict[str, Any], timeout: float, prime: str = "") -> None:
    """Until the kernel answers ``kernel_info`` with its pool key (raises on timeout); then, when given, run
    ``prime`` silently in it (raises when it fails)."""
    c = _client(conn)
    deadline = time.monotonic() + timeout
    try:
        asked: set[str] = set()
        while True:  # not wait_for_ready: it gives up when the heartbeat has not started beating yet
            asked.add(c.kernel_info())
            with contextlib.suppress(Exception):  # queue.Empty until the kernel is up
                reply = c.get_shell_msg(timeout=1.0)
                if reply["parent_header"].get("msg_id") in asked:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no kernel_info reply in {timeout:g} s")
        if prime:
            msg_id = c.execute(prime, silent=True, store_history=False)
            _check(_reply_to(lambda t: c.get_shell_msg(timeout=t), msg_id, deadline), "priming")
    finally:
        c.stop_channels()


def rekey(conn: dict[str, Any], args: dict[str, Any], timeout: float) -> None:
    """Run the claim in the kernel (module docstring) and wait for its reply, signed with the new key."""
    from jupyter_client.session import Session

    session = Session(
        key=str(conn["key"]).encode(), signature_scheme=conn.get("signature_scheme", "hmac-sha256")
    )
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    try:
        _curve(sock, conn)
        sock.connect(_url(conn, "shell"))
        content = {"code": _claim_code(args), "silent": True, "store_history": False, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}  # fmt: skip
        msg = session.msg("execute_request", content)
        session.send(sock, msg)
        msg_id = msg["header"]["msg_id"]
        session.key = args["key"].encode()  # the reply comes signed with the user's key
        deadline = time.monotonic() + timeout

        def receive(wait_s: float) -> dict[str, Any]:
            if not sock.poll(int(max(0.0, wait_s) * 1000)):
                raise TimeoutError(f"no reply to the claim in {timeout:g} s")
            _, frames = session.feed_identities(sock.recv_multipart())
            return session.deserialize(frames)  # raises on a signature not made with the user's key

        _check(_reply_to(receive, msg_id, deadline), "claim")
    finally:
        sock.close(linger=0)


def _reply_to(receive: Any, msg_id: str, deadline: float) -> dict[str, Any]:
    """The reply to ``msg_id`` (``receive(seconds)``: the next shell message, or raises); others skipped."""
    while True:
        reply: dict[str, Any] = receive(deadline - time.monotonic())
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply
        if time.monotonic() > deadline:
            raise TimeoutError("no reply in time")


def _check(reply: dict[str, Any], what: str) -> None:
    if reply["content"].get("status") != "ok":
        raise RuntimeError(f"the {what} failed in the kernel: {reply['content'].get('ename')}")


def _url(conn: dict[str, Any], channel: str) -> str:
    """The channel's ZeroMQ address, as jupyter_client makes it."""
    port = int(conn[f"{channel}_port"])
    if conn.get("transport", "tcp") == "tcp":
        return f"tcp://{conn['ip']}:{port}"
    return f"{conn['transport']}://{conn['ip']}-{port}"


def _curve(sock: Any, conn: dict[str, Any]) -> None:
    """CurveZMQ to a kernel with a server key, as jupyter_client does (the connection's keypair when it has
    the secret half, else a fresh client keypair)."""
    server = conn.get("curve_publickey")
    if not server:
        return
    public, secret = str(server).encode(), str(conn.get("curve_secretkey") or "").encode()
    if not secret:
        public, secret = zmq.curve_keypair()
    sock.curve_secretkey, sock.curve_publickey, sock.curve_serverkey = secret, public, str(server).encode()
