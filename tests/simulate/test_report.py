"""The report says what the figures are: side-by-side rows, budget verdicts, the 25% crossing, strict JSON."""

from __future__ import annotations

import json

import pytest

from mlp_kernel.simulate import (
    PER_CELL,
    Cell,
    Session,
    SimConfig,
    Trace,
    cold_share_crossing,
    compare,
    format_budget,
    format_sweep,
    format_table,
    gpu_auto,
    idle_sweep,
    to_json,
)

TRACE = Trace.of([Session("s", "alice", 0, 7200, (Cell(600, 600, 1), Cell(1500, 300, 1)))])


def test_table_puts_strategies_side_by_side(tiny_policy):
    results = compare(tiny_policy, TRACE, [PER_CELL, gpu_auto(900)], SimConfig()).results
    lines = format_table(results).splitlines()
    assert lines[0].split() == ["per-cell", "gpu-auto"]
    held = next(line for line in lines if line.startswith("held / busy"))
    assert held.split()[-2:] == ["1.07x", "2.37x"]  # 960/900 and 2130/900
    assert any(line.startswith("small (2 GPUs) held / busy") for line in lines)


def test_budget_line_flags_overspend(tiny_policy):
    results = compare(tiny_policy, TRACE, [gpu_auto(900)], SimConfig()).results
    assert "within budget" in format_budget(results, 10.0)
    object.__setattr__(results[0], "public_spend_usd", 25.0)
    assert "$25 of $10 (250%, OVER budget)" in format_budget(results, 10.0)


def test_sweep_reports_where_the_cold_start_share_crosses_25_percent(tiny_policy):
    # c1 comes 300 s after c0 ends: idle timeouts under 300 s cold-start both cells, longer ones only c0
    sweep = idle_sweep(tiny_policy, TRACE, [0, 120, 600], SimConfig())
    assert [r.cold_start_share for r in sweep] == [1.0, 1.0, 0.5]
    assert cold_share_crossing(sweep) is None  # never at or below 25%
    assert "stays above 25%" in format_sweep(sweep)


def test_crossing_is_interpolated_between_sweep_points(tiny_policy):
    sweep = idle_sweep(tiny_policy, TRACE, [0, 600], SimConfig())
    object.__setattr__(sweep[1], "cold_start_share", 0.0)
    assert cold_share_crossing(sweep) == pytest.approx(450.0)  # 1.0 -> 0.0 over 0..600 s: 25% at 450 s


def test_json_is_strict_even_when_nothing_was_busy(tiny_policy):
    idle_only = Trace.of([Session("s", "alice", 0, 100, (Cell(0, 10, 0),))])
    results = compare(tiny_policy, idle_only, [gpu_auto(900)], SimConfig()).results
    text = json.dumps(to_json(results, [], None))

    def refuse(name: str) -> None:
        raise ValueError(name)

    report = json.loads(text, parse_constant=refuse)
    assert report["strategies"][0]["held_per_busy"] is None
