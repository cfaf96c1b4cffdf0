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
import ctypes
import hashlib
import hmac
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jupyter_client.session import Session as ClientSession

from mlp_kernel.gateway import pump as pump_module
from mlp_kernel.gateway.kernel import C_FORWARDABLE, LOOP_ONLY
from mlp_kernel.gateway.wire import DELIM, Message, Session, Signer

from .test_pump import Rig

KEY = b"5b8f3c2e-hot-path-test-key"
hot = pump_module.hotpath()


def test_the_hot_path_is_built():
    """It must be there wherever the suite runs (``.ci/run`` installs the package, which compiles it): a
    missing build would leave the C path untested while everything passed on the Python one."""
    assert hot is not None, (
        "mlp_kernel/gateway/_hotpath.c is not built: `pip install -e .` compiles it (it needs a C compiler)"
    )


def exact(raw: bytes) -> memoryview:
    """``raw`` in a buffer of exactly its size: a ``bytes`` object has a NUL byte after its end, which would
    hide a read one past the end from the sanitizers (``.ci/sanitize-hotpath``)."""
    return memoryview((ctypes.c_char * len(raw)).from_buffer_copy(raw)).cast("B")


@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=200), data=st.binary(max_size=400))
def test_hmac_sha256_matches_pythons(key: bytes, data: bytes) -> None:
    expected = hmac.new(key, data, hashlib.sha256).hexdigest().encode()
    assert hot.hmac_sha256_hex(exact(key), exact(data)) == expected


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
    got = hot.msg_type(exact(raw))
    if got is not None:
        assert json.loads(raw)["msg_type"] == got.decode()
    elif isinstance(msg_type, str) and msg_type.isalnum() and msg_type.isascii():
        # a plain type in a header whose other keys need no escapes is always read
        assert any("\\" in json.dumps(k) for k in header), raw


def python_reads(raw: bytes) -> object:
    """The msg_type Python's path reads from a header (``Message.msg_type``), or None where it drops it."""
    try:
        header = json.loads(raw)
        return header["msg_type"] if isinstance(header, dict) else None
    except (ValueError, KeyError, RecursionError):
        return None


HEADER = b'{"msg_id": "a1", "msg_type": "execute_request", "username": "u", "date": "2026-12-06T01:00:00Z"}'
JUNK = [
    b"",
    b"}",
    b"{",
    b"]",
    b",",
    b":",
    b'"',
    b"\\",
    b"\\u",
    b"\\u00",
    b"tru",
    b"nul",
    b"01",
    b"-",
    b"1e",
    b"1.",
    b"NaN",
    b"\x00",
    b"\x1f",
    b"\x80",
    b"\xc3",
    b"\xc3\xa9",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xef\xbb\xbf",
    b" x",
    b"{}",
    b"[]",
    b'"msg_type"',
    b'"msg_type":"execute_request"',
    b"\t",
    b"\n",
]


@settings(max_examples=3000, deadline=None)
@given(
    cuts=st.lists(
        st.tuples(
            st.integers(0, len(HEADER)), st.integers(0, 4), st.sampled_from(JUNK) | st.binary(max_size=4)
        ),
        max_size=3,
    )
)
def test_a_type_read_in_c_is_the_one_python_reads_from_any_bytes(cuts) -> None:
    """Soundness, on a client's header damaged anywhere (bytes cut out, junk put in): where C reads a
    msg_type, the header is JSON that Python's path reads the same type from. Anything else must be None,
    so that Python decides (it drops what is not JSON: C must never forward what Python would drop)."""
    raw = HEADER
    for at, drop, junk in cuts:
        raw = raw[:at] + junk + raw[at + drop :]
    got = hot.msg_type(exact(raw))
    if got is not None:
        assert python_reads(raw) == got.decode(), raw


@settings(max_examples=1000, deadline=None)
@given(raw=st.binary(max_size=80))
def test_a_type_read_in_c_from_random_bytes_is_pythons(raw) -> None:
    got = hot.msg_type(exact(b'{"msg_type":"x",' + raw))
    if got is not None:
        assert python_reads(b'{"msg_type":"x",' + raw) == got.decode(), raw


@pytest.mark.parametrize(
    "raw",
    [
        b'{"msg_type":"execute_request"} trailing',
        b'{"msg_type":"execute_request","a":tru}',
        b'{"msg_type":"execute_request","a":01}',
        b'{"msg_type":"execute_request","a":}',
        b'{"msg_type":"execute_request","a":"\x01"}',
        b'{"msg_type":"execute_request","a":"\xff"}',
        b'{"msg_type":"execute_request","a":"\\q"}',
        b'{"msg_type":"execute_request","a":[1,]}',
        b'{"msg_type":"execute_request","a":{"b" 1}}',
        b'{"msg_type":"execute_request",}',
        b'{"msg_type":"execute_request","a":' + b"[" * 2000 + b"]" * 2000 + b"}",
    ],
)
def test_a_header_that_is_not_json_is_left_to_python(raw: bytes) -> None:
    """Python's path drops these (not JSON); C must not read a type from them and forward them."""
    assert python_reads(raw) is None
    assert hot.msg_type(exact(raw)) is None


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
    assert hot.msg_type(exact(raw)) is None


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


