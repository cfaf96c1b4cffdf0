"""The backend contract: how the gateway starts, watches and releases a remote kernel.

Lifecycle (who calls what, when):

1. The gateway has a ``Decision`` from placement and calls ``backend.launch(spec)``. ``launch`` returns an
   async iterator of ``LaunchEvent``s: ``queued`` / ``admitted`` / ``scheduled`` / ``pulling`` / ``starting``
   as they happen, ending with exactly one ``connected`` event whose ``remote`` holds the connection info the
   gateway should connect its DEALER/SUB sockets to, or with an exception (``LaunchError``) that says why.
   Cancelling the iteration (the user interrupted while queued) must leave nothing behind: the backend's
   ``finally`` clean-up deletes what it created. Once the ``connected`` event has been yielded the remote
   kernel belongs to the gateway: closing the iterator after that must not release it.
2. While the kernel runs, the gateway awaits ``backend.wait_exit(remote)``; it returns an ``ExitInfo`` when
   the remote kernel is gone for any reason the gateway did not ask for (OOMKilled, preempted, node lost,
   crash).
3. ``backend.release(remote)`` shuts the remote kernel down and frees what it held (pod, Secret, quota,
   process). It is idempotent and safe to call on a kernel that already died.
4. ``backend.handle_record(remote)`` is a small JSON-able dict persisted next to the connection file so that
   the provisioner (or ``mlp-kernel gc``) can ``release_record`` it after the gateway itself was killed.

The same key and signature scheme as the gateway's own connection file must be used for the remote kernel, so
frames can be relayed without re-signing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..placement.types import Decision, GpuRequest
from ..protocol import ExitReason, Phase

__all__ = ["ExitReason", "Phase"]  # re-exported: backends import them from here


@dataclass(frozen=True)
class RemoteKernel:
    """A started remote kernel: where to connect, plus the backend's own handle."""

    kernel_id: str
    ip: str
    shell_port: int
    iopub_port: int
    stdin_port: int
    control_port: int
    hb_port: int
    transport: str = "tcp"
    member: str = ""
    flavor: str = ""
    node: str = ""
    handle: dict[str, Any] = field(default_factory=dict)

    def url(self, channel: str) -> str:
        port = getattr(self, f"{channel}_port")
        if self.transport == "ipc":  # jupyter_client's convention: the "ip" is a path prefix
            return f"ipc://{self.ip}-{port}"
        return f"{self.transport}://{self.ip}:{port}"


@dataclass(frozen=True)
class LaunchEvent:
    """One step of a launch, shown to the user in the cell and over the status comm."""

    phase: Phase
    message: str
    detail: dict[str, Any] = field(default_factory=dict)
    remote: RemoteKernel | None = None


@dataclass(frozen=True)
class ExitInfo:
    """Why a remote kernel went away without being asked to."""

    reason: ExitReason  # machine-readable (``mlp_kernel.protocol.ExitReason``)
    message: str  # what the user reads: what happened, why, what to do (first line: the summary)


#: ipykernel options every remote kernel gets unless configured otherwise (the local backend's
#: ``local_kernel_args``; the pod template's command, and the command mlp-kernel sets when a template has
#: none): IPython's input history in memory, not in ``~/.ipython/.../history.sqlite``. The gateway keeps the
#: notebook's history itself (it outlives each kernel); SQLite on a network home (NFS, EFS) hangs kernels
#: (IPython's own advice is ``:memory:``); and the write of every cell costs a ``pass`` cell ~0.65 ms on two
#: cores, ~17% of its round trip (docs/benchmarks.md). ``In``, ``_i``, ``%history`` and ``%recall`` work as
#: before within a kernel.
KERNEL_ARGS = ("--HistoryManager.hist_file=:memory:",)

#: How much of a dead kernel's last output an exit message quotes: the end of a Python traceback (or a native
#: library's last words on stderr) is what tells a user why a kernel died or did not start.
TAIL_LINES = 12
TAIL_CHARS = 1500
#: ipykernel's start-up banner ends with this line and the ``--existing`` line after it; the banner, and
#: whatever came before it, is not why a kernel ended.
BANNER_END = "To connect another client to this kernel, use:"
NOISE = ("[IPKernelApp] WARNING | Kernel is running over TCP without encryption",)


def output_tail(output: str) -> str:
    """The last lines of a kernel's output without ipykernel's banner, bounded; "" when nothing is left."""
    lines = [line.rstrip() for line in output.strip().splitlines() if line.strip()]
    if BANNER_END in lines:
        lines = lines[lines.index(BANNER_END) + 2 :]
    lines = [line for line in lines if not line.startswith(NOISE)]
    tail = "\n".join(lines[-TAIL_LINES:])
    return tail if len(tail) <= TAIL_CHARS else "..." + tail[-TAIL_CHARS:]


def summary(message: str) -> str:
    """The first line of an exit or launch message: what status lines and notifications show (a quoted kernel
    output, see ``with_output``, goes in the cell's error only)."""
    return message.split("\n", 1)[0]


def with_output(message: str, output: str) -> str:
    """``message``, then the kernel's last output when it has any: the gateway shows the first line as the
    cell's status and the whole text in the cell's error."""
    tail = output_tail(output)
    return f"{message}\nIts last output:\n{tail}" if tail else message


@dataclass(frozen=True)
class LaunchSpec:
    """Everything a backend needs to start one remote kernel."""

    kernel_id: str
    key: str
    signature_scheme: str
    decision: Decision
    request: GpuRequest
    user: str = ""
    notebook: str = ""
    team: str = ""
    env: dict[str, str] = field(default_factory=dict)


class LaunchError(RuntimeError):
    """A launch that cannot complete; the message is shown to the user as is."""


class Backend(Protocol):
    name: str

    def launch(self, spec: LaunchSpec) -> AsyncIterator[LaunchEvent]: ...

    async def wait_exit(self, remote: RemoteKernel) -> ExitInfo: ...

    async def release(self, remote: RemoteKernel) -> None: ...

    def handle_record(self, remote: RemoteKernel) -> dict[str, Any]: ...

    async def release_record(self, record: dict[str, Any]) -> bool: ...
