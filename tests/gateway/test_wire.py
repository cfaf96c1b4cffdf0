"""The gateway's own signing agrees with jupyter_client's Session (the reference implementation)."""

from __future__ import annotations

from jupyter_client.session import Session as JupyterSession

from mlp_kernel.gateway.wire import Message, Session, Signer


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
