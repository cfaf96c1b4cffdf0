"""Prometheus metrics for GPU (auto) kernels, served on jupyter_server's own ``/metrics``.

jupyter_server exposes the process-wide ``prometheus_client.REGISTRY``, so the metrics are created once at
import and registered there. They are fed from the per-kernel status files (see ``fleet``): ``refresh`` runs
on a timer in the server extension and on every fleet request. Gauges describe now (kernels by state and
member, the longest current queue wait per flavor); counters accumulate what the status files show over
time (GPU-seconds held and busy, public spend), advancing only by what happened since the previous refresh,
so a counter never goes backwards when a kernel is released and its snapshot resets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from prometheus_client import Counter, Gauge

from ..protocol import KernelState
from .fleet import FleetKernel

KERNELS = Gauge(
    "mlp_kernel_kernels", "GPU (auto) kernels of this server by state and member", ["state", "member"]
)
QUEUE_WAIT = Gauge(
    "mlp_kernel_queue_wait_seconds",
    "Longest current queue wait of a GPU (auto) kernel, by flavor",
    ["flavor"],
)
GPU_SECONDS_HELD = Counter(
    "mlp_kernel_gpu_seconds_held",
    "GPU-seconds held by running GPU (auto) kernels",
    ["member", "flavor", "gpu_model"],
)
GPU_SECONDS_BUSY = Counter(
    "mlp_kernel_gpu_seconds_busy",
    "GPU-seconds held while a cell was executing",
    ["member", "flavor", "gpu_model"],
)
PUBLIC_SPEND = Counter(
    "mlp_kernel_public_spend_dollars", "Money spent on public (burst) GPU kernels, in dollars", ["member"]
)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


@dataclass
class FleetMetrics:
    """Turns successive fleet snapshots into metric updates; remembers what it already counted per kernel."""

    counted_until: dict[str, datetime] = field(default_factory=dict)
    counted_cost: dict[str, float] = field(default_factory=dict)

    def refresh(self, kernels: Iterable[FleetKernel], now: datetime | None = None) -> None:
        now = now or datetime.now(timezone.utc)
        kernels = list(kernels)
        KERNELS.clear()
        QUEUE_WAIT.clear()
        waits: dict[str, float] = {}
        for k in kernels:
            KERNELS.labels(state=k.state, member=k.member or "none").inc()
            since = _parse_time(k.since)
            if k.state == KernelState.QUEUED and since is not None:
                flavor = k.flavor or "none"
                waits[flavor] = max(waits.get(flavor, 0.0), (now - since).total_seconds())
            if k.state == KernelState.RUNNING and since is not None:
                start = max(since, self.counted_until.get(k.kernel_id, since))
                seconds = max(0.0, (now - start).total_seconds()) * max(k.gpu_count, 1)
                labels = {
                    "member": k.member or "none",
                    "flavor": k.flavor or "none",
                    "gpu_model": k.gpu_model or "none",
                }
                GPU_SECONDS_HELD.labels(**labels).inc(seconds)
                if k.busy:
                    GPU_SECONDS_BUSY.labels(**labels).inc(seconds)
                self.counted_until[k.kernel_id] = now
            else:
                self.counted_until.pop(k.kernel_id, None)
            if k.public:
                previous = self.counted_cost.get(k.kernel_id, 0.0)
                if k.cost_so_far > previous:
                    PUBLIC_SPEND.labels(member=k.member or "none").inc(k.cost_so_far - previous)
                # a released kernel's snapshot may reset its cost: count the next session from there
                self.counted_cost[k.kernel_id] = k.cost_so_far
        for flavor, wait in waits.items():
            QUEUE_WAIT.labels(flavor=flavor).set(wait)
        live = {k.kernel_id for k in kernels}
        for gone in set(self.counted_cost) - live:
            del self.counted_cost[gone]
