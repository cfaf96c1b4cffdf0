"""CurveZMQ, on by default (direct pod-IP mode): the remote kernel encrypts its channels; the secret key stays
in the Secret."""

from __future__ import annotations

import base64
import json

import pytest
import zmq
import zmq.asyncio
from jupyter_client.session import Session

from mlp_kernel.backends.base import Phase

from .e2e import KEY, launch_all, spec

pytestmark = pytest.mark.timeout(240)


async def kernel_info(remote, *, curve: bool, timeout_ms: int = 5000) -> dict | None:
    ctx = zmq.asyncio.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.sndtimeo = timeout_ms  # a refused handshake leaves the DEALER without a peer: send would block
    if curve:
        public, secret = zmq.curve_keypair()  # the gateway's own keypair; only the server key is shared
        sock.curve_publickey, sock.curve_secretkey = public, secret
        sock.curve_serverkey = remote.handle["curve_publickey"].encode()
    sock.connect(remote.url("shell"))
    session = Session(key=KEY.encode(), signature_scheme="hmac-sha256")
    try:
        try:
            session.send(sock, "kernel_info_request", {})
        except zmq.Again:
            return None
        if not await sock.poll(timeout_ms):
            return None
        _idents, msg = session.feed_identities(await sock.recv_multipart())
        return session.deserialize(msg)
    finally:
        sock.close()


@pytest.fixture
def curve_backend(kube_members, test_policy):
    from .conftest import make_backend

    backend = make_backend(kube_members, test_policy, plain_clients=False)  # the default must encrypt
    yield backend
    backend.close()


async def test_curve_kernel_answers_curve_clients_only(curve_backend, kube_members) -> None:
    events = await launch_all(curve_backend, spec())
    assert events[-1].phase == Phase.CONNECTED
    remote = events[-1].remote
    reply = None
    for _ in range(30):  # CONNECTED means the container runs; a cold interpreter may still be importing
        reply = await kernel_info(remote, curve=True, timeout_ms=2000)
        if reply is not None:
            break
    assert reply is not None and reply["content"]["status"] == "ok"
    assert await kernel_info(remote, curve=False, timeout_ms=1500) is None  # plaintext clients get nothing

    secret = kube_members.private.find("v1", "Secret", remote.handle["secret"], "jupyter")
    info = json.loads(base64.b64decode(secret["data"]["connection.json"]))
    assert info["curve_publickey"] == remote.handle["curve_publickey"]
    pod = kube_members.private.find("v1", "Pod", remote.handle["pod"], "jupyter")
    assert info["curve_secretkey"] not in json.dumps(pod)
    assert info["curve_secretkey"] not in json.dumps(remote.handle)
    await curve_backend.release(remote)
