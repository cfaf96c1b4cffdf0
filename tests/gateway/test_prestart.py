"""Pre-start on activity (issue 18, ``release.prestart``) in a real gateway: the status comm's ``prestart``
action starts the released notebook's GPU kernel and restores its variables before any cell, the next cell
runs on it without a launch, an unused one is dropped after the hold without a new snapshot, and the rule's
refusals are silent no-ops.

Real parts: the gateway in this process with real sockets, the real local backend starting real ipykernels,
the real snapshot store, a client speaking the Jupyter protocol (comm messages included); time on
``ManualClock`` so the 2-minute hold takes no real time. Each test waits for conditions, never for a fixed
sleep, so a loaded CI machine only makes them slower.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.connect import write_connection_file

from mlp_kernel.clock import ManualClock
from mlp_kernel.gateway.__main__ import make_backend
from mlp_kernel.gateway.config import GatewayConfig
from mlp_kernel.gateway.kernel import GatewayKernel
from mlp_kernel.gateway.requests import RequestState
from mlp_kernel.gateway.sockets import bind
from mlp_kernel.placement.prestart import DEFAULT_HOLD_S
from mlp_kernel.protocol import COMM_TARGET, KernelState

SHIPPED_POLICY = Path(__file__).resolve().parents[2] / "kernelspecs" / "gpu-auto" / "policy.yaml"
PUBLIC_ONLY = """
version: 1
tiers: [local]
members:
  cloud: {backend: local, public: true, health: static}
flavors:
  cloud: {member: cloud, tier: local, gpu_models: [local], price_per_gpu_hour: 1.5, capacity_gpus: 8}