def passes_python_and_c(frames: list[bytes], signer: Signer, types: tuple[bytes, ...]) -> bool:
    """What may reach the remote kernel from ``HotRig`` (whose Python hook passes nothing): a message that
    ``GatewayKernel.fast_forward`` passes, of a type C relays, and that C does not leave to Python (no
    ``%gpu``, no ``\\u`` in an execute_request's content)."""
    try:
        msg = Message(frames, signer)
    except ValueError:
        return False
    t = msg.header.get("msg_type")
    if not isinstance(t, str) or t.encode() not in types:
        return False
    return t != "execute_request" or (b"%gpu" not in msg.frames[4] and b"\\u" not in msg.frames[4])


def damaged(rng: random.Random, wire: Session) -> tuple[list[bytes], bool]:
    """A client request, signed or not, damaged at random the way a broken or hostile client would send it;
    and whether its header was damaged (then C may leave to Python what Python would pass)."""
    code = rng.choice(["x = 1", "%gpu a100", "print('\\u00e9')", "y = 2 # %gp", ""])
    kind = rng.choice(
        ["execute_request", "execute_request", "complete_request", "comm_msg", "kernel_info_request"]
    )
    sent = wire.serialize(kind, {"code": code, "silent": False})
    header_damaged = False
    for _ in range(rng.randint(0, 2)):
        what = rng.randrange(7)
        if what == 0 and len(sent) > 1:  # a frame lost
            del sent[rng.randrange(len(sent))]
        elif what == 1:  # a frame too many, or a second delimiter
            sent.insert(rng.randrange(len(sent) + 1), rng.choice([DELIM, b"", b"{}", rng.randbytes(8)]))
        elif what in (2, 3) and len(sent) > 2:  # the header damaged, then signed again (or not)
            h = sent[2]
            at = rng.randrange(len(h) + 1)
            sent[2] = h[:at] + rng.choice(JUNK + [rng.randbytes(2)]) + h[at + rng.randint(0, 3) :]
            header_damaged = True
            if what == 2 and len(sent) >= 6:
                sent[1] = wire.signer.sign(sent[2:6])
        elif what == 4 and len(sent) > 1:  # the signature damaged
            sent[1] = sent[1][:-1] + (b"0" if sent[1][-1:] != b"0" else b"1")
        elif what == 5 and len(sent) > 5:  # the content cut short, signed again
            sent[5] = sent[5][: rng.randrange(len(sent[5]) + 1)]
            sent[1] = wire.signer.sign(sent[2:6])
        elif what == 6 and len(sent) > 2:  # the header replaced by any bytes, signed again
            sent[2] = rng.randbytes(rng.randint(0, 12))
            header_damaged = True
            if len(sent) >= 6:
                sent[1] = wire.signer.sign(sent[2:6])
    return sent, header_damaged


async def test_damaged_requests_reach_the_remote_only_if_python_would_pass_them(hrig):
    """Fuzzing the screen through real sockets: 300 requests damaged at random (frames lost or added, a
    second delimiter, header bytes cut or junk put in and signed again, the signature or content damaged).
    Each reaches the remote kernel, untouched, only if Python's screen passes it, and otherwise reaches
    Python untouched; an undamaged header that Python passes is always relayed in C."""
    rng = random.Random(17)
    types = (b"execute_request", b"complete_request")
    relayed = 0
    for case in range(300):
        sent, header_damaged = damaged(rng, hrig.wire)
        expected = passes_python_and_c([b"client", *sent], hrig.wire.signer, types)
        handed = len(hrig.handed)
        hrig.user.send_multipart(sent)
        got: list[list[bytes]] = []

        def arrived(got: list[list[bytes]] = got, handed: int = handed) -> bool:
            if hrig.remote["shell"].poll(0):
                got.append(hrig.remote["shell"].recv_multipart())
            return bool(got) or len(hrig.handed) > handed

        await hrig.until(arrived)
        if got:
            relayed += 1
            assert expected, (case, sent)  # never what Python would not pass
            assert got[0][2:] == sent, (case, sent)
        else:
            assert hrig.handed[-1][1][-len(sent) :] == sent, (case, sent)
            assert not expected or header_damaged, (case, sent)
        await hrig.pump.flush()  # the loop's done() is in: the next request finds the channel free
    await hrig.nothing_at_remote()
    assert hrig.pump.c_stats["forwarded_requests"] == relayed
    assert 30 < relayed < 270, relayed  # both outcomes were exercised


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
