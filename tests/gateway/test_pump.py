"""The gateway's I/O thread on its own: real ZeroMQ sockets on both sides, the hooks recorded.

What is checked here is the contract the gateway relies on: frames are relayed untouched and in order, the
deferred bookkeeping (``after_forward``, ``on_reply``) always runs before anything is handed to the loop and
before ``flush()`` returns, and a request is never relayed on the fast path once ``fast`` was cleared. And
the remote's output: relayed by libzmq's proxy while nothing needs to see it, screened in Python while
something does, in order across the switches; subscribers welcomed on either path; the clients' last
unsubscribe never unsubscribes the gateway from the remote kernel; a failed proxy falls back to Python.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from types import SimpleNamespace

import pytest
import zmq

from mlp_kernel.gateway import pump as pump_module
from mlp_kernel.gateway.pump import Pump, PumpFailed

DELIM = b"<IDS|MSG>"


def message(tag: bytes, size: int = 0) -> list[bytes]:
    return [DELIM, b"sig", b'{"msg_type": "x"}', b"{}", b"{}", tag + b"." * size]


class Rig:
    """A Pump between a client (DEALER + SUB) and a fake remote kernel (ROUTERs + PUB), all in-process."""

    def __init__(self, hot: bool = True, c_requests: tuple[bytes, tuple[bytes, ...]] | None = None) -> None:
        self.ctx: zmq.Context = zmq.Context()
        self.hot = hot
        base = f"inproc://pump-{uuid.uuid4().hex}"
        kinds = {"shell": zmq.ROUTER, "control": zmq.ROUTER, "stdin": zmq.ROUTER, "iopub": zmq.XPUB}
        client = {}
        for name, kind in kinds.items():
            client[name] = self.ctx.socket(kind)
            if kind == zmq.XPUB:
                client[name].xpub_verbose = 1  # as sockets.bind() makes it: every subscriber is welcomed
            client[name].bind(f"{base}-client-{name}")
        self.events: list[tuple[str, object]] = []
        self.handed: list[tuple[str, list[bytes]]] = []
        hooks = (self.fast_forward, self.after_forward, self.on_reply)
        self.pump = Pump(self.ctx, client, *hooks, hot=hot, c_requests=c_requests)
        self.remote = {n: self.ctx.socket(zmq.ROUTER) for n in ("shell", "control", "stdin")}
        self.remote["iopub"] = self.ctx.socket(zmq.XPUB)  # XPUB: the test sees what the gateway subscribes
        self.subscribed: list[bytes] = []
        urls = {}
        for name, sock in self.remote.items():
            urls[name] = f"{base}-remote-{name}"
            sock.bind(urls[name])
        self.user = self.ctx.socket(zmq.DEALER)
        self.user.connect(f"{base}-client-shell")
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.subscribe(b"")
        self.sub_url = f"{base}-client-iopub"
        self.sub.connect(self.sub_url)
        self.pump.start()
        self.statuses: list[float] = []  # when the loop was asked to publish the status
        self.serving = asyncio.ensure_future(
            self.pump.serve(
                self.on_request, self.subscribed.append, lambda: self.statuses.append(time.monotonic())
            )
        )
        self.pump.attach(SimpleNamespace(id="link-1"), {"urls": urls, "ident": "gw"})
        self.pump.fast = True

    # hooks (I/O thread)
    def fast_forward(self, channel: str, frames: list[bytes]) -> object:
        self.events.append(("decide", frames[-1][:4]))
        if frames[-1].startswith(b"crash"):
            raise RuntimeError("a hook bug in the I/O thread")
        return {"tag": frames[-1][:4]} if frames[-1].startswith(b"fast") else None

    def after_forward(self, channel: str, parsed: object) -> None:
        self.events.append(("after", parsed["tag"]))  # type: ignore[index]

    def on_reply(self, frames: list[bytes]) -> bool:
        self.events.append(("reply", frames[-1][:4]))
        if frames[-1].startswith(b"boom"):
            raise RuntimeError("a bookkeeping bug")
        return frames[-1].startswith(b"end")  # "the last running cell ended"

    # loop side
    def on_request(self, channel: str, frames: list[bytes]) -> None:
        self.events.append(("handed", frames[-1][:4]))
        self.handed.append((channel, frames))
        self.pump.done(channel)
        if frames[-1].startswith(b"bang"):
            raise RuntimeError("a handler bug on the loop side")

    async def recv(self, sock: zmq.Socket, timeout: float = 5.0) -> list[bytes]:
        for _ in range(int(timeout / 0.01)):
            try:
                return sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                await asyncio.sleep(0.01)
        raise TimeoutError("nothing arrived")

    async def until(self, condition: object, timeout: float = 5.0) -> None:
        for _ in range(int(timeout / 0.01)):
            if condition():  # type: ignore[operator]
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("the condition did not hold in time")

    async def proxied(self) -> None:
        """Wake the I/O thread and wait until the remote's output goes through the C proxy: the C hot path's
        own forwarder (``_hotpath.forward``) where it is used, else libzmq's."""
        await self.pump.flush()
        await self.until(lambda: self.pump._forwarder is not None and self.pump._forwarder.running)
        assert (self.pump._forwarder._native is not None) == (self.hot and pump_module.hotpath() is not None)

    async def close(self) -> None:
        self.serving.cancel()
        await asyncio.gather(self.serving, return_exceptions=True)
        self.pump.stop()
        for sock in [*self.remote.values(), self.user, self.sub]:
            sock.close(linger=0)
        self.ctx.term()