burst: {enabled: true}
idle_timeout: 15m
default_request: {gpu_count: 1, burstable: true, budget: flex}
"""
WAIT_S = 60.0  # a real ipykernel's start on a loaded 2-core machine


class Gateway:
    """A gateway with its client, its status comm, and the launches its backend was asked for."""

    def __init__(self, kernel: GatewayKernel, client: AsyncKernelClient, clock: ManualClock) -> None:
        self.kernel, self.client, self.clock = kernel, client, clock
        self.remote = kernel.remote
        self.status = kernel.status
        self.comm_id = uuid.uuid4().hex
        self.events: list[dict[str, Any]] = []
        self.launches = 0
        self.gate: asyncio.Event | None = None  # set: the real launch waits for it before its first step
        backend, launch = self.remote.backend, self.remote.backend.launch

        def counted(spec: Any) -> Any:  # the real launch, counted (and held at the gate, if there is one)
            self.launches += 1
            return launch(spec) if self.gate is None else _gated(launch(spec), self.gate)

        backend.launch = counted  # type: ignore[method-assign]

    async def run(self, code: str) -> str:
        """Run a cell; return what it printed (it must succeed)."""
        texts: list[str] = []

        def keep(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                texts.append(msg["content"]["text"])

        reply = await self.client.execute_interactive(code, timeout=90, output_hook=keep)
        assert reply["content"]["status"] == "ok", (reply["content"], texts)
        await self.kernel.pump.flush()  # the I/O thread books what it relayed: before the test moves time
        return "".join(texts)

    def send(self, msg_type: str, data: dict[str, Any]) -> None:
        content = {"comm_id": self.comm_id, "data": data}
        if msg_type == "comm_open":
            content["target_name"] = COMM_TARGET
        self.client.shell_channel.send(self.client.session.msg(msg_type, content))

    async def prestart(self, cell: Any = None) -> None:
        """Send the extension's action (with ``cell`` unless None, as an older client sends it) and wait until
        the gateway has handled it (its idle on iopub)."""
        data = {"action": "prestart"} if cell is None else {"action": "prestart", "cell": cell}
        msg = self.client.session.msg("comm_msg", {"comm_id": self.comm_id, "data": data})
        self.client.shell_channel.send(msg)
        await self.iopub_until(
            lambda m: (
                m["msg_type"] == "status"
                and m["parent_header"].get("msg_id") == msg["header"]["msg_id"]
                and m["content"]["execution_state"] == "idle"
            ),
            "the gateway's idle for the prestart action",
        )

    async def iopub_until(self, pred: Callable[[dict[str, Any]], bool], what: str) -> None:
        """Read iopub until ``pred`` holds for a message, keeping the status comm's events on the way."""
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            with contextlib.suppress(queue.Empty, asyncio.TimeoutError, TimeoutError):
                m = await self.client.get_iopub_msg(timeout=0.5)
                data = m["content"].get("data") if m["msg_type"] == "comm_msg" else None
                if isinstance(data, dict) and data.get("type") == "event":
                    self.events.append(data)
                if pred(m):
                    return
        raise AssertionError(f"no {what} within {WAIT_S:.0f} s; events so far: {self.events}")

    async def shell_reply(self, msg_id: str) -> dict[str, Any]:
        """The reply to a request sent with the client's own methods (only one reader per socket)."""
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end:
            with contextlib.suppress(queue.Empty, asyncio.TimeoutError, TimeoutError):
                m = await self.client.get_shell_msg(timeout=0.5)
                if m["parent_header"].get("msg_id") == msg_id:
                    return dict(m)
        raise AssertionError(f"no reply to {msg_id} within {WAIT_S:.0f} s")

    async def event(self, kind: str) -> dict[str, Any]:
        if not any(e["kind"] == kind for e in self.events):
            await self.iopub_until(
                lambda m: m["msg_type"] == "comm_msg" and m["content"]["data"].get("kind") == kind,
                f"{kind!r} event",
            )
        return next(e for e in self.events if e["kind"] == kind)

    async def until(self, cond: Callable[[], bool], what: str) -> None:
        end = time.monotonic() + WAIT_S
        while not cond():
            if time.monotonic() > end:
                raise AssertionError(
                    f"{what}: not within {WAIT_S:.0f} s (state {self.status.state}, "
                    f"message {self.status.message!r}, pre-start {self.status.prestart_note!r})"
                )
            await asyncio.sleep(0.05)

    async def remote_value(self, expr: str) -> str:
        """``expr`` evaluated in the running GPU kernel by the gateway's own link (not a cell)."""
        link = self.remote.link
        assert link is not None, "no GPU kernel runs"
        reply = await link.execute_silently("", user_expressions={"v": expr})
        return str(reply.content["user_expressions"]["v"]["data"]["text/plain"])

    async def kept_past_the_hold(self, launches: int) -> None:
        """A pre-started kernel a cell used: the idle limit applies now, not the hold; nothing launched."""
        await self.clock.advance(DEFAULT_HOLD_S * 2)
        await asyncio.sleep(0.3)  # a few idle-loop rounds: a drop would have begun by now
        assert self.status.state == KernelState.RUNNING and self.launches == launches

    async def released_after(self, code: str) -> None:
        """Run ``code`` on a GPU kernel, then release it with ``%gpu release`` (variables saved)."""
        await self.run(code)
        out = await self.run("%gpu release")
        assert "GPU released" in out and "Saved 1 variable" in out, out
        assert self.status.state == KernelState.RELEASED


GatewayFactory = Callable[..., Awaitable[Gateway]]


async def _gated(events: AsyncIterator[Any], gate: asyncio.Event) -> AsyncIterator[Any]:
    """The backend's own launch events, once ``gate`` is set: a cell can be sent while the start waits."""
    await gate.wait()
    async for ev in events:
        yield ev


def _policy_with(**prestart: Any) -> str:
    """The shipped policy with ``release.prestart`` set to ``prestart`` (built as data, dumped)."""
    policy = yaml.safe_load(SHIPPED_POLICY.read_text())
    policy.setdefault("release", {})["prestart"] = prestart
    return str(yaml.safe_dump(policy))


