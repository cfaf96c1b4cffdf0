"""The local backend's GPU quota: every gateway on this machine shares one ledger of held and waiting GPUs.

Why: with a policy whose members all run on ``backend: local`` (the demo policy models the platform's pools on
one machine), a flavor's ``capacity_gpus`` is its quota, like a Kueue ClusterQueue's nominal quota. Without a
shared count every notebook got a kernel at once, so the demo never showed a queue, a position, a burst after
the threshold, or what happens when a GPU frees up. One gateway runs per notebook, in its own process, so the
count lives in a small JSON file in the Jupyter runtime directory, changed only under an exclusive ``flock``.

Semantics follow Kueue's StrictFIFO queue: a request is admitted when the flavor has the GPUs free *and* no
earlier request for that flavor is waiting (a big request is not overtaken by small ones). Entries name the
gateway's pid and start time: an entry whose process is gone (a killed gateway, a zombie) is dropped on the
next read, as Kueue drops
the workload of a deleted pod. Nothing here is a security boundary: the ledger models quota for a demo or a
single-user machine; on a cluster, Kueue enforces it.

Warm pool (``local_pool.py``): a pre-started kernel holds its GPUs here as a ``held`` entry with ``pool``
set, owned by the kernel's own process (the entry goes when the kernel does). It is the platform's, and the
lowest priority: ``usage`` (placement's view) does not count it, a user's request that does not fit ends
unclaimed pool kernels first, and ``claim_pool`` hands one to a gateway under the ledger's lock, so no
kernel is ever claimed twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LEDGER_FILE = "mlp-kernel-local-gpus.json"


@dataclass(frozen=True)
class Ask:
    """The outcome of asking for GPUs: admitted, or waiting at ``position`` (1 = next) behind ``ahead``."""

    admitted: bool
    position: int | None = None
    held_gpus: int = 0  # held on the flavor by everyone (this request included once admitted)
    waiting: int = 0  # requests waiting for the flavor, this one included


@dataclass(frozen=True)
class Usage:
    held_gpus: int
    waiting: int


def _process(pid: int) -> tuple[str, str] | None:
    """(state, start time) of process ``pid`` from /proc, None when there is no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], fields[19]
    except (OSError, IndexError):
        return None


def _alive(entry: dict[str, Any]) -> bool:
    """The entry's gateway still runs: same pid *and* start time (a recycled pid is another process), and
    not a zombie (a killed gateway its parent has not reaped yet holds nothing any more)."""
    proc = _process(entry["pid"])
    return proc is not None and proc[0] != "Z" and proc[1] == entry.get("start", proc[1])