@pytest.fixture(params=["c", "python"])
async def rig(request):
    """Each contract holds with the wait and the replies in C (``_hotpath.c``) and all in Python."""
    r = Rig(hot=request.param == "c")
    assert (r.pump.c_stats is not None) == (request.param == "c")
    await asyncio.sleep(0.2)  # inproc connects and the SUB subscription reach the sockets
    yield r
    await r.close()


async def test_fast_request_and_reply_are_relayed_untouched_and_booked_by_flush(rig):
    rig.user.send_multipart(message(b"fast-1"))
    got = await rig.recv(rig.remote["shell"])
    # the gateway's routing id, then the client's identity (the gateway's ROUTER added it), then as sent
    assert got[0] == b"gw" and got[2:] == message(b"fast-1")
    rig.remote["shell"].send_multipart([*got[:-1], b"fast-1-reply"])  # a reply keeps the client's identity
    reply = await rig.recv(rig.user)
    assert reply == [*message(b"fast-1")[:-1], b"fast-1-reply"]
    await rig.pump.flush()
    assert ("after", b"fast") in rig.events and ("reply", b"fast") in rig.events
    assert rig.events.index(("after", b"fast")) < rig.events.index(("reply", b"fast"))


async def test_bookkeeping_runs_before_a_hand_over(rig):
    rig.user.send_multipart(message(b"fast-2"))
    rig.user.send_multipart(message(b"slow-3"))  # not for the fast path: goes to the loop
    for _ in range(300):
        if rig.handed:
            break
        await asyncio.sleep(0.01)
    assert rig.handed and rig.handed[0][1][-1] == b"slow-3"
    order = [e for e in rig.events if e[0] in ("after", "handed")]
    assert order == [("after", b"fast"), ("handed", b"slow")]  # the loop sees the fast request booked


async def test_no_fast_path_once_fast_is_cleared(rig):
    rig.pump.fast = False
    await rig.pump.flush()
    rig.user.send_multipart(message(b"fast-4"))
    for _ in range(300):
        if rig.handed:
            break
        await asyncio.sleep(0.01)
    assert rig.handed and rig.handed[0][1][-1] == b"fast-4"
    assert not any(e[0] == "decide" for e in rig.events)  # not even considered for relaying
    with pytest.raises(zmq.Again):
        rig.remote["shell"].recv_multipart(zmq.NOBLOCK)


async def test_iopub_stream_keeps_order_and_bytes(rig):
    sizes = [64_000 if i % 3 == 0 else 10 for i in range(300)]  # stream chunks and small messages
    sent = [[b"kernel.x.stream", *message(str(i).encode(), size)] for i, size in enumerate(sizes)]
    for frames in sent:
        rig.remote["iopub"].send_multipart(frames)
    received = [await rig.recv(rig.sub) for _ in sent]
    assert received == sent


async def test_a_failing_hook_does_not_stop_the_relay(rig):
    rig.user.send_multipart(message(b"fast-5"))
    got = await rig.recv(rig.remote["shell"])
    rig.remote["shell"].send_multipart([*got[:-1], b"boom-reply"])
    assert (await rig.recv(rig.user))[-1] == b"boom-reply"
    await rig.pump.flush()  # runs the failing bookkeeping
    rig.user.send_multipart(message(b"fast-6"))
    got = await rig.recv(rig.remote["shell"])
    rig.remote["shell"].send_multipart([*got[:-1], b"fast-6-reply"])
    assert (await rig.recv(rig.user))[-1] == b"fast-6-reply"
    await rig.pump.flush()
    assert ("reply", b"boom") in rig.events and rig.events[-1] == ("reply", b"fast")


