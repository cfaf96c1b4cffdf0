"""``mlp-kernel simulate``: replay notebook activity under several GPU strategies and compare them.

Thin edge over ``mlp_kernel.simulate``: parse flags, load the policy and the trace (a file or a generated
one), run the comparison and the optional idle sweep, print a table or JSON, draw PNGs. See docs/simulator.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from ..placement import PolicyError, load_policy
from ..placement.units import MAX_DURATION_S
from . import duration_flag

DEFAULT_GENERATE = {"users": 20, "days": 7.0, "seed": 0, "burst_share": 0.5}
GENERATE_RANGES = {
    "users": (1, 10_000),
    "days": (0.01, 366.0),
    "seed": (0, 2**32 - 1),
    "burst_share": (0.0, 1.0),
}


def default_policy_path() -> Path:
    """The sample platform policy: from the source tree when run from one, else the installed kernelspec."""
    candidates = [
        Path(__file__).resolve().parents[2] / "kernelspecs/gpu-auto/platform-policy.yaml",
        Path(sys.prefix) / "share/jupyter/kernels/gpu-auto/platform-policy.yaml",
    ]
    return next((p for p in candidates if p.exists()), candidates[-1])


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="what-if: replay notebook activity under GPU strategies and compare them",
        description="Replay notebook sessions against the policy's GPU pools under several strategies "
        "(server-held, kernel-culled, per-cell, gpu-auto), calling the real placement for every decision.",
    )
    p.add_argument(
        "--policy",
        type=Path,
        default=None,
        help="placement policy YAML (default: the sample platform policy)",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--trace", type=Path, help="trace file (.jsonl or .csv, see docs/simulator.md)")
    src.add_argument(
        "--generate",
        metavar="K=V,...",
        default=None,
        help="generate a trace instead: users=20,days=7,seed=0,burst_share=0.5 (the default)",
    )
    p.add_argument("--write-trace", type=Path, metavar="PATH", help="also save the trace used (.jsonl/.csv)")
    p.add_argument(
        "--strategy",
        action="append",
        metavar="NAME",
        help="strategy to run (repeat or comma-separate): server-held, kernel-culled, per-cell, "
        "gpu-auto; default all; also foresight, a reference: gpu-auto knowing when every cell comes "
        "(what no release rule can beat on held GPU-hours)",
    )
    p.add_argument("--idle-timeout", metavar="DURATION", help="gpu-auto idle timeout (default: the policy's)")
    from ..simulate.study import DEFAULT_POOL_SIZES, DEFAULT_SWEEP_MIN

    sweep = ",".join(f"{m:g}" for m in DEFAULT_SWEEP_MIN)
    p.add_argument(
        "--idle-sweep",
        nargs="?",
        const=sweep,
        metavar="MINUTES",
        help=f"also sweep gpu-auto's idle timeout over these minutes (default {sweep})",
    )
    p.add_argument(
        "--warm-pool",
        action="append",
        metavar="N|FLAVOR=N",
        default=[],
        help="warm-pool kernels per flavor for gpu-auto: N on every private flavor, or FLAVOR=N (repeatable; "
        "default: the policy's warm_pool)",
    )
    p.add_argument(
        "--sweep-pools",
        default=",".join(str(n) for n in DEFAULT_POOL_SIZES),
        metavar="N,...",
        help="with --idle-sweep --plots: the warm-pool sizes (per private flavor) to draw a curve for, per "
        "release rule (default %(default)s)",
    )
    p.add_argument(
        "--lead",
        default="1",
        metavar="X",
        help="how early users start working on a cell, for the policy's release.prestart: X times the "
        "documented assumption (a uniform share of the gap before the cell, at most half of it, capped at "
        "2 min); 0 = never before its submit, i.e. no pre-start benefit (default 1; the --idle-sweep plot "
        "draws 0 and X)",
    )
    p.add_argument("--cold-start-private", default="30s", metavar="DURATION", help="default 30s")
    p.add_argument("--cold-start-public", default="90s", metavar="DURATION", help="default 90s (image pull)")
    p.add_argument(
        "--capacity",
        action="append",
        metavar="FLAVOR=GPUS",
        default=[],
        help="override a flavor's capacity_gpus (repeatable)",
    )
    p.add_argument(
        "--capacity-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="multiply every flavor's capacity (e.g. to size the policy's pools for more users)",
    )
    p.add_argument(
        "--slow",
        default="2m",
        metavar="DURATION",
        help="count GPU cells that waited longer than this (default 2m)",
    )
    p.add_argument("--budget", type=float, metavar="USD", help="public spend budget to report against")
    p.add_argument(
        "--state-carry-over",
        action="store_true",
        help="gpu-auto keeps variables across a release (releases are counted as carried)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--plots", type=Path, metavar="DIR", help="write PNG plots into DIR")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"mlp-kernel simulate: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from ..simulate import (
        SimConfig,
        TraceError,
        by_name,
        compare,
        format_budget,
        format_sweep,
        format_table,
        generate,
        idle_sweep,
        read_trace,
        simulate,
        summarise,
        to_json,
        trade_off_curves,
        write_trace,
    )
    from ..simulate.strategies import NAMES, foresight

    policy_path = args.policy or default_policy_path()
    try:
        policy = load_policy(policy_path)
    except PolicyError as exc:
        return _fail(exc.describe())
    try:
        idle = (
            duration_flag("--idle-timeout", args.idle_timeout) if args.idle_timeout else policy.idle_timeout_s
        )
        config = SimConfig(
            cold_start_private_s=duration_flag("--cold-start-private", args.cold_start_private),
            cold_start_public_s=duration_flag("--cold-start-public", args.cold_start_public),
            capacity=_capacity(policy, args.capacity, args.capacity_scale),
            warm_pool=_warm_pool(policy, args.warm_pool),
            lead_scale=_number("--lead", args.lead, 0.0, 100.0),
        )
        pool_sizes = [int(_number("--sweep-pools", n, 0, 1000)) for n in args.sweep_pools.split(",")]
        slow = duration_flag("--slow", args.slow)
        wanted = args.strategy or [",".join(NAMES)]
        names = [n.strip() for item in wanted for n in item.split(",") if n.strip()]
        strategies = [by_name(n, idle, args.state_carry_over) for n in names]
        sweep_s = (
            [60 * _number("--idle-sweep", m, 0.0, MAX_DURATION_S / 60) for m in args.idle_sweep.split(",")]
            if args.idle_sweep
            else []
        )
        if args.budget is not None:
            _number("--budget", args.budget, 0.0, 1e12)
        gen = _generate_args(args.generate) if args.generate is not None or not args.trace else None
    except ValueError as exc:
        return _fail(str(exc))
    try:
        trace = read_trace(args.trace) if gen is None else generate(**gen)
    except TraceError as exc:
        return _fail(f"{exc}. See docs/simulator.md for the trace format.")
    if args.write_trace:
        write_trace(trace, args.write_trace)

    t0 = time.perf_counter()
    comparison = compare(policy, trace, strategies, config, slow)
    sweep = idle_sweep(policy, trace, sweep_s, config, slow, args.state_carry_over) if sweep_s else []
    leads = sorted({0.0, config.lead_scale})
    curves = (
        trade_off_curves(policy, trace, sweep_s, config, pool_sizes, leads=leads)
        if sweep_s and args.plots
        else []
    )
    # the plot's reference point: what no release rule can beat on this trace and these pools
    reference = summarise(simulate(policy, trace, foresight(True), config)) if curves else None
    elapsed = time.perf_counter() - t0

    context = {
        "policy": str(policy_path),
        "trace": str(args.trace) if args.trace else {"generated": gen},
        "sessions": len(trace.sessions),
        "users": len(trace.users),
        "cells": len(trace.cells),
        "trace_span_h": trace.span_s / 3600,
        "simulated_in_s": elapsed,
        "config": {
            "cold_start_private_s": config.cold_start_private_s,
            "cold_start_public_s": config.cold_start_public_s,
            "capacity": config.capacity,
            "warm_pool": config.warm_pool,
            "lead_scale": config.lead_scale,
        },
    }
    if args.json:
        print(json.dumps(to_json(comparison.results, sweep, args.budget, **context), indent=2))
    else:
        source = args.trace or "generated " + ",".join(f"{k}={v}" for k, v in (gen or {}).items())
        print(
            f"trace: {source}: {len(trace.users)} users, {len(trace.sessions)} sessions, "
            f"{len(trace.cells)} cells over {trace.span_s / 3600:.0f} h; policy: {policy_path}"
        )
        print(format_table(comparison.results))
        print(format_budget(comparison.results, args.budget))
        if sweep:
            print()
            print(format_sweep(sweep))
        print(f"\nsimulated in {elapsed:.1f} s")
    if args.plots:
        from ..simulate.plots import plot_held_vs_busy, plot_trade_off

        written = [plot_held_vs_busy(comparison.runs, args.plots / "simulator-held-vs-busy.png")]
        if curves:
            written.append(
                plot_trade_off(curves, args.plots / "simulator-idle-sweep.png", reference=reference)
            )
        print("plots: " + ", ".join(str(p) for p in written), file=sys.stderr if args.json else sys.stdout)
    return 0


def _generate_args(text: str | None) -> dict[str, Any]:
    out: dict[str, Any] = dict(DEFAULT_GENERATE)
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in DEFAULT_GENERATE:
            raise ValueError(
                f"--generate: expected KEY=VALUE with KEY one of {', '.join(DEFAULT_GENERATE)}, got {part!r}"
            )
        try:
            out[key] = type(DEFAULT_GENERATE[key])(value)
        except ValueError:
            raise ValueError(f"--generate: {key} must be a number, got {value!r}") from None
        _number(f"--generate {key}", out[key], *GENERATE_RANGES[key])
    return out


def _number(flag: str, value: Any, low: float, high: float, low_open: bool = False) -> float:
    """``value`` as a float within [low, high] (or (low, high]); NaN and infinity are never in range."""
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{flag}: expected a number, got {value!r}") from None
    if not (math.isfinite(number) and low <= number <= high) or (low_open and number == low):
        lowest = "more than" if low_open else "from"
        raise ValueError(f"{flag}: must be {lowest} {low:g} to {high:g}, got {value}")
    return number


def _capacity(policy: Any, overrides: list[str], scale: float) -> dict[str, int]:
    _number("--capacity-scale", scale, 0.0, 1000.0, low_open=True)
    out = {
        name: int(round((f.capacity_gpus if f.capacity_gpus is not None else policy.max_gpus) * scale))
        for name, f in policy.flavors.items()
    }
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or name not in policy.flavors:
            raise ValueError(
                f"--capacity: expected FLAVOR=GPUS with FLAVOR one of "
                f"{', '.join(policy.flavors)}, got {item!r}"
            )
        if not value.strip().isascii() or not value.strip().isdigit() or len(value.strip()) > 7:
            raise ValueError(
                f"--capacity {name}: GPUs must be a whole number from 0 to 9999999, got {value!r}"
            )
        out[name] = int(value)
    return out


def _warm_pool(policy: Any, items: list[str]) -> dict[str, int] | None:
    """``--warm-pool``: ``N`` (every private flavor) or ``FLAVOR=N``; None when not given (the policy's)."""
    if not items:
        return None
    from ..simulate.study import private_pool

    out = {name: f.warm_pool for name, f in policy.flavors.items()}
    for item in (part.strip() for text in items for part in text.split(",") if part.strip()):
        name, sep, value = item.rpartition("=")
        if sep and name not in policy.flavors:
            raise ValueError(
                f"--warm-pool: expected N or FLAVOR=N with FLAVOR one of {', '.join(policy.flavors)}, "
                f"got {item!r}"
            )
        size = int(_number("--warm-pool", value, 0, 1000))
        if float(value) != size:
            raise ValueError(f"--warm-pool: a pool size is a whole number of kernels, got {value!r}")
        out.update({name: size} if sep else private_pool(policy, size))
    return out
