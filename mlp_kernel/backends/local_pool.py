"""The local backend's warm pool: pre-started ipykernels per flavor that a cold start claims (issue 18 §3).

Why: a cold start costs the user the kernel's start (seconds here, tens of seconds for a pod) on top of the
restore of their variables. A flavor with ``warm_pool: N`` keeps up to N kernels of ``warm_pool_gpus`` GPUs
started; a launch of that size takes one and pays only the claim (rekey, chdir) and the restore.

How a claim stays safe and exclusive:
- *Exclusive*: pool kernels are entries of the machine's GPU ledger (``local_queue``), owned by the kernel's
  own process; ``LocalQuota.claim_pool`` turns one into the claiming gateway's entry under the ledger's
  exclusive lock, so two gateways can never get the same kernel.
- *The user's key*: a pool kernel is started with a fresh random key in its own 0600 connection file. The
  claim connects with that key and sends one silent execute that sets the kernel's ``session.key`` to the
  user's key (jupyter_client's Session recomputes its HMAC on the change), then waits for the reply signed
  with the user's key. From then on the kernel signs and checks with the user's key, so the gateway's relay
  forwards frames untouched, as for a kernel started with that key (``gateway/relay.py``): nothing on the
  hot path changes. The pool key dies with the claim; the user's key travels once, over the kernel's own
  channel (a Unix socket in a 0700 directory with ``ipc``, loopback with ``tcp``), in a silent request
  (no ``execute_input`` on iopub, no history). The pool belongs to the user's Jupyter runtime directory
  (like the ledger), so a pool kernel is only ever claimed by the same user's notebooks.
- *Working directory and variables*: the same execute changes to the launch's working directory (the
  notebook's, or a new empty one for ``local_workdir: empty``) and sets ``MLP_*`` variables; the gateway's
  carry-over restore runs after connect as for any kernel (``gateway/carryover.py``).
- *Lifetime*: a pool kernel is started detached (a shell that exits at once, so no gateway is its parent),
  with a thread that ends it after ``warm_pool_idle`` unless claimed (the pool follows demand; nothing
  reaps forgotten kernels otherwise). The claim replaces that with a watch on the claiming gateway's
  process: the kernel ends within a second of the gateway's death, as ``JPY_PARENT_PID`` does for kernels
  the backend starts itself.
- *Ahead of the claim*: what a claimed kernel would run on the user's path and what is the same for every
  user runs at the pool kernel's start: the snapshot agent's code is compiled (``prime_code``), so the
  restore of the user's variables after the claim only loads them.
- *Refill*: after every claim or miss of the pool's size (demand), in the background, on GPUs nobody holds
  or waits for. The ledger's users come first: a user's launch that does not fit ends unclaimed pool kernels.

The code sent to kernels is constant; the values (key, directory, pid, seconds) travel as one JSON literal,
never spliced into the source.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..snapshot.codegen import prime_code
from .base import KernelFiles, RemoteKernel
from .local_queue import LocalQuota, _process
from .rekey import rekey, wait_ready

log = logging.getLogger(__name__)

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
READY_TIMEOUT_S = 60.0
CLAIM_TIMEOUT_S = 10.0
REFILL_DELAY_S = 5.0
"""A refill waits this long after the launch that asked for it, so starting the pool's next kernel does not
compete for the CPU with the user's own start and restore (measured: on 2 cores it doubled the restore)."""

# Run at the pool kernel's start, in a namespace of its own (the user's gets no names): end the kernel after
# the idle limit unless a claim set sys._mlp_pool_claimed.
_EXPIRE_SRC = """
import os, sys, threading, time

def expire():
    time.sleep(IDLE_S)
    if not getattr(sys, "_mlp_pool_claimed", False):
        os._exit(0)

threading.Thread(target=expire, daemon=True).start()
"""


def _expire_line(idle_s: float) -> str:
    return f"exec({_EXPIRE_SRC!r}, {{'IDLE_S': {float(idle_s)!r}}})"


@dataclass(frozen=True)
class PoolSpec:
    """A flavor's pool: ``size`` kernels of ``gpus`` GPUs, each ending after ``idle_s`` unclaimed."""

    size: int
    gpus: int
    idle_s: float