@pytest.fixture
async def start_gateway(tmp_path: Path, runtime_dir: Path) -> AsyncIterator[GatewayFactory]:
    running: list[tuple[Gateway, Any, asyncio.Future[None]]] = []

    async def start(policy: str = SHIPPED_POLICY.read_text()) -> Gateway:
        name = f"pre{len(running)}"
        fname, connection = write_connection_file(str(tmp_path / f"{name}.json"), ip="127.0.0.1", key=b"k3y")
        (tmp_path / f"{name}.yaml").write_text(policy)
        config = GatewayConfig(
            policy=str(tmp_path / f"{name}.yaml"),
            kernel_id=name,
            backend="local",
            status_path=str(tmp_path / f"{name}-status.json"),
            record_path=str(tmp_path / f"{name}-record.json"),
            user="alice",
        )
        requests = RequestState(config)
        bound = bind(dict(connection))
        clock = ManualClock()
        backend = make_backend(requests, tmp_path)
        kernel = GatewayKernel(dict(connection), requests, backend, bound, [], fname, clock=clock)
        task = asyncio.ensure_future(kernel.run())
        client = AsyncKernelClient()
        client.load_connection_info(dict(connection))
        client.start_channels()
        await client.wait_for_ready(timeout=30)
        g = Gateway(kernel, client, clock)
        running.append((g, bound, task))
        g.send("comm_open", {})
        await g.until(lambda: g.comm_id in kernel.statusch.comms, "the status comm opens")
        return g

    yield start
    for g, bound, task in running:
        g.client.stop_channels()
        await g.kernel.shutdown("test over")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
        bound.context.destroy(linger=0)


async def test_a_prestart_runs_the_kernel_with_the_variables_before_any_cell_and_the_cell_uses_it(
    start_gateway: GatewayFactory,
) -> None:
    g = await start_gateway()
    assert g.status.snapshot()["prestart"] == {
        "ready": False,  # no GPU kernel was ever used: a notebook opened to read never pre-starts ...
        "first": True,  # ... typing code into it may (release.prestart.first, on by default)
        "second": False,
        "holding": False,
        "hold_s": DEFAULT_HOLD_S,
        "message": "",
    }
    await g.released_after("x = 41")
    assert g.status.snapshot()["prestart"]["ready"] is True
    assert g.launches == 1

    await g.prestart()
    await g.until(lambda: g.remote.prestarted_at is not None, "the pre-started kernel is connected")
    assert g.status.state == KernelState.RUNNING
    assert await g.remote_value("x") == "41", "the variables are restored before any cell"
    started = await g.event("prestarted")
    assert "pre-started when you started typing" in started["message"], started
    assert not any(e["kind"] == "started" for e in g.events), "a pre-start is not announced as a start"
    snap = g.status.snapshot()["prestart"]
    assert snap is not None and snap["holding"] is True and snap["ready"] is False
    assert g.status.prestart_note == "pre-started on local/local when you started typing"
    assert g.kernel.requests.carry.saved, "the snapshot stays until a cell uses the kernel"
    out = await g.run("%gpu status")
    assert "pre-start: pre-started on local/local when you started typing" in out, out
    assert "idle:   given back in 2 min unless a cell runs" in out, out
    pid = await g.remote_value("__import__('os').getpid()")

    assert (await g.run("x += 1; print(x)")).strip() == "42"
    assert g.launches == 2, "the cell ran on the pre-started kernel: no launch of its own"
    assert await g.remote_value("__import__('os').getpid()") == pid
    await g.until(lambda: not g.kernel.requests.carry.saved, "the used snapshot is deleted, as after a start")
    assert g.remote.prestarted_at is None and g.status.prestart_holding is False

    await g.kept_past_the_hold(launches=2)