async def test_an_exception_on_either_side_drops_one_message_and_serving_goes_on(rig):
    """Neither the I/O thread nor the loop task that takes its hand-overs may end on one message."""
    rig.user.send_multipart(message(b"crash-7"))  # fast_forward raises in the I/O thread
    rig.user.send_multipart(message(b"fast-8"))
    got = await rig.recv(rig.remote["shell"])
    assert got[-1] == b"fast-8"
    rig.pump.fast = False
    await rig.pump.flush()
    rig.user.send_multipart(message(b"bang-9"))  # the loop-side handler raises
    rig.user.send_multipart(message(b"slow-10"))
    for _ in range(300):
        if len(rig.handed) == 2:
            break
        await asyncio.sleep(0.01)
    assert [h[1][-1] for h in rig.handed] == [b"bang-9", b"slow-10"] and not rig.serving.done()


async def test_a_failed_io_thread_ends_serving_loudly(rig):
    def broken() -> bool:
        raise RuntimeError("a bug in the I/O thread itself")

    rig.pump._commands = broken  # type: ignore[method-assign]
    rig.pump.to_client("iopub", message(b"x"))  # wakes the thread, which fails
    with pytest.raises(PumpFailed):
        await asyncio.wait_for(rig.serving, 5)


def output(msg_type: str, parent_id: str, tag: str, **content: object) -> list[bytes]:
    """A remote iopub message as the screening reads it (header, parent header, content)."""
    header = json.dumps({"msg_type": msg_type, "msg_id": tag}).encode()
    parent = json.dumps({"msg_id": parent_id}).encode()
    topic = f"kernel.x.{msg_type}".encode()
    return [topic, DELIM, b"sig", header, parent, b"{}", json.dumps(content).encode()]


async def test_output_goes_through_the_proxy_and_back_to_python_in_order(rig):
    await rig.proxied()
    first = [output("stream", "cell-1", f"a{i}", text="x" * (i % 3) * 30_000) for i in range(50)]
    for frames in first:
        rig.remote["iopub"].send_multipart(frames)
    # The loop announced busy for cell-2 itself and forwards it: the remote's busy for it is dropped,
    # which only the Python path can do; the switch happens before the request goes out.
    rig.pump.announced.add("cell-2")
    rig.pump.to_remote("link-1", "shell", message(b"cell-2"))
    await rig.recv(rig.remote["shell"])
    assert not rig.pump._forwarder.running
    second = [output("status", "cell-2", "busy", execution_state="busy"), output("stream", "cell-2", "b")]
    for frames in second:
        rig.remote["iopub"].send_multipart(frames)
    received = [await rig.recv(rig.sub) for _ in range(len(first) + 1)]
    assert received == [*first, second[1]]  # in order, the duplicate busy left out
    assert not rig.pump.announced
    await rig.proxied()  # nothing to screen any more: back to C
    rig.remote["iopub"].send_multipart(third := output("stream", "cell-3", "c"))
    assert await rig.recv(rig.sub) == third


async def test_the_gateways_own_output_keeps_its_place_between_the_remotes(rig):
    await rig.proxied()
    rig.remote["iopub"].send_multipart(before := output("stream", "cell-1", "before"))
    assert await rig.recv(rig.sub) == before
    rig.pump.to_client("iopub", own := [b"kernel.gw.status", *message(b"own")])
    assert await rig.recv(rig.sub) == own
    await rig.proxied()
    rig.remote["iopub"].send_multipart(after := output("stream", "cell-1", "after"))
    assert await rig.recv(rig.sub) == after


async def test_subscribers_are_welcomed_on_either_path(rig):
    await rig.until(lambda: rig.subscribed)  # the rig's own subscriber, before the remote was attached
    await rig.proxied()
    late, third = rig.ctx.socket(zmq.SUB), rig.ctx.socket(zmq.SUB)
    try:
        late.subscribe(b"")
        late.connect(rig.sub_url)
        await rig.until(lambda: len(rig.subscribed) == 2)  # through the proxy's capture socket
        rig.pump.fast = False  # something to screen: the I/O thread reads the clients' XPUB itself again
        await rig.pump.flush()
        await rig.until(lambda: not rig.pump._forwarder.running)
        third.subscribe(b"")
        third.connect(rig.sub_url)
        await rig.until(lambda: len(rig.subscribed) == 3)
    finally:
        late.close(linger=0)
        third.close(linger=0)