@dataclass(frozen=True)
class Claimed:
    """A claimed pool kernel: its process and connection (now keyed with the user's key)."""

    pid: int
    start: str
    connection: dict[str, Any]
    connection_file: Path
    sock_dir: Path | None

    def remote(self, kernel_id: str, member: str, flavor: str, node: str, files: KernelFiles) -> RemoteKernel:
        """The kernel as the gateway connects to it; ``files``: what the claim gave it (its directory), as
        for a kernel the backend starts, so the gateway need not ask the kernel."""
        c = self.connection
        # agent_primed: it ran ``prime_code`` before the claim, so the restore may skip the agent's source
        handle = {"pid": self.pid, "start_time": self.start, "warm_pool": True, "agent_primed": True}
        shell, iopub, stdin, control, hb = (
            int(c[f"{ch}_port"]) for ch in ("shell", "iopub", "stdin", "control", "hb")
        )
        remote = RemoteKernel(kernel_id, c["ip"], shell, iopub, stdin, control, hb, transport=c["transport"])
        return replace(remote, member=member, flavor=flavor, node=node, handle=handle, files=files)

    def alive(self) -> bool:
        """The kernel's process still runs (same pid and start time, not a zombie)."""
        proc = _process(self.pid)
        return proc is not None and proc[0] != "Z" and proc[1] == self.start

    def output_tail(self) -> str:
        try:
            return _log_file(self.connection_file).read_text(errors="replace")[-4096:]
        except OSError:
            return ""

    async def end(self) -> None:
        """SIGTERM, SIGKILL after 5 s; then its log goes (the backend removes the rest)."""
        import signal

        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while self.alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.alive():
            _kill(self.pid)
        _log_file(self.connection_file).unlink(missing_ok=True)


def _log_file(connection_file: Path | str) -> Path:
    return Path(str(connection_file)[: -len(".json")] + ".log")


