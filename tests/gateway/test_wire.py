"""The gateway's own signing agrees with jupyter_client's Session (the reference implementation)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jupyter_client.session import Session as JupyterSession

from mlp_kernel.gateway.wire import DELIM, Malformed, Message, Session, Signer


def test_messages_signed_by_the_gateway_verify_with_jupyter_client():
    key = b"0123456789abcdef"
    ours = Session(Signer(key))
    frames = ours.serialize("stream", {"name": "stdout", "text": "héllo"}, {"msg_id": "p"}, idents=[b"topic"])
    theirs = JupyterSession(key=key)
    idents, msg_frames = theirs.feed_identities(frames)
    msg = theirs.deserialize(msg_frames)  # raises if the signature is wrong
    assert (
        idents == [b"topic"] and msg["content"]["text"] == "héllo" and msg["parent_header"]["msg_id"] == "p"
    )


def test_messages_from_jupyter_client_verify_with_the_gateway_and_can_be_resigned():
    key = b"k"
    theirs = JupyterSession(key=key)
    frames = theirs.serialize(theirs.msg("execute_request", {"code": "%gpu\n1"}), ident=[b"client"])
    msg = Message(frames)
    signer = Signer(key)
    assert signer.verify(msg.frames) and msg.idents == [b"client"] and msg.content["code"] == "%gpu\n1"
    resigned = Message(Session(signer).resign(msg.idents, msg.frames, {**msg.content, "code": "1"}))
    assert signer.verify(resigned.frames) and resigned.header == msg.header
    assert theirs.deserialize(resigned.frames)["content"]["code"] == "1"
    tampered = list(msg.frames)
    tampered[4] = b'{"code": "evil"}'
    assert not signer.verify(tampered)


# ---------------------------------------------------------------------------------------------------------
# Anyone who reaches a kernel port can send any frames. The parser's whole contract: a Message whose parts are
# JSON objects, or ``Malformed`` (logged and dropped by the caller), never another exception.

KEY = b"secret-key"
frame = st.binary(max_size=64) | st.sampled_from([DELIM, b"{}", b"[]", b"null", b'{"msg_type": 1}', b"\xff"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


def parse_fully(raw: list[bytes], signer: Signer | None) -> Message | None:
    try:
        msg = Message(raw, signer).complete()
    except Malformed:
        return None
    assert all(isinstance(part, dict) for part in (msg.header, msg.parent, msg.metadata, msg.content))
    _ = msg.msg_type, msg.msg_id
    return msg


@given(st.lists(frame, max_size=9))
@settings(max_examples=400, deadline=None)
def test_arbitrary_frames_parse_or_raise_malformed_only(raw):
    parse_fully(raw, None)
    assert parse_fully(raw, Signer(KEY)) is None  # unsigned: always dropped


@given(st.lists(frame, max_size=3), json_values, json_values, json_values, json_values)
@settings(max_examples=300, deadline=None)
def test_validly_signed_parts_of_any_json_shape_parse_or_raise_malformed_only(idents, h, p, m, c):
    """A client holding the key may still send a header ``[]`` or a content ``5``: dropped, not a crash."""
    signer = Signer(KEY)
    parts = [json.dumps(v).encode() for v in (h, p, m, c)]
    raw = [*[i for i in idents if i != DELIM], DELIM, signer.sign(parts), *parts]
    msg = parse_fully(raw, signer)
    assert (msg is not None) == all(isinstance(v, dict) for v in (h, p, m, c))


@pytest.mark.parametrize(
    "raw",
    [
        [DELIM, b"x"],
        [DELIM],
        [b"id", DELIM, b"", b"", b""],
        [b"no delimiter at all"],
        [DELIM, b"sig", b"[]", b"{}", b"{}", b"{}"],  # unsigned, non-dict header
        [DELIM, b"sig", b"[" * 100_000, b"{}", b"{}", b"{}"],
        [DELIM, b"sig", b"\xff\xfe", b"{}", b"{}", b"{}"],
    ],
)
def test_the_signature_is_checked_before_anything_is_parsed(raw):
    with pytest.raises(Malformed):
        Message(raw, Signer(KEY))


def test_validly_signed_but_malformed_parts_are_malformed():
    signer = Signer(KEY)
    for parts in (
        [b"[]", b"{}", b"{}", b"{}"],
        [b'{"msg_type": "execute_request"}', b"{}", b"{}", b"[" * 100_000 + b"]" * 100_000],
        [b'{"msg_type": "execute_request"}', b"{}", b"{}", b"\xff"],
    ):
        with pytest.raises(Malformed):
            Message([DELIM, signer.sign(parts), *parts], signer).complete()