async def test_the_clients_last_unsubscribe_does_not_unsubscribe_the_gateway(rig):
    events = [rig.remote["iopub"].recv()]  # the gateway's subscription (one: XSUB sends its set once)
    await rig.proxied()
    for _ in range(3):  # clients come and go while the proxy relays their (un)subscriptions
        rig.sub.close(linger=0)
        await asyncio.sleep(0.1)
        rig.sub = rig.ctx.socket(zmq.SUB)
        rig.sub.subscribe(b"")
        rig.sub.connect(rig.sub_url)
        await asyncio.sleep(0.1)
    rig.sub.close(linger=0)
    await asyncio.sleep(0.2)
    while rig.remote["iopub"].poll(0):
        events.append(rig.remote["iopub"].recv())
    assert events[0] == b"\x01" and b"\x00" not in events  # still subscribed to the remote's output
    rig.sub = rig.ctx.socket(zmq.SUB)  # for the rig's close()


async def test_a_failed_proxy_falls_back_to_python(monkeypatch):
    def broken(*sockets: object) -> None:
        raise zmq.ZMQError(zmq.EINVAL, "a proxy that fails")

    monkeypatch.setattr(zmq, "proxy_steerable", broken)
    if pump_module.hotpath() is not None:  # the C hot path forwards the output itself (_hotpath.forward)
        monkeypatch.setattr(pump_module.hotpath(), "forward", broken)
    r = Rig()
    try:
        await asyncio.sleep(0.2)
        await r.pump.flush()
        await r.until(lambda: r.pump._forwarder is not None and r.pump._forwarder.failed)
        await r.until(lambda: not r.pump._forwarder.running)
        for i in range(3):
            r.remote["iopub"].send_multipart(output("stream", "cell-1", f"m{i}"))
        assert [(await r.recv(r.sub))[3] for _ in range(3)] == [
            json.dumps({"msg_type": "stream", "msg_id": f"m{i}"}).encode() for i in range(3)
        ]
    finally:
        await r.close()


async def cells_back_to_back(rig: Rig, n: int, gap: float) -> float:
    """``n`` requests answered by replies that each end the last running cell; when the last was sent."""
    sent = 0.0
    for i in range(n):
        rig.user.send_multipart(message(b"fast-%d" % i))
        got = await rig.recv(rig.remote["shell"])
        sent = time.monotonic()
        rig.remote["shell"].send_multipart([*got[:-1], b"end-%d" % i])
        await rig.recv(rig.user)
        await asyncio.sleep(gap)
    return sent


async def test_cells_back_to_back_publish_their_status_once_it_is_quiet(rig, monkeypatch):
    monkeypatch.setattr(pump_module, "STATUS_QUIET_S", 0.5)
    monkeypatch.setattr(pump_module, "STATUS_MAX_S", 30.0)
    last = await cells_back_to_back(rig, 8, 0.05)
    assert rig.statuses == []  # cells kept ending less than 0.5 s apart
    await rig.until(lambda: rig.statuses, timeout=5)
    assert rig.statuses[0] >= last + 0.5
    await asyncio.sleep(0.6)
    assert len(rig.statuses) == 1


async def test_cells_that_never_pause_still_publish_their_status(rig, monkeypatch):
    monkeypatch.setattr(pump_module, "STATUS_QUIET_S", 30.0)
    monkeypatch.setattr(pump_module, "STATUS_MAX_S", 0.2)
    await cells_back_to_back(rig, 16, 0.05)
    assert len(rig.statuses) >= 2  # at most STATUS_MAX_S after the first unpublished end, not once quiet


@pytest.mark.parametrize("hot", [True, False], ids=["c", "python"])
async def test_a_terminated_context_ends_the_io_thread(hot):
    """Whoever terminates the context while the I/O thread waits (in C or in Python) gets it back: the
    thread ends on ETERM and closes its sockets, so ``term()`` returns instead of waiting on a thread that
    keeps polling sockets it can no longer read."""
    r = Rig(hot=hot)
    await asyncio.sleep(0.2)
    r.serving.cancel()
    await asyncio.gather(r.serving, return_exceptions=True)
    for sock in [*r.remote.values(), r.user, r.sub, r.pump._outer, r.pump._outer_sync]:
        sock.close(linger=0)
    await asyncio.wait_for(asyncio.to_thread(r.ctx.term), 10)
    r.pump._thread.join(5)
    assert not r.pump._thread.is_alive()