async def test_an_unused_prestart_is_dropped_after_the_hold_and_keeps_the_snapshot(
    start_gateway: GatewayFactory,
) -> None:
    g = await start_gateway()
    await g.released_after("x = 41")
    files = sorted(Path(g.kernel.requests.carry.path()).rglob("*"))
    assert files, "the release saved the variables"
    saved = {p: p.stat().st_mtime_ns for p in files if p.is_file()}

    await g.prestart()
    await g.until(lambda: g.remote.prestarted_at is not None, "the pre-started kernel is connected")
    assert g.status.state == KernelState.RUNNING
    at = g.remote.prestarted_at
    hold_end = datetime.fromtimestamp((at or 0) + DEFAULT_HOLD_S, timezone.utc).isoformat()
    assert at is not None and g.status.snapshot()["idle_deadline"] == hold_end, "the hold counts, not idle"
    await g.clock.advance(DEFAULT_HOLD_S - 10)
    await asyncio.sleep(0.3)
    assert g.status.state == KernelState.RUNNING, "dropped before the hold"
    await g.clock.advance(15)  # past the hold by less than one tick of the idle loop
    await g.until(lambda: g.status.state == KernelState.RELEASED, "the unused kernel is dropped")
    dropped = await g.event("prestart_dropped")
    assert "given back after 2 min unused" in dropped["message"], dropped
    assert "saved variables are kept" in dropped["message"]
    last = g.status.last_release
    assert last is not None and last["reason"] == "unused"
    assert g.status.prestart_note.startswith("dropped after 2 min unused"), g.status.prestart_note
    assert not any(e["kind"] == "released" for e in g.events)
    assert {p: p.stat().st_mtime_ns for p in saved} == saved, "no new snapshot: nothing ran"
    assert g.remote.link is None and g.launches == 2

    snap = g.status.snapshot()["prestart"]
    assert snap["ready"] is False and snap["second"] is True, snap
    await g.prestart("markdown")  # the unused one gives one more chance, to code being typed only
    assert g.status.state == KernelState.RELEASED and g.remote.launch is None and g.launches == 2
    assert "the next one waits for code being typed" in g.status.prestart_note, g.status.prestart_note
    await g.prestart("code")
    await g.until(lambda: g.remote.prestarted_at is not None, "the second chance's kernel is connected")
    assert g.launches == 3 and g.status.snapshot()["prestart"]["second"] is False
    await g.clock.advance(DEFAULT_HOLD_S + 5)
    await g.until(lambda: g.status.state == KernelState.RELEASED, "the second unused kernel is dropped")
    assert g.status.snapshot()["prestart"] == {**snap, "second": False, "message": g.status.prestart_note}
    await g.prestart("code")  # no third until a cell ran
    assert g.status.state == KernelState.RELEASED and g.remote.launch is None and g.launches == 3
    assert "already pre-started once" in g.status.prestart_note, g.status.prestart_note
    assert {p: p.stat().st_mtime_ns for p in saved} == saved, "still no new snapshot"

    assert (await g.run("print(x)")).strip() == "41", "the cold start restores the same snapshot"
    assert g.launches == 4
    await g.run("%gpu release")
    assert g.status.snapshot()["prestart"]["ready"] is True, "a cell ran: the next release may pre-start"


async def test_a_prestart_while_a_kernel_runs_or_starts_is_a_no_op(start_gateway: GatewayFactory) -> None:
    g = await start_gateway()
    await g.run("x = 1")
    link = g.remote.link
    await g.prestart()
    assert g.remote.link is link and g.remote.launch is None and g.launches == 1
    assert g.status.prestart_note == "" and g.remote.prestarted_at is None

    await g.run("%gpu release")
    cell = g.client.execute("print(x + 1)")  # sent, not awaited: its launch runs while the prestart comes
    await g.until(lambda: g.remote.launch is not None, "the cell's launch starts")
    launch = g.remote.launch
    await g.prestart()  # behind the cell on the shell channel: its launch is under way
    assert g.remote.launch is launch and not launch.prestart and g.status.prestart_note == ""
    reply = await g.shell_reply(cell)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert g.launches == 2 and g.remote.prestarted_at is None


async def test_a_prestart_that_would_pay_is_refused_silently(start_gateway: GatewayFactory) -> None:
    g = await start_gateway(PUBLIC_ONLY)
    await g.released_after("x = 1")  # the user's own cell may burst to the public member
    assert g.status.snapshot()["prestart"]["ready"] is True
    await g.prestart()
    assert g.status.state == KernelState.RELEASED and g.remote.launch is None and g.launches == 1
    assert "a pre-start never pays" in g.status.prestart_note, g.status.prestart_note
    out = await g.run("%gpu status")
    assert "pre-start: no pre-start: the GPU would come from a public member" in out, out
    assert "Pre-start: no pre-start: the GPU would come from a public member" in await g.run("%gpu explain")
    assert not [e for e in g.events if e["kind"] in ("error", "prestarted")], g.events
    assert g.status.snapshot()["prestart"]["ready"] is False, "refused: asked once until a cell runs"


# -- the notebook's first GPU kernel (release.prestart.first): pre-started when the user types code ----------


