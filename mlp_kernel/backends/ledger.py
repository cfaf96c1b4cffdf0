"""The budget ledger: what public GPU kernels cost, per team, user and calendar month, shared by gateways.

Budgets (``placement/budget.py``) need every user's spend this month before each burst, and each user's
gateway is a separate process (on a platform, on separate servers). So the spend lives in one object per
team and month that every gateway can read and update: a ConfigMap on the policy's ``budgets.ledger_member``
(``kubernetes/ledger.py``), or, without one (the local backend, one user), a JSON file under the user's
Jupyter data dir, locked with ``fcntl`` (``FileLedger`` here).

Both keep the same document, ``LedgerDoc``: a key per user with the user's total in micro-dollars (integers,
so concurrent cents add up exactly), and a key per remote kernel with what that kernel has recorded so far.
A gateway records a kernel's *cumulative* cost (``record(kernel_id, total)``); the ledger adds only the part
not yet recorded for that kernel id. A gateway that records twice, retries after a lost response, or is
restarted and records the same kernel again never counts a cent twice, and a kernel's cost never goes down.
The kernel keys stay for the month (a late record of a released kernel is then a no-op): about 60 bytes
each, so a team's month object holds some 15,000 kernel sessions within a ConfigMap's 1 MiB.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

KERNEL_PREFIX = "k."  # kernel keys; user keys are "u." + the escaped user name
USER_PREFIX = "u."
_SAFE = re.compile(r"[-.a-zA-Z0-9]")  # ConfigMap keys allow [-._a-zA-Z0-9]; "_" is the escape


def escape(name: str) -> str:
    """A user name or kernel id as a ConfigMap key part: ``ada@example.com`` -> ``ada_40example.com``."""
    return "".join(c if _SAFE.match(c) else "".join(f"_{b:02x}" for b in c.encode()) for c in name)


def unescape(key: str) -> str:
    return re.sub(rb"_([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]), key.encode()).decode(
        errors="replace"
    )


@dataclass
class LedgerDoc:
    """One team's month: ``users`` user -> micro-dollars, ``kernels`` kernel id -> micro-dollars recorded."""

    users: dict[str, int] = field(default_factory=dict)
    kernels: dict[str, int] = field(default_factory=dict)

    def record(self, user: str, kernel_id: str, total_micro: int) -> int:
        """Raise ``kernel_id``'s recorded cost to ``total_micro``, adding the difference to ``user``; the
        amount added (0 when nothing new)."""
        delta = total_micro - self.kernels.get(kernel_id, 0)
        if delta <= 0:
            return 0
        self.kernels[kernel_id] = total_micro
        self.users[user] = self.users.get(user, 0) + delta
        return delta

    def to_data(self) -> dict[str, str]:
        """The ConfigMap ``data`` (and the file's JSON): every value a decimal string of micro-dollars."""
        out = {USER_PREFIX + escape(u): str(v) for u, v in sorted(self.users.items())}
        out.update({KERNEL_PREFIX + escape(k): str(v) for k, v in sorted(self.kernels.items())})
        return out

    @classmethod
    def from_data(cls, data: dict[str, str] | None) -> LedgerDoc:
        doc = cls()
        for key, value in (data or {}).items():
            try:
                micro = int(value)
            except (TypeError, ValueError):
                continue  # a hand-edited value that is not a number is ignored, not fatal
            if key.startswith(USER_PREFIX):
                doc.users[unescape(key[len(USER_PREFIX) :])] = micro
            elif key.startswith(KERNEL_PREFIX):
                doc.kernels[unescape(key[len(KERNEL_PREFIX) :])] = micro
        return doc

    @property
    def total(self) -> int:
        return sum(self.users.values())


class Ledger(Protocol):
    """Where spend is kept: one document per team and month (``month`` is ``YYYY-MM``, UTC)."""

    async def read(self, team: str, month: str) -> LedgerDoc:
        """The team's month (empty when nothing was recorded yet)."""
        ...

    async def record(self, team: str, month: str, user: str, kernel_id: str, total_micro: int) -> int:
        """Record ``kernel_id``'s cumulative cost (see ``LedgerDoc.record``), atomically against every other
        writer; returns the micro-dollars added."""
        ...


def default_root() -> Path:
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "mlp-kernel" / "ledger"


class FileLedger:
    """A JSON file per team and month, read and rewritten under an exclusive ``fcntl`` lock on a lock file
    beside it, so every gateway of this user (each notebook has one) adds up exactly."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_root()

    def path(self, team: str, month: str) -> Path:
        return self.root / f"{escape(team or '-')}.{month}.json"

    def _read(self, path: Path) -> LedgerDoc:
        try:
            return LedgerDoc.from_data(json.loads(path.read_text(encoding="utf-8")))
        except (FileNotFoundError, ValueError):
            return LedgerDoc()

    async def read(self, team: str, month: str) -> LedgerDoc:
        return await asyncio.to_thread(self._read, self.path(team, month))

    def record_sync(self, team: str, month: str, user: str, kernel_id: str, total_micro: int) -> int:
        path = self.path(team, month)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            doc = self._read(path)
            added = doc.record(user, kernel_id, total_micro)
            if added:
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(json.dumps(doc.to_data(), indent=0), encoding="utf-8")
                os.chmod(tmp, 0o600)
                os.replace(tmp, path)  # readers without the lock see the old or the new file, never half
            return added
        finally:
            os.close(fd)  # releases the lock

    async def record(self, team: str, month: str, user: str, kernel_id: str, total_micro: int) -> int:
        return await asyncio.to_thread(self.record_sync, team, month, user, kernel_id, total_micro)
