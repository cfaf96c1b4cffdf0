"""What-if simulator: replay notebook activity under GPU-holding strategies against a policy's pools.

Layers, lowest first: ``trace`` (values) and ``trace_io`` (files); ``distributions`` and ``generator``
(calibrated synthetic traces) with ``trace_stats`` (measuring them); ``placer`` (the only door to the real
``placement.decide``); ``strategies`` (what each deployment style does) and ``engine`` (the discrete-event
replay); ``metrics``, ``study`` (comparisons and the idle sweep), ``report`` and ``plots`` on top.
"""

from __future__ import annotations

from .engine import RunRecord, SimConfig, simulate
from .generator import generate, generate_sessions
from .metrics import StrategyResult, summarise
from .report import format_budget, format_sweep, format_table, to_json
from .strategies import KERNEL_CULLED, PER_CELL, SERVER_HELD, Strategy, by_name, gpu_auto
from .study import Comparison, Curve, cold_share_crossing, compare, idle_sweep, trade_off_curves
from .trace import Cell, Session, Trace
from .trace_io import TraceError, read_trace, write_trace

__all__ = [
    "KERNEL_CULLED",
    "PER_CELL",
    "SERVER_HELD",
    "Cell",
    "Comparison",
    "Curve",
    "RunRecord",
    "Session",
    "SimConfig",
    "Strategy",
    "StrategyResult",
    "Trace",
    "TraceError",
    "by_name",
    "cold_share_crossing",
    "compare",
    "format_budget",
    "format_sweep",
    "format_table",
    "generate",
    "generate_sessions",
    "gpu_auto",
    "idle_sweep",
    "read_trace",
    "simulate",
    "summarise",
    "to_json",
    "trade_off_curves",
    "write_trace",
]