async def test_typing_code_prestarts_the_first_kernel_and_the_first_cell_runs_on_it(
    start_gateway: GatewayFactory,
) -> None:
    g = await start_gateway()
    assert g.status.state == KernelState.CPU_ONLY
    assert g.status.snapshot()["prestart"]["first"] is True
    for cell in ("markdown", "run", None):  # writing text, running a markdown cell, an older client
        await g.prestart(cell)
        assert g.status.state == KernelState.CPU_ONLY and g.remote.launch is None and g.launches == 0, cell
        assert "not code being typed" in g.status.prestart_note, (cell, g.status.prestart_note)
    assert g.status.snapshot()["prestart"]["first"] is True, "refused: the chance is still open"

    await g.prestart("code")
    await g.until(lambda: g.remote.prestarted_at is not None, "the pre-started first kernel is connected")
    assert g.status.state == KernelState.RUNNING and g.launches == 1
    started = await g.event("prestarted")
    assert "first kernel, pre-started when you started typing code" in started["message"], started
    assert not any(e["kind"] == "started" for e in g.events), "a pre-start is not announced as a start"
    snap = g.status.snapshot()["prestart"]
    assert snap is not None and snap["holding"] is True and snap["first"] is False and snap["ready"] is False
    assert g.status.prestart_note == "first kernel pre-started on local/local when you started typing code"
    out = await g.run("%gpu status")
    assert "GPU (auto): running" in out and "idle:   given back in 2 min unless a cell runs" in out, out
    assert "pre-start: first kernel pre-started on local/local" in out, out
    pid = await g.remote_value("__import__('os').getpid()")

    assert (await g.run("import os; print(os.getpid())")).strip() == pid, "the first cell runs on it"
    assert g.launches == 1, "no launch of the cell's own"
    assert g.remote.prestarted_at is None and g.status.prestart_holding is False
    await g.kept_past_the_hold(launches=1)


async def test_an_unused_first_kernel_goes_back_to_cpu_only_after_the_hold(
    start_gateway: GatewayFactory,
) -> None:
    g = await start_gateway()
    await g.prestart("code")
    await g.until(lambda: g.remote.prestarted_at is not None, "the pre-started first kernel is connected")
    await g.clock.advance(DEFAULT_HOLD_S + 5)
    await g.until(lambda: g.status.state == KernelState.CPU_ONLY, "the unused first kernel is dropped")
    dropped = await g.event("prestart_dropped")
    assert "Pre-started first GPU kernel given back after 2 min unused" in dropped["message"], dropped
    assert "the next code cell starts a GPU kernel" in dropped["message"], dropped
    assert not any(e["kind"] == "released" for e in g.events), g.events
    assert g.status.last_release is None, "nothing was released from a cell's point of view"
    assert g.remote.link is None and g.launches == 1 and not g.kernel.requests.carry.saved
    out = await g.run("%gpu status")
    assert out.startswith("GPU (auto): cpu only"), out
    assert "last release" not in out, out
    assert "pre-start: dropped after 2 min unused: first kernel, pre-started on local/local" in out, out

    assert g.status.snapshot()["prestart"]["first"] is True, "unused, it gives one more chance to code"
    await g.prestart("code")
    await g.until(lambda: g.remote.prestarted_at is not None, "the second chance's first kernel is connected")
    await g.clock.advance(DEFAULT_HOLD_S + 5)
    await g.until(lambda: g.status.state == KernelState.CPU_ONLY and g.remote.link is None, "dropped again")
    assert g.status.snapshot()["prestart"]["first"] is False, "no third pre-start until a cell ran"
    await g.prestart("code")
    assert g.status.state == KernelState.CPU_ONLY and g.remote.launch is None and g.launches == 2
    assert "already pre-started once" in g.status.prestart_note, g.status.prestart_note
    assert (await g.run("print(6 * 7)")).strip() == "42"
    assert g.launches == 3 and g.status.state == KernelState.RUNNING


async def test_a_cell_sent_while_the_first_kernel_starts_adopts_the_prestart(
    start_gateway: GatewayFactory,
) -> None:
    g = await start_gateway()
    g.gate = asyncio.Event()
    await g.prestart("code")
    launch = g.remote.launch
    assert launch is not None and launch.prestart and launch.first_kernel
    cell = g.client.execute("print('on the pre-started kernel')")
    await g.until(lambda: not launch.prestart, "the cell adopts the pre-start's launch")
    g.gate.set()
    reply = await g.shell_reply(cell)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert g.launches == 1 and g.status.state == KernelState.RUNNING
    assert g.remote.prestarted_at is None and g.status.prestart_holding is False
    await g.event("started")  # the cell's own start from here on, announced as one
    assert not any(e["kind"] == "prestarted" for e in g.events), g.events