class LocalQuota:
    """The ledger at ``runtime_dir/mlp-kernel-local-gpus.json``: ``held`` and ``waiting`` entries of
    ``{kernel_id, flavor, gpus, pid, since}``, the waiting ones in arrival order."""

    def __init__(self, runtime_dir: Path, pid: int | None = None) -> None:
        self.path = Path(runtime_dir) / LEDGER_FILE
        self.pid = pid or os.getpid()
        proc = _process(self.pid)
        self.start = proc[1] if proc else ""

    @contextlib.contextmanager
    def _ledger(self) -> Iterator[dict[str, list[dict[str, Any]]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                data = json.loads(f.read() or "{}")
                if not isinstance(data, dict):
                    data = {}
            except ValueError:  # a torn or hand-edited file: start over (entries of live gateways come back)
                data = {}
            ledger = {
                k: [e for e in data.get(k) or [] if _valid(e) and _alive(e)] for k in ("held", "waiting")
            }
            yield ledger
            f.seek(0)
            f.truncate()
            f.write(json.dumps(ledger))

    def ask(self, kernel_id: str, flavor: str, gpus: int, capacity: int | None, preempt: bool = False) -> Ask:
        """Admit ``kernel_id`` to ``gpus`` GPUs of ``flavor`` if they are free and nobody earlier waits;
        otherwise keep (or put) it in the flavor's queue. Asking again is how a waiting request polls.

        ``preempt``: a higher-priority workload (``mlp-kernel local-load --preempt``): it goes first, and the
        most recently admitted holders of the flavor are marked preempted until enough GPUs would be free;
        their backends see the mark (``preempted``), end the kernels and give the GPUs back, as Kueue
        evicts lower-priority workloads."""
        with self._ledger() as ledger:
            held = [e for e in ledger["held"] if e["flavor"] == flavor]
            mine = next((e for e in held if e["kernel_id"] == kernel_id), None)
            used = sum(int(e["gpus"]) for e in held)
            if mine is not None:
                return Ask(True, held_gpus=used)
            waiting = [e for e in ledger["waiting"] if e["flavor"] == flavor]
            ahead = [e for e in waiting if e["kernel_id"] != kernel_id]
            index = next((i for i, e in enumerate(waiting) if e["kernel_id"] == kernel_id), None)
            first = preempt or index == 0 or (index is None and not ahead)
            if first and capacity is not None and used + gpus > capacity:
                used -= self._end_pool_kernels(ledger, flavor, used + gpus - capacity)
            if preempt and capacity is not None and used + gpus > capacity:
                freeing = sum(int(e["gpus"]) for e in held if e.get("preempted"))
                for victim in sorted(held, key=lambda e: -float(e.get("since", 0))):
                    if used - freeing + gpus <= capacity:
                        break
                    if not victim.get("preempted"):
                        victim["preempted"] = True
                        freeing += int(victim["gpus"])
            if first and (capacity is None or used + gpus <= capacity):
                ledger["waiting"] = [e for e in ledger["waiting"] if e["kernel_id"] != kernel_id]
                ledger["held"].append(self._entry(kernel_id, flavor, gpus))
                return Ask(True, held_gpus=used + gpus, waiting=len(waiting) - (index is not None))
            if index is None:
                entry = self._entry(kernel_id, flavor, gpus)
                ledger["waiting"].append(entry)
                index = len(waiting)
                waiting.append(entry)
            return Ask(False, position=index + 1, held_gpus=used, waiting=len(waiting))

    def _entry(self, kernel_id: str, flavor: str, gpus: int) -> dict[str, Any]:
        return {
            "kernel_id": kernel_id, "flavor": flavor, "gpus": gpus, "pid": self.pid, "start": self.start,
            "since": time.time(),
        }  # fmt: skip

    @staticmethod
    def _end_pool_kernels(ledger: dict[str, list[dict[str, Any]]], flavor: str, gpus: int) -> int:
        """End unclaimed pool kernels of ``flavor`` (not-ready ones first) until ``gpus`` are freed; the GPUs
        freed. The pool never makes a user wait."""
        freed = 0
        pool = [e for e in ledger["held"] if e["flavor"] == flavor and e.get("pool")]
        for e in sorted(pool, key=lambda e: bool(e.get("ready"))):
            if freed >= gpus:
                break
            ledger["held"].remove(e)
            freed += int(e["gpus"])
            if e.get("ready"):  # the entry's pid is the kernel's; a starting one's is its refill's, which
                with contextlib.suppress(ProcessLookupError, PermissionError):  # ends it (``pool_ready``)
                    os.kill(int(e["pid"]), signal.SIGKILL)
        return freed

    def add_pool(self, entry: dict[str, Any]) -> bool:
        """Hold ``entry``'s GPUs for a starting pool kernel if the flavor has them unused and nobody waits
        for it (the pool only takes spare GPUs); False otherwise. ``entry``: ``kernel_id``, ``flavor``,
        ``gpus``, ``capacity`` and what ``local_pool`` keeps. Until ``pool_ready`` the entry is this process's
        (it goes if the refill dies half-way)."""
        with self._ledger() as ledger:
            flavor, gpus, capacity = entry["flavor"], int(entry["gpus"]), entry.pop("capacity")
            used = sum(int(e["gpus"]) for e in ledger["held"] if e["flavor"] == flavor)
            if any(e["flavor"] == flavor for e in ledger["waiting"]):
                return False
            if capacity is not None and used + gpus > capacity:
                return False
            base = self._entry(entry["kernel_id"], flavor, gpus)
            ledger["held"].append({**entry, **base, "pool": True, "ready": False})
            return True

    def pool_ready(self, kernel_id: str, pid: int, start: str) -> bool:
        """The pool kernel ``kernel_id`` (process ``pid`` started at ``start``) answered: it may be claimed
        from now on, and its entry lives as long as that process. False when the entry is gone (its GPUs
        were taken for a user meanwhile): the caller ends the kernel."""
        with self._ledger() as ledger:
            for e in ledger["held"]:
                if e["kernel_id"] == kernel_id and e.get("pool"):
                    e.update(ready=True, since=time.time(), pid=pid, start=start)
                    return True
            return False

    def pool_kernels(self, flavor: str) -> list[dict[str, Any]]:
        """The live, unclaimed pool entries of ``flavor`` (ready or starting)."""
        with self._ledger() as ledger:
            return [dict(e) for e in ledger["held"] if e["flavor"] == flavor and e.get("pool")]

    def claim_pool(self, kernel_id: str, flavor: str, gpus: int) -> dict[str, Any] | None:
        """Atomically take the oldest ready pool kernel of ``flavor`` with exactly ``gpus`` GPUs for
        ``kernel_id``: its entry becomes this gateway's (pid, kernel id), so no other gateway can claim it.
        The entry as it was (its process and connection), or None when there is none."""
        with self._ledger() as ledger:
            pool = [
                e
                for e in ledger["held"]
                if e["flavor"] == flavor and e.get("pool") and e.get("ready") and int(e["gpus"]) == gpus
            ]
            if not pool:
                return None
            e = min(pool, key=lambda e: float(e.get("since", 0)))
            claimed = dict(e)
            ledger["held"].remove(e)
            ledger["held"].append(self._entry(kernel_id, flavor, gpus))
            return claimed

    def preempted(self, kernel_id: str) -> bool:
        """Whether a higher-priority workload marked ``kernel_id``'s GPUs for itself (see ``ask``).

        Read-only, under a shared lock: every running kernel's gateway asks this every ``QUEUE_POLL_S``, and
        through ``_ledger`` each ask checked every entry's process in /proc and rewrote the file (~0.4 ms
        warm, several ms on a busy core, in the gateway's event loop while cells run; docs/benchmarks.md).
        Marks are written under the exclusive lock, so a shared one reads a whole ledger."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return False
        with os.fdopen(fd, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_SH)
            try:
                data = json.loads(f.read() or b"{}")
            except ValueError:
                return False
        held = data.get("held") if isinstance(data, dict) else None
        return any(
            isinstance(e, dict) and e.get("kernel_id") == kernel_id and bool(e.get("preempted"))
            for e in (held if isinstance(held, list) else ())
        )

    def release(self, kernel_id: str) -> None:
        """Give back what ``kernel_id`` holds, or withdraw it from the queue."""
        with self._ledger() as ledger:
            for key in ("held", "waiting"):
                ledger[key] = [e for e in ledger[key] if e["kernel_id"] != kernel_id]

    def usage(self) -> dict[str, Usage]:
        """Per flavor: GPUs held and requests waiting, by every gateway on this machine."""
        out: dict[str, list[int]] = {}
        with self._ledger() as ledger:
            for e in ledger["held"]:  # the warm pool's GPUs are anyone's to take: not counted as used
                out.setdefault(e["flavor"], [0, 0])[0] += 0 if e.get("pool") else int(e["gpus"])
            for e in ledger["waiting"]:
                out.setdefault(e["flavor"], [0, 0])[1] += 1
        return {flavor: Usage(held, waiting) for flavor, (held, waiting) in out.items()}


def _valid(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("kernel_id"), str)
        and isinstance(entry.get("flavor"), str)
        and isinstance(entry.get("gpus"), int)
        and isinstance(entry.get("pid"), int)
        and entry["pid"] > 0
    )
