"""GPU (auto) under a real JupyterHub, end to end (issue 15, "JupyterHub, end to end").

alice signs up and logs in through the hub's pages in Chromium, the hub spawns her CPU-only single-user
server, she opens a GPU (auto) notebook through the hub's URL and runs cells: a GPU kernel (embedded
``local`` backend) starts under her identity, which the server took from ``JUPYTERHUB_USER``, and her team,
which the sample ``pre_spawn_hook`` took from the hub group ``team-vision``. bob, logged in on his own
server, can neither see nor reach that kernel: the hub's access control answers his browser and his token
with 403 (404 for alice's hub record), while alice's token reaches the same URLs (so the refusals are about
bob, not about a broken URL).
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import pytest

from .conftest import KERNELSPEC, Hub
from .lab import open_notebook, run_cell, sign_up_and_log_in, write_notebook

NOTEBOOK = "gpu.ipynb"
CELLS = ["x = 6 * 7\nprint('answer', x)", "%gpu", "%gpu release"]


def _gateway(kernel_id: str) -> psutil.Process:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "mlp_kernel.gateway" in cmdline and kernel_id in cmdline:
            return proc
    raise LookupError(f"no GPU (auto) gateway process for kernel {kernel_id}")


def _websocket_status(url: str, token: str) -> int:
    """The HTTP status a websocket handshake on ``url`` gets with ``token`` (101 when it opens).

    In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    """
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    async def handshake() -> int:
        try:
            conn = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
        except HTTPClientError as err:
            return err.code
        conn.close()
        return 101

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, handshake()).result(timeout=60)


@pytest.mark.timeout(600)  # two logins and spawns, a GPU kernel, a release: about 35 s here, idle
def test_alice_runs_a_gpu_cell_as_herself_and_bob_can_neither_see_nor_reach_it(
    hub: Hub, browser: Any
) -> None:
    write_notebook(hub.home("alice") / NOTEBOOK, KERNELSPEC, CELLS)
    alice = browser.new_context(viewport={"width": 1400, "height": 900})
    page = alice.new_page()
    sign_up_and_log_in(page, hub, "alice")

    # A GPU (auto) notebook through the hub's URL; its cells run on a GPU kernel behind alice's gateway.
    open_notebook(page, hub, "alice", NOTEBOOK)
    assert "answer 42" in run_cell(page, 0, "answer 42")
    status_text = run_cell(page, 1, "GPU (auto): running")
    assert "user:   alice" in status_text, status_text

    # The kernel behind the notebook, as alice's own API token sees it.
    alice_token = hub.token_for("alice")
    code, sessions = hub.api("GET", "/user/alice/api/sessions", alice_token)
    assert code == 200, sessions
    (session,) = [s for s in sessions if s["path"].endswith(NOTEBOOK)]
    kernel_id = session["kernel"]["id"]
    assert session["kernel"]["name"] == KERNELSPEC

    # Its identity: the server's JUPYTERHUB_USER and the hook's team, never anything the browser sent.
    status = json.loads(
        (hub.user_dir("alice", "runtime") / f"mlp-kernel-status-{kernel_id}.json").read_text()
    )
    assert (status["user"], status["state"]) == ("alice", "running"), status
    env = _gateway(kernel_id).environ()
    assert (env["JUPYTERHUB_USER"], env["KERNEL_USERNAME"], env["KERNEL_TEAM"]) == (
        "alice",
        "alice",
        "vision",
    )
    assert env["MLP_KERNEL_USER_GROUPS"] == "team-vision"
    # Released, its variables are carried over in alice's snapshot directory (named by user, then kernel).
    run_cell(page, 2, "released")
    snapshots = hub.user_dir("alice", "data") / "mlp-kernel" / "snapshots"
    assert [p.name for p in snapshots.iterdir()] == ["alice"], list(snapshots.iterdir())
    assert (snapshots / "alice" / kernel_id).is_dir(), list((snapshots / "alice").iterdir())

    # bob, logged in on his own server, in his own browser.
    bob = browser.new_context(viewport={"width": 1400, "height": 900})
    bob_page = bob.new_page()
    sign_up_and_log_in(bob_page, hub, "bob")
    response = bob_page.goto(f"{hub.url}/user/alice/lab/tree/{NOTEBOOK}")
    assert response is not None
    assert response.status == 403, (response.status, bob_page.url)
    assert bob_page.locator(".jp-LabShell").count() == 0

    # bob's token: alice's server refuses every kernel URL; the hub does not even confirm alice exists.
    bob_token = hub.token_for("bob")
    for path in ("/api/kernels", f"/api/kernels/{kernel_id}", "/api/sessions", f"/api/contents/{NOTEBOOK}"):
        assert hub.api("GET", f"/user/alice{path}", bob_token)[0] == 403, path
        assert hub.api("GET", f"/user/alice{path}", alice_token)[0] == 200, path  # the URL itself is fine
    assert hub.api("DELETE", f"/user/alice/api/kernels/{kernel_id}", bob_token)[0] == 403
    assert hub.api("GET", "/hub/api/users/alice", bob_token)[0] == 404
    ws = f"{hub.url.replace('http', 'ws', 1)}/user/alice/api/kernels/{kernel_id}/channels"
    assert _websocket_status(ws, bob_token) == 403
    assert _websocket_status(ws, alice_token) == 101

    # bob's own server is a separate process with its own kernels and status files: none of alice's.
    code, kernels = hub.api("GET", "/user/bob/api/kernels", bob_token)
    assert code == 200, kernels
    assert kernel_id not in {k["id"] for k in kernels}
    assert not list(hub.user_dir("bob", "runtime").glob(f"*{kernel_id}*"))
    alice.close()
    bob.close()


def test_the_hook_refuses_a_user_in_two_teams(hub: Hub) -> None:
    """carol is in team-vision and team-nlp: the sample pre_spawn_hook stops her spawn, saying why."""
    code, body = hub.api("POST", "/hub/api/users/carol")
    assert code in (201, 409), body
    code, body = hub.api("POST", "/hub/api/users/carol/server")
    assert code == 403, body
    message = body.get("message", "") if isinstance(body, dict) else str(body)
    assert "carol is in 2 team groups (team-nlp, team-vision)" in message, message
    assert "a server bills one team" in message
    assert hub.api("GET", "/hub/api/users/carol")[1]["servers"] == {}
