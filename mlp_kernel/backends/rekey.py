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
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

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


def wait_ready(conn: dict[str, Any], timeout: float) -> None:
    """Until the kernel answers ``kernel_info`` with its pool key (raises on timeout)."""
    c = _client(conn)
    deadline = time.monotonic() + timeout
    try:
        asked: set[str] = set()
        while True:  # not wait_for_ready: it gives up when the heartbeat has not started beating yet
            asked.add(c.kernel_info())
            with contextlib.suppress(Exception):  # queue.Empty until the kernel is up
                reply = c.get_shell_msg(timeout=1.0)
                if reply["parent_header"].get("msg_id") in asked:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"no kernel_info reply in {timeout:g} s")
    finally:
        c.stop_channels()


def rekey(conn: dict[str, Any], args: dict[str, Any], timeout: float) -> None:
    """Run the claim in the kernel (module docstring) and wait for its reply, signed with the new key."""
    c = _client(conn)
    try:
        msg_id = c.execute(_claim_code(args), silent=True, store_history=False)
        c.session.key = args["key"].encode()  # the reply comes signed with the user's key
        deadline = time.monotonic() + timeout
        while True:
            reply = c.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        if reply["content"].get("status") != "ok":
            raise RuntimeError(f"the claim failed in the kernel: {reply['content'].get('ename')}")
    finally:
        c.stop_channels()