async def test_no_first_kernel_prestart_when_the_policy_says_first_false(
    start_gateway: GatewayFactory,
) -> None:
    g = await start_gateway(_policy_with(first=False))
    snap = g.status.snapshot()["prestart"]
    assert snap is not None and snap["first"] is False and snap["ready"] is False
    await g.prestart("code")
    assert g.status.state == KernelState.CPU_ONLY and g.remote.launch is None and g.launches == 0
    assert "release.prestart.first: false" in g.status.prestart_note, g.status.prestart_note
    await g.released_after("x = 41")  # a released notebook is still pre-started on any activity
    await g.prestart("markdown")
    await g.until(lambda: g.remote.prestarted_at is not None, "the released kernel is pre-started")
    assert g.launches == 2 and await g.remote_value("x") == "41"


async def test_a_first_kernel_prestart_that_would_pay_is_refused(start_gateway: GatewayFactory) -> None:
    g = await start_gateway(PUBLIC_ONLY)
    await g.prestart("code")
    assert g.status.state == KernelState.CPU_ONLY and g.remote.launch is None and g.launches == 0
    assert g.status.prestart_note == (
        "first kernel: no pre-start: the GPU would come from a public member, and a pre-start never pays"
    )
    assert "Pre-start: first kernel: no pre-start" in await g.run("%gpu explain")
    assert not [e for e in g.events if e["kind"] in ("error", "prestarted", "burst")], g.events
    assert g.status.snapshot()["prestart"]["first"] is False, "refused: asked once until a cell runs"


async def test_a_prestart_with_a_bad_cell_is_refused_clearly_and_the_kernel_keeps_working(
    start_gateway: GatewayFactory,
) -> None:
    g = await start_gateway()
    errors: list[str] = []

    def error(m: dict[str, Any]) -> bool:
        data = m["content"].get("data") if m["msg_type"] == "comm_msg" else None
        if isinstance(data, dict) and data.get("type") == "error":
            errors.append(data["message"])
            return True
        return False

    for bad in ("python", ["code"], 3):
        g.send("comm_msg", {"action": "prestart", "cell": bad})
        await g.iopub_until(error, f"the error answer to cell={bad!r}")
        assert errors[-1:] == [f"prestart: cell must be one of ['code', 'markdown', 'run'], not {bad!r}"], (
            errors
        )
    assert g.status.state == KernelState.CPU_ONLY and g.launches == 0 and g.status.prestart_note == ""
    assert (await g.run("print(1 + 1)")).strip() == "2"


async def test_the_first_kernel_is_placed_with_the_sessions_gpu_choices_so_far(
    start_gateway: GatewayFactory,
) -> None:
    g = await start_gateway()
    out = await g.run("%gpu gpus=2")  # a cell of %gpu lines only: answered without a GPU kernel
    assert "GPU request:" in out and g.status.state == KernelState.CPU_ONLY and g.launches == 0, out
    await g.prestart("code")
    await g.until(lambda: g.remote.prestarted_at is not None, "the pre-started first kernel is connected")
    assert g.status.gpu_count == 2 and g.status.decision is not None and g.status.decision.gpu_count == 2
    assert (await g.run("print('two')")).strip() == "two"
    assert g.launches == 1, "the request the kernel was placed for is the cell's: no move"


async def test_a_first_kernel_that_dies_unused_leaves_the_notebook_cpu_only(
    start_gateway: GatewayFactory,
) -> None:
    g = await start_gateway()
    await g.prestart("code")
    await g.until(lambda: g.remote.prestarted_at is not None, "the pre-started first kernel is connected")
    pid = int(await g.remote_value("__import__('os').getpid()"))
    os.kill(pid, signal.SIGKILL)  # the OOM killer, a node lost: before any cell used it
    await g.until(lambda: g.status.state == KernelState.CPU_ONLY, "back to cpu_only, not released")
    lost = await g.event("error")
    assert lost["message"] == (
        "The pre-started first GPU kernel ended before any cell used it (killed); nothing was lost. "
        "The next code cell starts a GPU kernel."
    ), lost
    assert g.status.last_release is None and g.remote.link is None
    out = await g.run("%gpu status")
    assert out.startswith("GPU (auto): cpu only"), out
    assert (await g.run("print(6 * 7)")).strip() == "42"
    assert g.launches == 2 and g.status.state == KernelState.RUNNING