class LocalPool:
    """Starts, claims and refills the warm pools of this user's machine (one ledger per runtime dir)."""

    def __init__(
        self,
        quota: LocalQuota,
        python: str,
        runtime_dir: Path,
        extra_args: list[str],
        transport: str = "ipc",
    ) -> None:
        self.quota = quota
        self.python = python
        self.runtime_dir = Path(runtime_dir)
        self.extra_args = list(extra_args)
        self.transport = transport
        self._refills: set[asyncio.Task[int]] = set()

    # -- claim ----------------------------------------------------------------------------------------------
    async def claim(
        self, kernel_id: str, flavor: str, gpus: int, key: str, cwd: str, env: dict[str, str]
    ) -> Claimed | None:
        """Take a ready pool kernel of ``flavor`` with ``gpus`` GPUs for ``kernel_id`` and make it the user's
        (key, directory, environment). None when the pool has none, or the claimed one failed (it is ended
        and its GPUs given back, and the caller starts a kernel the usual way)."""
        entry = self.quota.claim_pool(kernel_id, flavor, gpus)
        if entry is None:
            return None
        conn = dict(entry["connection"])
        args = {"key": key, "cwd": cwd, "env": env, "owner": os.getpid()}
        try:
            await asyncio.to_thread(rekey, conn, args, CLAIM_TIMEOUT_S)
        except Exception as exc:  # a kernel that died or hangs: end it, the launch cold-starts instead
            log.warning("warm-pool kernel %s could not be claimed: %s", entry["kernel_id"], exc)
            _kill(int(entry["pid"]))
            self.quota.release(kernel_id)
            _remove(entry)
            return None
        conn["key"] = key
        Path(entry["connection_file"]).write_text(json.dumps(conn))  # the file now says the user's key
        sock = entry.get("sock_dir")
        return Claimed(
            int(entry["pid"]),
            str(entry["start"]),
            conn,
            Path(entry["connection_file"]),
            Path(sock) if sock else None,
        )

    # -- refill ---------------------------------------------------------------------------------------------
    def refill_soon(self, flavor: str, spec: PoolSpec, capacity: int | None, env: dict[str, str]) -> None:
        """Refill ``flavor``'s pool in the background (the launch that triggered it does not wait)."""
        task = asyncio.ensure_future(self.refill(flavor, spec, capacity, env, REFILL_DELAY_S))
        self._refills.add(task)
        task.add_done_callback(self._refills.discard)

    async def refill(
        self, flavor: str, spec: PoolSpec, capacity: int | None, env: dict[str, str], delay_s: float = 0.0
    ) -> int:
        """After ``delay_s``, start pool kernels until ``flavor`` has ``spec.size`` (ready or starting) or no
        spare GPUs; the number started and ready."""
        await asyncio.sleep(delay_s)
        missing = spec.size - len(self.quota.pool_kernels(flavor))
        started = await asyncio.gather(*(self._start(flavor, spec, capacity, env) for _ in range(missing)))
        return sum(started)

    async def _start(self, flavor: str, spec: PoolSpec, capacity: int | None, env: dict[str, str]) -> bool:
        pool_id = "pool-" + secrets.token_hex(6)
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        conn, sock_dir = self._connection()
        fd, name = tempfile.mkstemp(prefix="mlp-pool-", suffix=".json", dir=self.runtime_dir)
        with os.fdopen(fd, "w") as f:  # 0600: the pool key stays private
            json.dump(conn, f)
        entry = {
            "kernel_id": pool_id, "flavor": flavor, "gpus": spec.gpus, "capacity": capacity,
            "connection": conn, "connection_file": name, "sock_dir": str(sock_dir) if sock_dir else None,
        }  # fmt: skip
        if not self.quota.add_pool(dict(entry)):  # no spare GPUs (or someone waits): the pool stays short
            _remove(entry)
            return False
        pid = None
        try:
            pid = await asyncio.to_thread(self._spawn, name, spec.idle_s, env)
            await asyncio.to_thread(wait_ready, conn, READY_TIMEOUT_S, prime_code())
            proc = _process(pid)
            if proc is None or not self.quota.pool_ready(pool_id, pid, proc[1]):
                raise RuntimeError("its GPUs were taken for a user while it started")
            return True
        except BaseException as exc:  # cancelled too (the gateway is stopping): no half-started kernel stays
            log.warning("warm-pool kernel for %s not started: %s", flavor, exc)
            if pid is not None:
                _kill(pid)
            self.quota.release(pool_id)
            _remove(entry)
            if not isinstance(exc, Exception):
                raise
            return False

    def _connection(self) -> tuple[dict[str, Any], Path | None]:
        if self.transport == "ipc":
            sock_dir = Path(tempfile.mkdtemp(prefix="mlp-ipc-", dir=self.runtime_dir))
            ip, ports = str(sock_dir / "k"), {c: i + 1 for i, c in enumerate(CHANNELS)}
        else:
            sock_dir, ip = None, "127.0.0.1"
            ports = dict(zip(CHANNELS, free_ports(len(CHANNELS)), strict=True))
        conn: dict[str, Any] = {f"{c}_port": p for c, p in ports.items()}
        conn.update(
            ip=ip, transport=self.transport, key=secrets.token_hex(32), signature_scheme="hmac-sha256",
            kernel_name="python3",
        )  # fmt: skip
        return conn, sock_dir

    def _spawn(self, connection_file: str, idle_s: float, env: dict[str, str]) -> int:
        """Start the kernel detached (a shell that backgrounds it and exits, so no gateway is its parent and
        a gateway's end does not end it); its pid. Output goes to a log next to the connection file."""
        full = {k: v for k, v in os.environ.items() if not k.startswith(("MLP_KERNEL_", "JPY_PARENT_PID"))}
        full.update(env, MLP_POOL_LOG=str(_log_file(connection_file)))
        argv = [self.python, "-m", "ipykernel_launcher", "-f", connection_file, *self.extra_args]
        argv.append(f"--IPKernelApp.exec_lines={json.dumps([_expire_line(idle_s)])}")
        out = subprocess.run(
            ["/bin/sh", "-c", '"$@" >"$MLP_POOL_LOG" 2>&1 </dev/null & echo $!', "sh", *argv],
            env=full,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
            start_new_session=True,
        )
        return int(out.stdout.strip())


def free_ports(n: int) -> list[int]:
    """``n`` loopback TCP ports free right now (for ``transport: tcp``)."""
    import socket

    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _kill(pid: int) -> None:
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _remove(entry: dict[str, Any]) -> None:
    Path(entry["connection_file"]).unlink(missing_ok=True)
    _log_file(entry["connection_file"]).unlink(missing_ok=True)
    if entry.get("sock_dir"):
        import shutil

        shutil.rmtree(entry["sock_dir"], ignore_errors=True)
