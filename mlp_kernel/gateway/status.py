"""The gateway's live status: one mutable record, rendered as the snapshot of docs/status-comm.md.

The same snapshot feeds three readers: the ``mlp_kernel.status`` comm (JupyterLab extension, any client),
``%gpu`` in a cell, and a small JSON file in the Jupyter runtime dir that the server extension reads for the
admin fleet view and Prometheus metrics. Keeping one record avoids three views drifting apart.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

from ..clock import SYSTEM, Clock
from ..placement import release
from ..placement.prestart import FIRST_STATES, PRESTART_STATES
from ..placement.release import ReleaseRule
from ..placement.types import Decision, GpuRequest
from ..placement.units import format_duration
from ..protocol import (
    VERSION,
    BudgetLine,
    Choices,
    FilesInfo,
    KernelState,
    LastRelease,
    Phase,
    PrestartInfo,
    QueueInfo,
    Status,
)
from ..protocol import Decision as DecisionJson


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat() if ts else None


@dataclass
class GatewayStatus:
    kernel_id: str
    user: str = ""
    state: KernelState = KernelState.CPU_ONLY
    phase: Phase | None = None
    message: str = "CPU only: no GPU kernel yet; the next cell that runs code starts one"
    member: str | None = None
    flavor: str | None = None
    gpu_model: str | None = None
    gpu_count: int = 0
    public: bool = False
    since: float | None = None  # clock time when the current remote kernel started running
    queue: QueueInfo | None = None
    price_per_hour: float = 0.0
    cost_before: float = 0.0  # cost of earlier remote kernels of this notebook
    idle_timeout_s: float = 900.0  # the base: a 1-GPU kernel's limit; 0 = never released automatically
    release_rule: ReleaseRule = field(default_factory=ReleaseRule)  # flat after a user's %gpu idle=
    last_activity: float = 0.0  # clock time of the last request, reply or input; 0 = at creation
    busy: bool = False
    gaps_s: list[float] = field(default_factory=list)  # this notebook's gaps, a cell's end to the next cell
    idle_since: float | None = None  # when the last cell ended (None: a cell runs, or none has yet)
    last_release: LastRelease | None = None
    decision: Decision | None = None
    request: GpuRequest | None = None
    choices: Choices = field(default_factory=lambda: Choices())
    gpu_seconds_busy: float = 0.0
    files: FilesInfo | None = None  # what the running (or last) GPU kernel sees of the notebook's files
    budget: list[BudgetLine] = field(default_factory=list)  # this month's team and user budgets (if limited)
    # pre-start on activity (``release.prestart``; the remote session keeps these): None = off
    prestart_hold_s: float | None = None
    prestart_first: bool = False  # release.prestart.first: a code edit may pre-start the first GPU kernel
    prestart_ran: bool = True  # a cell ran since the last pre-start (True before any)
    prestart_second: bool = False  # that pre-start was dropped unused: a code edit may pre-start once more
    prestart_holding: bool = False  # the kernel was pre-started and no cell has used it yet
    prestart_since: float | None = (
        None  # ... and connected then: the hold, not the idle limit, counts from it
    )
    prestart_note: str = ""  # the last pre-start's line: started, dropped, or why not
    clock: Clock = field(default=SYSTEM, repr=False, compare=False)  # what "now" is (tests: a manual one)

    def __post_init__(self) -> None:
        self.last_activity = self.last_activity or self.clock.time()

    def kernel_cost(self, now: float | None = None) -> float:
        """What the current remote kernel has cost since it started running (0 when there is none)."""
        if not self.since:
            return 0.0
        return max(0.0, (now or self.clock.time()) - self.since) / 3600.0 * self.price_per_hour

    def cost_so_far(self, now: float | None = None) -> float:
        """This notebook's spend on GPUs: every earlier remote kernel's and the current one's. Counted while
        a kernel is held (``since`` is set), so releasing and moving keep it; it never goes back."""
        return round(self.cost_before + self.kernel_cost(now), 4)

    def cell_submitted(self, now: float) -> None:
        """A cell came: the gap since the last one ended is one more the ``predictive`` rule learns from."""
        if self.idle_since is not None:
            self.gaps_s = [*self.gaps_s[-63:], max(0.0, now - self.idle_since)]
            self.idle_since = None

    def idle_limit(self) -> float | None:
        """How long this kernel may stay idle: the policy's release rule applied to the GPUs it holds and this
        notebook's gaps (the same function the simulator uses); None when never released automatically."""
        return release.idle_limit_s(
            self.idle_timeout_s or None, max(1, self.gpu_count), self.release_rule, self.gaps_s
        )

    def idle_rule(self) -> str:
        return release.describe(self.idle_timeout_s or None, self.release_rule)

    def idle_deadline(self) -> float | None:
        if self.state == KernelState.RUNNING and self.prestart_since and self.prestart_hold_s is not None:
            return self.prestart_since + self.prestart_hold_s  # pre-started, unused: given back at the hold
        limit = self.idle_limit()
        if self.state != KernelState.RUNNING or self.busy or limit is None:
            return None
        return self.last_activity + limit

    def prestart_info(self) -> PrestartInfo | None:
        """What the extension needs to ask for a pre-start: ``ready`` while the GPU kernel is released (the
        pure rule's states) and a cell ran since the last pre-start; ``first`` while the notebook never had a
        GPU kernel and the policy lets typing code pre-start it (reading or writing text never asks);
        ``second`` while the one pre-start since the last cell went unused and a code edit may ask again."""
        if self.prestart_hold_s is None:
            return None
        chance = self.prestart_ran or self.prestart_second
        return {
            "ready": self.state in PRESTART_STATES and self.prestart_ran,
            "first": self.prestart_first and self.state in FIRST_STATES and chance,
            "second": self.state in PRESTART_STATES and not self.prestart_ran and self.prestart_second,
            "holding": self.prestart_holding,
            "hold_s": self.prestart_hold_s,
            "message": self.prestart_note,
        }

    def snapshot(self) -> Status:
        """The snapshot of docs/status-comm.md (``mlp_kernel.protocol.Status``; every key present)."""
        return {
            "type": "status",
            "version": VERSION,
            "kernel_id": self.kernel_id,
            "user": self.user,
            "state": self.state,
            "phase": self.phase,
            "message": self.message,
            "member": self.member,
            "flavor": self.flavor,
            "gpu_model": self.gpu_model,
            "gpu_count": self.gpu_count,
            "public": self.public,
            "since": _iso(self.since),
            "queue": self.queue,
            "price_per_hour": self.price_per_hour,
            "cost_so_far": self.cost_so_far(),
            "idle_timeout_s": self.idle_timeout_s,
            "idle_limit_s": self.idle_limit(),
            "idle_rule": self.idle_rule(),
            "idle_deadline": _iso(self.idle_deadline()),
            "busy": self.busy,
            "last_release": self.last_release,
            # placement is below the protocol's users and returns a plain dict; the tests validate its shape
            "decision": cast(DecisionJson, self.decision.to_json()) if self.decision else None,
            "request": self.request.to_json() if self.request else None,
            "choices": self.choices,
            "gpu_seconds_busy": round(self.gpu_seconds_busy, 3),
            "files": self.files,
            "budget": self.budget,
            "prestart": self.prestart_info(),
        }

    def describe(self) -> str:
        """The text ``%gpu`` prints: state, where, which GPU, since when, idle countdown."""
        now = self.clock.time()
        lines = [f"GPU (auto): {self.state.replace('_', ' ')}"]
        if self.state in (KernelState.RUNNING, KernelState.STARTING, KernelState.QUEUED) and self.member:
            where = "public" if self.public else "private"
            gpu = f"{self.gpu_model} x{self.gpu_count}" if self.gpu_model else "-"
            if self.decision is not None and self.decision.member == self.member:
                gpu = self.decision.gpu_text()  # the pin or the upgrade: "H100 x1, pinned by ..."
            lines.append(f"  where:  {self.member} / {self.flavor} ({where}), GPU {gpu}")
        if self.since and self.state == KernelState.RUNNING:
            lines.append(
                f"  since:  {datetime.fromtimestamp(self.since).strftime('%H:%M:%S')} "
                f"({format_duration(now - self.since)})"
            )
            lines.append(f"  cost:   ${self.price_per_hour:.2f}/h, ${self.cost_so_far(now):.2f} so far")
        for b in self.budget:  # "Team ml-vision: $412 of $500 this month (soft limit $400 passed)"
            lines.append(f"  budget: {b['line']}")
        if self.queue:
            q = self.queue
            pos = q.get("position")
            eta = q.get("eta_s")
            lines.append(
                f"  queue:  {q.get('local_queue') or '-'}"
                + (f", position {pos}" if pos else "")
                + (f", ETA ~{format_duration(eta)}" if eta is not None else "")
            )
        deadline = self.idle_deadline()
        if self.state == KernelState.RUNNING:
            if self.busy:
                lines.append("  idle:   busy (a running cell is never released)")
            elif deadline and self.prestart_since:
                lines.append(
                    f"  idle:   given back in {format_duration(max(0.0, deadline - now))} unless a cell runs"
                )
            elif deadline:
                lines.append(
                    f"  idle:   released in {format_duration(max(0.0, deadline - now))} without activity "
                    f"(idle limit {format_duration(self.idle_limit() or 0)} for {max(1, self.gpu_count)} "
                    f"GPU(s): {self.idle_rule()})"
                )
            else:
                lines.append("  idle:   never released automatically (idle=0)")
        else:
            lines.append(f"  idle release: {self.idle_rule() if self.idle_timeout_s else 'off'}")
        if self.last_release:
            lines.append(
                f"  last release: {self.last_release.get('message', self.last_release.get('reason'))}"
            )
        if self.prestart_note:  # "pre-started on local/bronze when you started typing", "dropped after ..."
            lines.append(f"  pre-start: {self.prestart_note}")
        if self.user:  # whose kernel this is: the server's identity (JupyterHub's user), never the client's
            lines.append(f"  user:   {self.user}")
        lines.append(f"  {self.message}")
        return "\n".join(lines)


NEW_PRIVATE_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def write_status_file(path: Path | None, snapshot: dict[str, Any]) -> None:
    """Atomically replace the status file (readers never see half a JSON document).

    The temporary file gets an unpredictable name and is created with ``O_EXCL | O_NOFOLLOW``: with a fixed
    name, whoever could write to the directory could plant a symbolic link there and have the gateway
    overwrite the file it points to. ``os.replace`` renames over ``path`` itself, never through a link.
    """
    if path is None:
        return
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, NEW_PRIVATE_FILE, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(snapshot, f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
