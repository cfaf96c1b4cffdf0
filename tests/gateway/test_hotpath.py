"""The gateway's C hot path (``_hotpath.c``): its screen decides as ``GatewayKernel.fast_forward`` would,
or hands the message back to Python, which then decides as it always did.

The building blocks against Python's own (HMAC-SHA256 against ``hmac``, the header's ``msg_type`` against
``json``), then the pump with real ZeroMQ sockets (``test_pump.Rig``): a signed request that passes goes to
the remote kernel without Python's hook and is booked as if the hook had passed it; everything the screen
cannot pass (a ``%gpu`` cell, a ``\\u`` escape, a bad signature, a type it does not know, ``fast`` cleared)
reaches Python's hook or the loop, and never the remote kernel unscreened. The rest of the gateway's suite
(the upstream kernel protocol tests among it) runs through this path too: the gateway uses it where built.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jupyter_client.session import Session as ClientSession

from mlp_kernel.gateway import pump as pump_module
from mlp_kernel.gateway.kernel import C_FORWARDABLE, LOOP_ONLY
from mlp_kernel.gateway.wire import Message, Session, Signer

from .test_pump import Rig

KEY = b"5b8f3c2e-hot-path-test-key"
hot = pump_module.hotpath()


def test_the_hot_path_is_built():
    """It must be there wherever the suite runs (``.ci/run`` installs the package, which compiles it): a
    missing build would leave the C path untested while everything passed on the Python one."""
    assert hot is not None, (
        "mlp_kernel/gateway/_hotpath.c is not built: `pip install -e .` compiles it (it needs a C compiler)"
    )


@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=200), data=st.binary(max_size=400))
def test_hmac_sha256_matches_pythons(key: bytes, data: bytes) -> None:
    assert hot.hmac_sha256_hex(key, data) == hmac.new(key, data, hashlib.sha256).hexdigest().encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(
    header=st.dictionaries(st.sampled_from(["msg_id", "msg_type", "date", "x\\", 'q"', "é"]), json_values),
    msg_type=st.none() | st.text(max_size=20),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")]),
    ascii_only=st.booleans(),
)
def test_the_msg_type_read_is_jsons_or_none(header, msg_type, separators, ascii_only) -> None:
    if msg_type is not None:
        header["msg_type"] = msg_type
    raw = json.dumps(header, separators=separators, ensure_ascii=ascii_only).encode()
    got = hot.msg_type(raw)
    if got is not None:
        assert json.loads(raw)["msg_type"] == got.decode()
    elif isinstance(msg_type, str) and msg_type.isalnum() and msg_type.isascii():
        # a plain type in a header whose other keys need no escapes is always read
        assert any("\\" in json.dumps(k) for k in header), raw


def test_the_msg_type_of_headers_clients_send_is_read() -> None:
    session = ClientSession(key=KEY)
    for t in C_FORWARDABLE:
        msg = session.msg(t, {})
        assert hot.msg_type(session.pack(msg["header"])) == t.encode()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"msg_type":"execute_request","msg_type":"shutdown_request"}',  # json.loads takes the last one
        b'{"msg_t\\u0079pe":"shutdown_request","msg_type":"execute_request"}',
        b'{"msg_type":"execute_\\u0072equest"}',
        b'{"msg_type":"execute_request"',
        b'["msg_type","execute_request"]',
        b'{"msg_type":1}',
        b'{"a":{"msg_type":"execute_request"}}',
    ],
)
def test_a_header_it_cannot_read_with_certainty_is_left_to_python(raw: bytes) -> None:
    assert hot.msg_type(raw) is None


def test_nothing_the_loop_must_see_is_forwardable() -> None:
    assert not LOOP_ONLY & set(C_FORWARDABLE)
    assert not any(t.startswith("comm_") for t in C_FORWARDABLE)  # the status comm is the loop's


class HotRig(Rig):
    """The pump with C screening the client's requests (signed with ``KEY``); hooks record what Python saw."""

    def __init__(self, key: bytes = KEY) -> None:
        super().__init__(hot=True, c_requests=(key, (b"execute_request", b"complete_request")))
        self.booked: list[Message] = []
        self.wire = Session(Signer(key))

    def fast_forward(self, channel: str, frames: list[bytes]) -> Any:
        self.events.append(("decide", frames[-1][:12]))
        return None  # Python's hook lets nothing through here: what reaches the remote went through C

    def after_forward(self, channel: str, parsed: Any) -> None:
        self.booked.append(parsed)

    def request(self, msg_type: str, content: dict[str, Any]) -> list[bytes]:
        return self.wire.serialize(msg_type, content)

    async def nothing_at_remote(self) -> None:
        await asyncio.sleep(0.3)
        assert not self.remote["shell"].poll(0), "a request reached the remote kernel unscreened"


