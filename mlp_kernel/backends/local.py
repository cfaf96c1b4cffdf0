"""The ``local`` backend: the remote kernel is an ipykernel subprocess on this machine.

It is the reference implementation of the backend contract (small enough to read in one sitting), the
embedded default so ``jupyter lab`` works on a laptop, and what the tests use. With a policy that declares
several members and flavors all on ``backend: local`` it models the platform's pools on one machine: the
kernel gets ``MLP_MEMBER``/``MLP_FLAVOR``/``MLP_GPU_MODEL`` in its environment
so a demo can show where it runs.

Output: the kernel's stdout and stderr (its start-up banner, what native libraries write to the process's file
descriptors) are copied to the gateway's stderr, where they went before (the server's log), and the last few
KB are kept, so a kernel that exits with an error is explained with its last output, as the Kubernetes backend
does with the pod's termination message.

Quota: a flavor's ``capacity_gpus`` is its quota on this machine, shared by every notebook's gateway through
``local_queue.LocalQuota``: a launch beyond it waits in the flavor's queue (position shown, as Kueue's
visibility API gives it), and placement reads the same ledger (``cluster_state``), so a full private pool
queues and, under the burst rule, bursts to a public member, as on the platform.

Working directory: the gateway's (the notebook's directory), as a kernel pod on the private member sees the
user's workspace volume; a member with ``local_workdir: empty`` starts its kernels in a new empty directory,
removed at release, as a pod on a public member starts with nothing of the user's (only ``workspace_sync``
brings files there): so the public path is tested on one machine as it behaves on the platform.

Warm pool (``local_pool.py``, a flavor's ``warm_pool``): a launch of the pool's size first claims a
pre-started kernel (rekeyed to the user's key, moved to the working directory) and every launch of that size
refills the pool in the background; a claimed kernel is not our child, so its end is watched through /proc.

Orphans: the kernel gets ``JPY_PARENT_PID`` set to the gateway's pid, so ipykernel's own parent poller ends it
within a second if the gateway is killed; the provisioner also kills it from the handle record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .base import (
    KERNEL_ARGS,
    ExitInfo,
    ExitReason,
    FilesMode,
    KernelFiles,
    LaunchError,
    LaunchEvent,
    LaunchSpec,
    Phase,
    RemoteKernel,
    with_output,
)
from .local_pool import CHANNELS, Claimed, LocalPool, PoolSpec, free_ports
from .local_queue import LocalQuota

if TYPE_CHECKING:
    from ..placement import ClusterState, Member, Policy

QUEUE_POLL_S = 0.5  # a waiting launch asks the ledger again this often


class _OutputTail:
    """Copies a kernel's output to the gateway's stderr and keeps its end (a kernel's traceback fits)."""

    KEEP = 4096

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.data = b""
        self.task = asyncio.ensure_future(self._copy(stream))

    async def _copy(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.data = (self.data + chunk)[-self.KEEP :]
            try:
                sys.stderr.buffer.write(chunk)
                sys.stderr.flush()
            except (OSError, ValueError, AttributeError):  # no usable stderr: the tail is still kept
                pass

    async def text(self, timeout: float = 1.0) -> str:
        """The output's end, once the kernel's end of the pipe closed (or after ``timeout``: a process the
        kernel started may still hold it)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        return self.data.decode("utf-8", "replace")


def _start_time(pid: int) -> str | None:
    """The process start time from /proc (guards against killing a recycled pid)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class LocalBackend:
    name = "local"

    def __init__(
        self,
        python: str | None = None,
        runtime_dir: str | os.PathLike[str] | None = None,
        extra_args: list[str] | tuple[str, ...] | None = None,
        transport: str = "ipc",
        quota: LocalQuota | None = None,
        capacity: Callable[[str], int | None] | None = None,
        workdir: Callable[[str], str] | None = None,
        pool: Callable[[str], PoolSpec | None] | None = None,
    ) -> None:
        """``quota`` (shared by the gateways of one runtime directory) and ``capacity`` (a flavor's GPUs,
        None = unlimited) make launches wait for free GPUs; without them every launch starts at once.
        ``workdir`` says per member where its kernels start: ``notebook`` (this process's directory, the
        default) or ``empty`` (a new empty directory). ``pool`` gives a flavor's warm pool (None: none);
        it needs ``quota``, whose ledger the pool's kernels live in."""
        self.python = python or sys.executable
        self.quota = quota
        self.capacity = capacity or (lambda flavor: None)
        self.workdir = workdir or (lambda member: "notebook")
        self._workdirs: dict[str, Path] = {}
        self.transport = transport
        self._dirs: dict[str, Path] = {}
        self.runtime_dir = Path(runtime_dir or tempfile.gettempdir())
        self.extra_args = list(KERNEL_ARGS if extra_args is None else extra_args)
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._files: dict[str, Path] = {}
        self._output: dict[str, _OutputTail] = {}
        self.pool_spec = pool or (lambda flavor: None)
        self._pool = (
            LocalPool(quota, self.python, self.runtime_dir, self.extra_args, transport) if quota else None
        )
        self._claimed: dict[str, Claimed] = {}

    async def launch(self, spec: LaunchSpec) -> AsyncGenerator[LaunchEvent, None]:
        d = spec.decision
        claimed = await self._claim(spec)
        if claimed is not None:
            yield claimed
            return
        if self.quota is not None and d.gpu_count > 0:
            try:
                async for queued in self._wait_for_gpus(spec):
                    yield queued
            except BaseException:  # cancelled, or the generator closed while queued: leave the queue
                self.quota.release(spec.kernel_id)
                raise
        try:
            async for ev in self._start(spec):
                yield ev
        except BaseException:
            if self.quota is not None and spec.kernel_id not in self._procs:  # never started: give back
                self.quota.release(spec.kernel_id)
            raise

    async def _claim(self, spec: LaunchSpec) -> LaunchEvent | None:
        """A warm-pool kernel made the user's, as the ``connected`` event; None to start one as usual. Either
        way a launch of the pool's size is demand: the pool refills in the background."""
        d, flavor = spec.decision, spec.decision.flavor or ""
        pool = self.pool_spec(flavor)
        if self._pool is None or pool is None or pool.size <= 0 or d.gpu_count != pool.gpus:
            return None
        env = {**spec.env, **self._env(d)}
        empty = self._new_workdir(spec.kernel_id, d.member or "")
        cwd = empty or os.getcwd()
        claimed = await self._pool.claim(spec.kernel_id, flavor, d.gpu_count, spec.key, str(cwd), env)
        self._pool.refill_soon(flavor, pool, self.capacity(flavor), env)
        if claimed is None:
            self._remove_workdir(spec.kernel_id)
            return None
        self._claimed[spec.kernel_id] = claimed
        self._files[spec.kernel_id] = claimed.connection_file
        if claimed.sock_dir is not None:
            self._dirs[spec.kernel_id] = claimed.sock_dir
        files = KernelFiles(FilesMode.NONE, str(cwd)) if empty else KernelFiles(FilesMode.LOCAL, str(cwd))
        remote = claimed.remote(spec.kernel_id, d.member or "", flavor, socket.gethostname(), files)
        where = f"{d.member}/{flavor}"
        return LaunchEvent(
            Phase.CONNECTED, f"Claimed warm-pool kernel {claimed.pid} on {where}", remote=remote
        )

    async def _wait_for_gpus(self, spec: LaunchSpec) -> AsyncGenerator[LaunchEvent, None]:
        """Queued events until the flavor has the GPUs (Kueue's StrictFIFO, modelled by ``LocalQuota``)."""
        assert self.quota is not None
        d = spec.decision
        where, capacity = f"{d.member}/{d.flavor}", self.capacity(d.flavor or "")
        last: tuple[int | None, int] | None = None
        started = asyncio.get_running_loop().time()
        while not (ask := self.quota.ask(spec.kernel_id, d.flavor or "", d.gpu_count, capacity)).admitted:
            if (ask.position, ask.held_gpus) != last:
                last = (ask.position, ask.held_gpus)
                text = (
                    f"Queued for {where}, position {ask.position}: {ask.held_gpus} of {capacity} GPUs are "
                    f"in use by notebooks on this machine, {d.gpu_count} requested"
                )
                waited = asyncio.get_running_loop().time() - started
                eta = None if d.expected_wait_s is None else max(0.0, d.expected_wait_s - waited)
                detail = {  # the ETA is placement's estimate (as on Kubernetes), counted down
                    "local_queue": where,
                    "position": ask.position,
                    "eta_s": eta,
                    "waited_s": waited,
                    "reason": "waiting for quota",
                }
                yield LaunchEvent(Phase.QUEUED, text, detail)
            await asyncio.sleep(QUEUE_POLL_S)
        if last is not None:
            yield LaunchEvent(Phase.ADMITTED, f"Admitted to {where}", {"flavor": d.flavor})

    async def cluster_state(self, policy: Policy, members: Sequence[Member]) -> ClusterState:
        """The ledger's use of each flavor of ``members`` (every notebook on this machine), as placement's
        live state: a full private flavor then queues or bursts, as a full ClusterQueue does."""
        from ..placement import ClusterState
        from ..placement.state import FlavorState, MemberState, declared_flavor_state, declared_member_state

        if self.quota is None:  # no ledger: every flavor as declared
            return ClusterState(
                MappingProxyType({m.name: declared_member_state(policy, m.name) for m in members})
            )
        usage = self.quota.usage()
        states = {}
        for m in members:
            flavors = {}
            for f in policy.flavors_of(m.name):
                use = usage.get(f.name)
                declared = declared_flavor_state(policy, f.name)
                flavors[f.name] = FlavorState(
                    nominal_gpus=declared.nominal_gpus,
                    used_gpus=use.held_gpus if use else 0,
                    pending=use.waiting if use else 0,
                )
            states[m.name] = MemberState(
                ready=True,
                source="this machine's GPU ledger (local backend)",
                flavors=MappingProxyType(flavors),
            )
        return ClusterState(members=MappingProxyType(states))

    async def _start(self, spec: LaunchSpec) -> AsyncGenerator[LaunchEvent, None]:
        d = spec.decision
        where = f"{d.member}/{d.flavor}"
        yield LaunchEvent(Phase.STARTING, f"Starting a local kernel on {where}", {"member": d.member})
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        if self.transport == "ipc":
            # Unix sockets in a private directory: faster than loopback TCP, and only this user can connect.
            sock_dir = Path(tempfile.mkdtemp(prefix="mlp-ipc-", dir=self.runtime_dir))
            ip, ports = str(sock_dir / "k"), {c: i + 1 for i, c in enumerate(CHANNELS)}
            self._dirs[spec.kernel_id] = sock_dir
        else:
            ip, ports = "127.0.0.1", dict(zip(CHANNELS, free_ports(len(CHANNELS)), strict=True))
        info: dict[str, Any] = {f"{c}_port": p for c, p in ports.items()}
        info.update(
            ip=ip,
            transport=self.transport,
            key=spec.key,
            signature_scheme=spec.signature_scheme,
            kernel_name="python3",
        )
        fd, name = tempfile.mkstemp(prefix="mlp-remote-", suffix=".json", dir=self.runtime_dir)
        with os.fdopen(fd, "w") as f:  # mkstemp creates the file 0600: the key stays private
            json.dump(info, f)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLP_KERNEL_")}
        env.update(spec.env)
        env.update(self._env(d), JPY_PARENT_PID=str(os.getpid()))
        cwd = self._new_workdir(spec.kernel_id, d.member or "")
        try:
            proc = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "ipykernel_launcher",
                "-f",
                name,
                *self.extra_args,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                cwd=cwd,
            )
        except OSError as exc:
            os.unlink(name)
            self._remove_workdir(spec.kernel_id)
            raise LaunchError(f"Could not start a local kernel with {self.python}: {exc}") from exc
        self._procs[spec.kernel_id] = proc
        assert proc.stdout is not None
        self._output[spec.kernel_id] = _OutputTail(proc.stdout)
        self._files[spec.kernel_id] = Path(name)
        remote = RemoteKernel(
            kernel_id=spec.kernel_id,
            ip=ip,
            transport=self.transport,
            shell_port=ports["shell"],
            iopub_port=ports["iopub"],
            stdin_port=ports["stdin"],
            control_port=ports["control"],
            hb_port=ports["hb"],
            member=d.member or "",
            flavor=d.flavor or "",
            node=socket.gethostname(),
            handle={"pid": proc.pid, "start_time": _start_time(proc.pid)},
            # the notebook server's own disk, or (local_workdir: empty) nothing of the user's
            files=KernelFiles(FilesMode.NONE, str(cwd)) if cwd else KernelFiles(FilesMode.LOCAL, os.getcwd()),
        )
        # From here on the kernel belongs to the gateway: closing this iterator must not release it.
        yield LaunchEvent(Phase.CONNECTED, f"Kernel process {proc.pid} started on {where}", remote=remote)

    @staticmethod
    def _env(d: Any) -> dict[str, str]:
        """Where the kernel runs, in its environment (a demo shows it)."""
        return {
            "MLP_MEMBER": d.member or "",
            "MLP_FLAVOR": d.flavor or "",
            "MLP_GPU_MODEL": d.gpu_model or "",
            "MLP_GPU_COUNT": str(d.gpu_count),
        }

    def _new_workdir(self, kernel_id: str, member: str) -> Path | None:
        """A new empty working directory for a member with ``local_workdir: empty``; None: the notebook's."""
        if self.workdir(member) != "empty":
            return None
        cwd = Path(tempfile.mkdtemp(prefix="mlp-workdir-"))
        self._workdirs[kernel_id] = cwd
        return cwd

    async def wait_exit(self, remote: RemoteKernel) -> ExitInfo:
        if remote.kernel_id in self._claimed:
            return await self._wait_claimed(remote, self._claimed[remote.kernel_id])
        proc = self._procs.get(remote.kernel_id)
        if proc is None:
            return ExitInfo(ExitReason.EXITED, "The GPU kernel is gone.")
        if self.quota is not None and await self._preempted(remote, proc):
            _kill_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            return ExitInfo(
                ExitReason.PREEMPTED,
                f"Your GPU kernel on {remote.member}/{remote.flavor} was preempted to make room for "
                "higher-priority work (a workload with priority on this machine's GPU ledger). Its variables "
                "are lost; the next cell starts a new GPU kernel, which may wait in the queue; "
                "%gpu burst=on budget=flex allows a public GPU if the private pools stay full.",
            )
        rc = await proc.wait()
        if rc < 0 and -rc == signal.SIGKILL:
            return ExitInfo(
                ExitReason.KILLED,
                "The GPU kernel was killed (SIGKILL), for example by the out-of-memory killer. "
                "Its variables are lost; the next cell starts a new kernel.",
            )
        tail = self._output.get(remote.kernel_id)
        output = await tail.text() if tail is not None and rc != 0 else ""
        if rc < 0:
            stopped = f"The GPU kernel was stopped by signal {-rc}; the next cell starts a new one."
            return ExitInfo(ExitReason.KILLED, with_output(stopped, output))
        exited = f"The GPU kernel exited (code {rc}); the next cell starts a new one."
        return ExitInfo(ExitReason.EXITED, with_output(exited, output))

    async def _preempted(self, remote: RemoteKernel, proc: asyncio.subprocess.Process) -> bool:
        """Wait until the kernel ends (False) or a higher-priority workload marks its GPUs (True)."""
        assert self.quota is not None
        ended = asyncio.ensure_future(proc.wait())
        try:
            while not ended.done():
                if self.quota.preempted(remote.kernel_id):
                    return True
                await asyncio.wait({ended}, timeout=QUEUE_POLL_S)
            return False
        finally:
            ended.cancel()

    async def _wait_claimed(self, remote: RemoteKernel, claimed: Claimed) -> ExitInfo:
        """A claimed warm-pool kernel is not our child: watch its process through /proc."""
        while claimed.alive():
            if self.quota is not None and self.quota.preempted(remote.kernel_id):
                _kill_group(claimed.pid, signal.SIGKILL)
                return ExitInfo(
                    ExitReason.PREEMPTED,
                    f"Your GPU kernel on {remote.member}/{remote.flavor} was preempted to make room for "
                    "higher-priority work. Its variables are lost; the next cell starts a new GPU kernel.",
                )
            await asyncio.sleep(QUEUE_POLL_S)
        output = claimed.output_tail()
        return ExitInfo(
            ExitReason.EXITED, with_output("The GPU kernel exited; the next cell starts a new one.", output)
        )

    async def release(self, remote: RemoteKernel) -> None:
        if self.quota is not None:
            self.quota.release(remote.kernel_id)
        claimed = self._claimed.pop(remote.kernel_id, None)
        if claimed is not None:
            await claimed.end()
        proc = self._procs.pop(remote.kernel_id, None)
        path = self._files.pop(remote.kernel_id, None)
        tail = self._output.pop(remote.kernel_id, None)
        if proc is not None and proc.returncode is None:
            _kill_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except asyncio.TimeoutError:
                _kill_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        if tail is not None:
            with contextlib.suppress(asyncio.TimeoutError):  # the rest of its output still reaches the log
                await asyncio.wait_for(tail.task, 1.0)
        if path is not None:
            path.unlink(missing_ok=True)
        sock_dir = self._dirs.pop(remote.kernel_id, None)
        if sock_dir is not None:
            shutil.rmtree(sock_dir, ignore_errors=True)
        self._remove_workdir(remote.kernel_id)

    def _remove_workdir(self, kernel_id: str) -> None:
        workdir = self._workdirs.pop(kernel_id, None)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    def handle_record(self, remote: RemoteKernel) -> dict[str, Any]:
        return {
            "backend": self.name,
            **remote.handle,
            "connection_file": str(self._files.get(remote.kernel_id, "")),
            "workdir": str(self._workdirs.get(remote.kernel_id, "")),
        }

    async def release_record(self, record: dict[str, Any]) -> bool:
        """Kill a kernel recorded by a gateway that is gone. True when something was still running."""
        pid = int(record.get("pid") or 0)
        alive = (
            bool(pid) and record.get("start_time") is not None and _start_time(pid) == record["start_time"]
        )
        if alive:
            _kill_group(pid, signal.SIGKILL)
        if record.get("connection_file"):
            Path(record["connection_file"]).unlink(missing_ok=True)
        workdir = Path(str(record.get("workdir") or ""))
        if workdir.name.startswith("mlp-workdir-") and workdir.parent == Path(tempfile.gettempdir()):
            shutil.rmtree(workdir, ignore_errors=True)  # only a directory this backend made
        return alive
