"""Turn one replay's raw records into the figures the report compares across strategies.

Definitions (docs/simulator.md repeats them next to the results):
- held: GPU-hours from admission to release (cold start included); busy: GPU-hours a GPU cell ran, with
  the cell's own GPU count; idle = held - busy; ratio = held / busy.
- cold starts: cells whose wait included a kernel start; the share is over GPU cells that ran.
- added start latency: a GPU cell's wait (submit -> first output: queueing, cold start and the restore of
  carried-over variables), p50/p95/p99, and the share of GPU cells that waited more than 10 s (issue 18's
  targets); ``start_p95_s`` is the p95 of the cold start and restore part alone; ``restart_cpu_cells``
  counts cells without GPU code that waited for a GPU kernel to start (the gateway cannot tell them), and
  ``code_cells_over_10s_share`` is the share of all cells that ran, GPU or not, that waited more than 10 s.
- waits: submit -> first output over GPU cells that ran (p50, p95, mean), and how many waited > ``slow_s``;
  ``wait_cold_mean_s`` is the part of the mean spent on cold starts (the rest is queueing).
- dropped kernels: releases while the session was still open of a kernel that had run cells (its state is
  lost unless the strategy carries state over, then counted as ``carried``).
- pre-start: ``prestarts`` kernels started before their cell asked, ``prestarts_dropped`` of them no cell
  used within the hold, ``prestart_dropped_gpu_h`` the GPU-hours those held (in ``held``, all idle),
  ``prestarted_cells`` cells that ran first on a pre-started kernel.
- warm pool: ``claimed_cells`` are cells (GPU or not) whose cold start claimed a pool kernel; the pool's
  GPU-hours are held (idle breakdown ``warm_pool``), never busy; a public pool's hours count as public spend.
- bursts: allocations on a public member; public spend: their GPU-hours times the flavor's price.
- per-flavor utilisation: held and busy GPU-hours over capacity x replay span.
- idle breakdown: where held-but-not-busy GPU-hours went: ``cold_start`` (admission to kernel ready),
  ``cpu_cells`` (cells without GPU code running on a GPU kernel), ``oversized`` (a cell using fewer GPUs
  than its kernel holds), ``waiting`` (no cell running: think time, idle timeout, lingering after close).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..placement.release import describe
from .engine import RunRecord

HOUR = 3600.0


@dataclass(frozen=True)
class FlavorUse:
    capacity_gpus: int
    held_gpu_h: float
    busy_gpu_h: float
    held_share: float
    busy_share: float


@dataclass(frozen=True)
class StrategyResult:
    strategy: str
    description: str
    idle_timeout_s: float | None
    release_rule: str  # the idle release in words, e.g. "15 GPU-min idle (1 GPU 15 min, 8 GPUs 3 min, ...)"
    gpu_h_held: float
    gpu_h_busy: float
    held_per_busy: float
    gpu_h_idle: float
    gpu_cells: int
    cold_start_cells: int
    cold_start_share: float
    dropped_kernels: int
    carried_kernels: int
    releases: int
    claimed_cells: int  # cells whose cold start claimed a warm-pool kernel
    wait_p50_s: float
    wait_p95_s: float
    wait_mean_s: float
    wait_cold_mean_s: float
    slow_s: float
    slow_cells: int
    added_p50_s: float
    added_p95_s: float
    added_p99_s: float
    waited_over_10s_share: float
    start_p95_s: float
    restore_p95_s: float
    restart_cpu_cells: int
    code_cells_over_10s_share: float
    rejected_cells: int
    bursts: int
    public_spend_usd: float
    decisions: int
    span_h: float
    flavors: dict[str, FlavorUse] = field(default_factory=dict)
    idle_breakdown_gpu_h: dict[str, float] = field(default_factory=dict)
    prestarts: int = 0
    prestarts_dropped: int = 0
    prestart_dropped_gpu_h: float = 0.0
    prestarted_cells: int = 0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if math.isinf(self.held_per_busy):  # nothing was busy: strict JSON has no Infinity
            out["held_per_busy"] = None
        return out


def summarise(run: RunRecord, slow_s: float = 120.0) -> StrategyResult:
    """Figures for one replay; ``slow_s`` is the X in "cells that waited longer than X"."""
    held_by: dict[str, float] = dict.fromkeys(run.capacity, 0.0)
    busy_by: dict[str, float] = dict.fromkeys(run.capacity, 0.0)
    spend = cold_h = cpu_h = oversized_h = pool_h = prestart_h = 0.0
    for a in run.allocations:
        end = a.end_s if a.end_s is not None else run.end_s
        gpu_h = a.gpus * (end - a.start_s) / HOUR
        held_by[a.flavor] += gpu_h
        prestart_h += gpu_h if a.prestart_dropped else 0.0
        if a.pool:  # the platform's warm pool: held, never busy, all of it idle
            pool_h += gpu_h
        else:
            cold_h += a.gpus * (min(a.ready_s if a.ready_s is not None else end, end) - a.start_s) / HOUR
        if a.public:
            spend += gpu_h * a.price_per_gpu_hour
    for b in run.busy:
        hours = (b.end_s - b.start_s) / HOUR
        busy_by[b.flavor] += b.gpus * hours
        if b.gpus == 0:
            cpu_h += b.held_gpus * hours
        else:
            oversized_h += (b.held_gpus - b.gpus) * hours
    held, busy = sum(held_by.values()), sum(busy_by.values())
    gpu_cells = [c for c in run.cells if c.gpus > 0 and not c.rejected and c.first_output_s is not None]
    waits = np.array([c.wait_s for c in gpu_cells]) if gpu_cells else np.zeros(1)
    span_h = max(run.end_s - run.start_s, 1e-9) / HOUR
    flavors = {
        name: FlavorUse(
            cap,
            held_by[name],
            busy_by[name],
            held_by[name] / (cap * span_h) if cap else 0.0,
            busy_by[name] / (cap * span_h) if cap else 0.0,
        )
        for name, cap in run.capacity.items()
    }
    cold = sum(c.cold_start for c in run.cells)
    cold_gpu = sum(c.cold_start for c in gpu_cells)
    return StrategyResult(
        strategy=run.strategy.name,
        description=run.strategy.description,
        idle_timeout_s=run.strategy.idle_timeout_s,
        release_rule=_release_label(run),
        gpu_h_held=held,
        gpu_h_busy=busy,
        held_per_busy=held / busy if busy else float("inf"),
        gpu_h_idle=held - busy,
        gpu_cells=len(gpu_cells),
        cold_start_cells=cold,
        cold_start_share=cold_gpu / len(gpu_cells) if gpu_cells else 0.0,
        dropped_kernels=sum(a.dropped for a in run.allocations),
        carried_kernels=sum(a.carried for a in run.allocations),
        releases=sum(not a.pool for a in run.allocations),
        claimed_cells=sum(c.claimed for c in run.cells),
        wait_p50_s=float(np.percentile(waits, 50)),
        wait_p95_s=float(np.percentile(waits, 95)),
        wait_mean_s=float(waits.mean()),
        slow_s=slow_s,
        wait_cold_mean_s=float(np.mean([c.cold_wait_s for c in gpu_cells])) if gpu_cells else 0.0,
        slow_cells=int((waits > slow_s).sum()) if gpu_cells else 0,
        added_p50_s=float(np.percentile(waits, 50)),
        added_p95_s=float(np.percentile(waits, 95)),
        added_p99_s=float(np.percentile(waits, 99)),
        waited_over_10s_share=float((waits > 10.0).mean()) if gpu_cells else 0.0,
        start_p95_s=float(np.percentile([c.cold_wait_s for c in gpu_cells], 95)) if gpu_cells else 0.0,
        restore_p95_s=float(np.percentile([c.restore_s for c in gpu_cells], 95)) if gpu_cells else 0.0,
        restart_cpu_cells=sum(c.cold_start for c in run.cells if c.gpus == 0 and not c.rejected),
        code_cells_over_10s_share=_share_over(run, 10.0),
        rejected_cells=sum(c.rejected for c in run.cells),
        bursts=sum(a.burst for a in run.allocations),
        public_spend_usd=spend,
        decisions=run.decisions,
        span_h=span_h,
        flavors=flavors,
        idle_breakdown_gpu_h={
            "cold_start": cold_h,
            "cpu_cells": cpu_h,
            "oversized": oversized_h,
            "warm_pool": pool_h,
            "waiting": held - busy - cold_h - cpu_h - oversized_h - pool_h,
        },
        prestarts=sum(a.prestart for a in run.allocations),
        prestarts_dropped=sum(a.prestart_dropped for a in run.allocations),
        prestart_dropped_gpu_h=prestart_h,
        prestarted_cells=sum(c.prestarted for c in run.cells),
    )


def _share_over(run: RunRecord, seconds: float) -> float:
    ran = [c for c in run.cells if c.first_output_s is not None and not c.rejected]
    return sum(c.wait_s > seconds for c in ran) / len(ran) if ran else 0.0


def _release_label(run: RunRecord) -> str:
    st = run.strategy
    if st.release_after_cell:
        return "after each cell"
    if st.foresight:
        return "knows the next submit"
    if st.idle_timeout_s is None:
        return f"at close + {st.linger_after_close_s / 60:g} min" if st.linger_after_close_s else "at close"
    return describe(st.idle_timeout_s, run.release_rule)