@pytest.fixture
async def hrig():
    r = HotRig()
    await asyncio.sleep(0.2)
    yield r
    await r.close()


async def test_a_request_that_passes_goes_to_the_remote_without_python_and_is_booked(hrig):
    sent = hrig.request("execute_request", {"code": "x = 1", "silent": False})
    hrig.user.send_multipart(sent)
    got = await hrig.recv(hrig.remote["shell"])
    assert got[0] == b"gw" and got[2:] == sent  # untouched, after the gateway's and the client's identities
    hrig.remote["shell"].send_multipart([*got[:-1], b'{"status":"ok"}'])  # the reply, to that client
    reply = await hrig.recv(hrig.user)
    assert reply[-1] == b'{"status":"ok"}'
    await hrig.pump.flush()
    assert not [e for e in hrig.events if e[0] == "decide"]  # Python's screen never ran
    assert [m.msg_type for m in hrig.booked] == ["execute_request"]
    assert hrig.booked[0].msg_id == json.loads(sent[2])["msg_id"]
    assert ("reply", b'{"st') in hrig.events  # the reply was booked too
    stats = hrig.pump.c_stats
    assert stats["forwarded_requests"] == 1 and stats["forwarded_replies"] == 1, stats


@pytest.mark.parametrize(
    "case",
    ["gpu magic", "escaped magic", "bad signature", "type it does not know", "not a message", "fast cleared"],
)
async def test_what_the_screen_cannot_pass_goes_to_python_and_never_to_the_remote(hrig, case):
    msg_type, content = "execute_request", {"code": "x = 1"}
    if case == "gpu magic":
        content = {"code": "%gpu a100\nx = 1"}
    elif case == "type it does not know":
        msg_type = "comm_msg"
    if case == "fast cleared":
        hrig.pump.fast = False
    sent = hrig.request(msg_type, content)
    if case == "escaped magic":  # "%" as a JSON escape: C does not decode escapes, so it cannot tell
        sent = hrig.wire.serialize(msg_type, {})[:-1] + [b'{"code":"\\u0025gpu release"}']
        sent[1] = hrig.wire.signer.sign(sent[2:6])
    elif case == "bad signature":
        sent[1] = b"0" * 64
    elif case == "not a message":
        sent = [b"no delimiter", b"{}"]
    hrig.user.send_multipart(sent)
    await hrig.until(lambda: hrig.handed)  # the loop got it (Python's hook said no, or fast is off)
    assert hrig.handed[0][1][-len(sent) :] == sent
    await hrig.nothing_at_remote()
    if case != "fast cleared":
        assert [e[0] for e in hrig.events[:1]] == ["decide"]  # Python's screen saw it first
    assert hrig.pump.c_stats["forwarded_requests"] == 0


async def test_unsigned_connections_are_screened_the_same_way():
    r = HotRig(key=b"")
    try:
        await asyncio.sleep(0.2)
        r.user.send_multipart(r.request("execute_request", {"code": "1"}))
        await r.recv(r.remote["shell"])
        r.user.send_multipart(r.request("execute_request", {"code": "%gpu release"}))
        await r.until(lambda: r.handed)
        await r.nothing_at_remote()
        assert r.pump.c_stats["forwarded_requests"] == 1
    finally:
        await r.close()


async def test_replies_to_the_gateways_own_requests_go_to_the_loop(hrig):
    private: list[list[bytes]] = []
    hrig.pump.links["link-1"] = type("Link", (), {"id": "link-1", "on_private_reply": private.append})()
    own = hrig.request("kernel_info_reply", {})  # no client identity before the delimiter
    hrig.remote["shell"].send_multipart([b"gw", *own])
    await hrig.until(lambda: private)
    assert private[0] == own
    assert hrig.pump.c_stats["handed_back"] == 1
