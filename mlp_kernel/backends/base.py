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

Two capabilities are optional, each a small Protocol a backend implements or not: ``Leased`` (its kernels
carry a lease the gateway renews, or ``mlp-kernel gc`` reclaims them) and ``StateReading`` (it reads its
members' live queues for placement). The router (``BackendRouter``, the gateway's ``GatewayBackend``) checks
them with ``isinstance`` once, so the gateway calls every method unconditionally and nothing probes with
``getattr``. Each method below says who calls it and when, as jupyter_client's ``KernelProvisionerBase`` does.

The same key and signature scheme as the gateway's own connection file must be used for the remote kernel, so
frames can be relayed without re-signing.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..placement.types import Decision, GpuRequest
from ..protocol import ExitReason, FilesMode, Phase

if TYPE_CHECKING:
    from ..placement import ClusterState, Member, Policy

__all__ = ["ExitReason", "FilesMode", "Phase"]  # re-exported: backends import them from here


@dataclass(frozen=True)
class KernelFiles:
    """What a backend gave a kernel of the user's files: the workspace volume it mounted (``VOLUME``), the
    notebook server's own disk (``LOCAL``) or nothing (``NONE``), and where the kernel starts. The gateway
    adds what ``workspace_sync`` copied and tells the user (``FilesInfo`` of the status snapshot)."""

    mode: FilesMode = FilesMode.NONE
    working_dir: str | None = None
    workspace_claim: str | None = None
    workspace_path: str | None = None
    read_only: bool = False
    packages_claim: str | None = None
    packages_path: str | None = None


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
    files: KernelFiles = field(default_factory=KernelFiles)  # what it sees of the user's files

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
    """What every backend implements: start, watch and release remote kernels (the lifecycle above).

    The gateway never holds a backend directly: it holds a ``BackendRouter`` (``GatewayBackend``), which
    sends each call to the backend of the member placement chose. ``mlp-kernel gc`` and the provisioner's
    clean-up call ``release_record`` on a backend of their own.
    """

    name: str
    """The policy's ``members.<m>.backend`` value that selects this backend (``local``, ``kubernetes``);
    written into handle records so ``release_record`` reaches the right backend."""

    def launch(self, spec: LaunchSpec) -> AsyncGenerator[LaunchEvent, None]:
        """Called by the gateway's launch when placement chose a member on this backend and the user ran a
        GPU cell (or ``%gpu`` moved the kernel). Yields the steps as they happen and ends with one
        ``connected`` event (``remote`` set) or raises ``LaunchError`` saying why. Closed early (the user
        interrupted, or the gateway re-places a queued kernel elsewhere): deletes what it created."""
        ...

    async def wait_exit(self, remote: RemoteKernel) -> ExitInfo:
        """Called by the gateway right after ``connected``, awaited for as long as the kernel is in use;
        returns when the remote kernel is gone without being asked (preempted, OOMKilled, node lost,
        crashed), or with ``ExitReason.RELEASED`` after this backend's ``release``. Cancelled when the
        gateway releases the kernel itself."""
        ...

    async def release(self, remote: RemoteKernel) -> None:
        """Called by the gateway when the kernel was idle too long, the user ran ``%gpu release`` or moved it,
        the launch was abandoned after ``connected``, or the notebook shut down. Frees everything the kernel
        held; idempotent, and safe on a kernel that already died."""
        ...

    def handle_record(self, remote: RemoteKernel) -> dict[str, Any]:
        """Called by the gateway once the kernel is connected: a small JSON-able record it writes next to its
        connection file, so that ``release_record`` can free the kernel after the gateway itself died."""
        ...

    async def release_record(self, record: dict[str, Any]) -> bool:
        """Called by the provisioner when the gateway process ended without releasing (killed, crashed), and
        by ``mlp-kernel gc`` for orphans. True when there was still something to free."""
        ...


@runtime_checkable
class Leased(Protocol):
    """A backend whose kernels are reclaimed (``mlp-kernel gc``) unless their gateway shows it is alive."""

    @property
    def lease_duration_s(self) -> float:
        """How long a kernel's lease lasts without renewal; the gateway renews every third of it."""
        ...

    async def renew(self, remote: RemoteKernel) -> None:
        """Called by the gateway at once after ``connected`` and then every third of ``lease_duration_s``
        while the kernel is in use; recreates a lease that was lost. Errors are retried by the caller."""
        ...


@runtime_checkable
class StateReading(Protocol):
    """A backend that can read its members' live queue state (Kueue quota, usage, pending workloads)."""

    async def cluster_state(self, policy: Policy, members: Sequence[Member]) -> ClusterState:
        """Called by the router each time the gateway asks placement (a GPU cell, a re-placement while
        queued), with the policy's members on this backend; members not given count with their declared
        capacity. Retries transient API errors itself; raises when a member cannot be read."""
        ...


class GatewayBackend(Backend, Protocol):
    """What the gateway holds (``BackendRouter``): every backend's calls, plus the optional ones answered
    for whichever backend owns the kernel, so the gateway never probes what a backend can do."""

    async def cluster_state(self, policy: Policy) -> ClusterState:
        """Called by the gateway's request state before each placement: live state where a member's backend
        is ``StateReading``, the declared capacity for the other members."""
        ...

    def holds_lease(self, remote: RemoteKernel) -> bool:
        """Called by the gateway once after ``connected``: whether ``remote`` needs ``renew`` calls at all."""
        ...

    async def renew(self, remote: RemoteKernel) -> None:
        """Called by the gateway while ``remote`` is in use, when ``holds_lease``: see ``Leased.renew``."""
        ...

    def renew_interval_s(self, remote: RemoteKernel, at_most: float) -> float:
        """Called by the gateway once after ``connected``: how often to renew, a third of the lease, at most
        ``at_most``."""
        ...
