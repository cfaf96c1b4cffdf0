"""Benchmark of the what-if simulator: the figures docs/simulator.md quotes, and how long they take.

One command: ``.venv/bin/python benchmarks/bench_simulate.py [--plots docs/img]``. It prints
1. the generator's calibration against the published trace characteristics;
2. all strategies side by side on the default generated trace (20 users, one week, seed 0) against the
   sample platform policy, public spend against a budget, and the idle-timeout sweep under each rule;
3. the headline figures over ten seeds, five of them not looked at while the predictive rule was written;
4. the runtime of a week of 300 users (pools scaled x15 so the load per GPU matches the default trace);
5. each target of issue 18 with MET / MISSED, for each release rule, under the lead assumption and half of it;
6. the release-rule candidates that were measured before ``gpu-minutes`` was chosen (five seeds each);
7. pre-start's sensitivity to the lead (0: no benefit, the figures without pre-start; 0.5; 1: the
   assumption of ``mlp_kernel/simulate/lead.py``) and its knobs (queueing, a longer hold), ten seeds;
8. what pre-starting a notebook's first kernel changes (``release.prestart.first`` off / on), a release
   rule that prices a restart as the user feels it (pre-start hiding part of it) on the trade-off curve,
   what the remaining waits > 10 s and the p95 tail are made of, and the levers tried on them; ten seeds;
9. what no gateway can beat: gpu-auto with perfect foresight of when each cell comes (``foresight``), at
   the policy's capacities (also with instant starts, and bursting at once) and with the private pools
   x1.5 and x2, beside the shipped rules there; ten seeds.

gpu-auto runs under three release rules (``gpu-minutes``, ``flat``, ``predictive``), each carrying state
over, so every restart pays the restore of the session's variables, and with the policy's pre-start
(``release.prestart``, on by default) under the lead assumption (``LEAD``) unless a section says otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mlp_kernel.placement import load_policy  # noqa: E402
from mlp_kernel.placement.release import FLAT, ReleaseRule, describe, idle_limit_s  # noqa: E402
from mlp_kernel.simulate import (  # noqa: E402
    SimConfig,
    by_name,
    compare,
    format_budget,
    format_sweep,
    format_table,
    generate,
    generate_sessions,
    gpu_auto,
    idle_sweep,
)
from mlp_kernel.simulate.engine import Engine, simulate  # noqa: E402
from mlp_kernel.simulate.metrics import StrategyResult, summarise  # noqa: E402
from mlp_kernel.simulate.strategies import NAMES, foresight  # noqa: E402
from mlp_kernel.simulate.study import DEFAULT_SWEEP_MIN  # noqa: E402
from mlp_kernel.simulate.trace_stats import compare as calibration  # noqa: E402

POLICY = REPO / "kernelspecs/gpu-auto/platform-policy.yaml"
PRIVATE = ("bronze", "silver")
"""The sample policy's private flavors (section 9 scales them)."""
BUDGET_USD = 2000.0


RULES: tuple[tuple[str, ReleaseRule], ...] = (
    ("gpu-auto", ReleaseRule()),
    ("gpu-auto flat", FLAT),
    ("gpu-auto predictive", ReleaseRule(kind="predictive")),
)
SEEDS = (0, 1, 2, 3, 4)
UNSEEN_SEEDS = (101, 202, 303, 404, 505)
"""Seeds 0-4 are the ones the figures were read on while the predictive rule was written; the others were
run only once it was done, to check nothing was tuned to one trace."""
TARGET_HELD, TARGET_SLOW, TARGET_P95 = 1.10, 0.20, 30.0
LEAD = 1.0
"""The lead scale of sections 2-5 (``SimConfig.lead_scale``): the documented assumption."""
LEADS = (0.0, 0.5, 1.0)
"""Section 7's sensitivity: no lead (the figures without pre-start), half the assumption, the assumption."""
WITH_LEAD = SimConfig(lead_scale=LEAD)


def gpu_autos(idle: float) -> list[Any]:
    """gpu-auto under each release rule, carrying state over (``%gpu keep=on``), so every restart after a
    release pays the restore of the session's variables (issue 18: the added latency includes it)."""
    return [replace(gpu_auto(idle, True, rule), name=name) for name, rule in RULES]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plots", type=Path, help="write the PNGs here (docs/img for the docs)")
    args = ap.parse_args()
    policy = load_policy(POLICY)
    idle = policy.idle_timeout_s
    strategies = [by_name(n, idle) for n in NAMES if n != "gpu-auto"] + gpu_autos(idle)
    sweep_s = [60 * m for m in DEFAULT_SWEEP_MIN]

    print("== 1. generator calibration (3000 sessions, seed 11) ==")
    for name, stat, target, measured in calibration(generate_sessions(3000, seed=11)):
        print(
            f"  {name:22s} {stat:5s} target {target:>10.3f}  measured {measured:>10.3f}  "
            f"({measured / target:.2f}x)"
        )

    print("\n== 2. default trace: 20 users, 7 days, seed 0; policy", POLICY.relative_to(REPO), "==")
    print(
        f"  gpu-auto: {describe(idle, ReleaseRule())}; gpu-auto flat: every kernel after {idle / 60:g} min "
        f"idle; gpu-auto predictive: {describe(idle, ReleaseRule(kind='predictive'))}; all three carry "
        "state over (a restart restores the session's variables)"
    )
    trace = generate(users=20, days=7, seed=0)
    print(f"  {len(trace.sessions)} sessions, {len(trace.cells)} cells, {trace.span_s / 3600:.0f} h")
    t0 = time.perf_counter()
    comparison = compare(policy, trace, strategies, WITH_LEAD)
    sweeps = {
        name: idle_sweep(policy, trace, sweep_s, WITH_LEAD, state_carry_over=True, release_rule=rule)
        for name, rule in RULES
    }
    default_s = time.perf_counter() - t0
    print(format_table(comparison.results))
    print(format_budget(comparison.results, BUDGET_USD))
    for name, sweep in sweeps.items():
        print(f"\nidle-timeout sweep, {name} (the idle timeout is a 1-GPU kernel's; the restart cost):")
        print(format_sweep(sweep))
        print(
            "  held/busy vs GPU cells waiting > 10 s and p95 added latency: "
            + "  ".join(
                f"{(r.idle_timeout_s or 0) / 60:g}m {r.held_per_busy:.2f}x/{r.waited_over_10s_share:.0%}/"
                f"{r.added_p95_s:.0f}s"
                for r in sweep
            )
        )
    print(
        f"  ({len(strategies)} strategies + 3 x {len(sweep_s)}-point sweeps simulated in {default_s:.1f} s)"
    )
    if args.plots:
        from mlp_kernel.simulate.plots import plot_held_vs_busy

        print("  wrote", plot_held_vs_busy(comparison.runs, args.plots / "simulator-held-vs-busy.png"))

    print("\n== 3. ten seeds (20 users, 7 days): seeds 0-4, then 101-505 not looked at while tuning ==")
    names = [s.name for s in strategies]
    per_seed: dict[str, list[StrategyResult]] = {n: [] for n in names}
    by_size: dict[tuple[str, int], list[tuple[bool, float]]] = {}
    traces10 = {seed: generate(users=20, days=7, seed=seed) for seed in SEEDS + UNSEEN_SEEDS}
    for tr in traces10.values():
        c = compare(policy, tr, strategies, WITH_LEAD)
        for r, run in zip(c.results, c.runs, strict=True):
            per_seed[r.strategy].append(r)
            if r.strategy.startswith("gpu-auto"):
                for cell in run.cells:
                    if cell.gpus > 0 and cell.first_output_s is not None and not cell.rejected:
                        by_size.setdefault((r.strategy, cell.gpus), []).append((cell.cold_start, cell.wait_s))
    rows: list[tuple[str, Callable[[StrategyResult], str]]] = [
        ("held/busy", lambda r: f"{r.held_per_busy:.2f}x"),
        ("waiting > 10 s", lambda r: f"{r.waited_over_10s_share:.0%}"),
        ("all cells > 10 s", lambda r: f"{r.code_cells_over_10s_share:.0%}"),
        ("added p95 (s)", lambda r: f"{r.added_p95_s:.0f}"),
        ("added p99 (s)", lambda r: f"{r.added_p99_s:.0f}"),
        ("start+restore p95", lambda r: f"{r.start_p95_s:.0f}"),
        ("CPU cells restart", lambda r: f"{r.restart_cpu_cells}"),
    ]
    for name in names:
        for label, fn in rows:
            if not name.startswith("gpu-auto") and label != "held/busy":
                continue
            print(f"  {name:20s} {label:18s} " + " ".join(f"{fn(r):>6s}" for r in per_seed[name]))
    print("  by kernel size, ten seeds pooled: cold starts / wait p95 (s)")
    for g in sorted({g for _, g in by_size}):
        cells = [by_size.get((name, g), []) for name, _ in RULES]
        print(
            f"  {g} GPU{'s' if g > 1 else ' '} {len(cells[0]):>6,} GPU cells  "
            + "  ".join(
                f"{name.removeprefix('gpu-auto').strip() or 'gpu-minutes'} "
                f"{100 * float(np.mean([x[0] for x in v])):.0f}% / "
                f"{float(np.percentile([x[1] for x in v], 95)):.0f}"
                for (name, _), v in zip(RULES, cells, strict=True)
            )
        )

    print("\n== 4. runtime: a week of 300 users, pools x15 ==")
    t0 = time.perf_counter()
    big = generate(users=300, days=7, seed=1)
    gen_s = time.perf_counter() - t0
    scaled = {n: (f.capacity_gpus or 0) * 15 for n, f in policy.flavors.items()}
    t0 = time.perf_counter()
    big_results = compare(policy, big, strategies, SimConfig(capacity=scaled, lead_scale=LEAD)).results
    sim_s = time.perf_counter() - t0
    print(f"  {len(big.sessions)} sessions, {len(big.cells)} cells; capacity {scaled}")
    print(
        f"  generated in {gen_s:.1f} s; {len(strategies)} strategies simulated in {sim_s:.1f} s "
        f"({sum(r.decisions for r in big_results):,} placement calls)"
    )
    print("  " + "  ".join(f"{r.strategy} {r.held_per_busy:.2f}x" for r in big_results))

    sensitivity = {
        (lead, name): [
            summarise(simulate(policy, tr, gpu_autos(idle)[i], SimConfig(lead_scale=lead)))
            for tr in traces10.values()
        ]
        for lead in LEADS
        if lead != LEAD
        for i, (name, _) in enumerate(RULES)
    }
    sensitivity.update({(LEAD, name): per_seed[name] for name, _ in RULES})

    print("\n== 5. issue 18 targets, every rule at the policy's idle timeout, on all ten seeds ==")
    for lead in (LEAD, LEAD / 2):
        print(f"  lead x{lead:g} (pre-start on, the policy's default):")
        for name, _ in RULES:
            _targets(name, sensitivity[(lead, name)])
    print(
        f"  {'MET   ' if gen_s + sim_s < 60 else 'MISSED'} week of 300 users under a minute: "
        f"{gen_s + sim_s:.1f} s"
    )
    print("  best point of each rule's sweep on seed 0 (lowest held/busy with <= 20% waiting > 10 s):")
    for name, sweep in sweeps.items():
        ok = [r for r in sweep if r.waited_over_10s_share <= TARGET_SLOW]
        best = min(ok, key=lambda r: r.held_per_busy) if ok else None
        print(
            f"    {name:20s} "
            + (
                f"idle {(best.idle_timeout_s or 0) / 60:g} min: {best.held_per_busy:.2f}x, "
                f"{best.waited_over_10s_share:.0%}, p95 {best.added_p95_s:.0f} s"
                if best
                else "none of the sweep's points"
            )
        )

    _section_7(policy, idle, traces10, sensitivity)
    _section_8(policy, idle, traces10)
    _section_9(policy, traces10)

    print("\n== 6. release-rule candidates, gpu-auto at the 15 min default carrying state, five seeds ==")
    print(
        f"  {'rule':34s} {'held/busy per seed':30s} {'worst':>6s} {'waiting > 10 s':>14s} {'added p95':>9s}"
    )
    traces = [generate(users=20, days=7, seed=seed) for seed in SEEDS]
    for label, limit in CANDIDATES:
        config = SimConfig(user_history="user's history" in label)
        rs = [
            summarise(CandidateEngine(policy, t, gpu_auto(idle, True), config, limit).run()) for t in traces
        ]
        hb = [r.held_per_busy for r in rs]
        print(
            f"  {label:34s} {'  '.join(f'{x:.3f}' for x in hb):30s} {max(hb):>6.3f} "
            f"{sum(r.waited_over_10s_share for r in rs) / 5:>14.0%} "
            f"{sum(r.added_p95_s for r in rs) / 5:>8.0f}s"
        )
    return 0


def _targets(name: str, rs: list[StrategyResult]) -> None:
    worst_held = max(r.held_per_busy for r in rs)
    worst_slow = max(r.waited_over_10s_share for r in rs)
    worst_p95 = max(r.added_p95_s for r in rs)
    for text, ok in (
        (f"held/busy <= {TARGET_HELD:.2f}x: worst {worst_held:.2f}x", worst_held <= TARGET_HELD),
        (f"GPU cells waiting > 10 s <= {TARGET_SLOW:.0%}: worst {worst_slow:.0%}", worst_slow <= TARGET_SLOW),
        (f"p95 added latency <= {TARGET_P95:.0f} s: worst {worst_p95:.0f} s", worst_p95 <= TARGET_P95),
    ):
        print(f"    {'MET   ' if ok else 'MISSED'} {name:20s} {text}")


def _section_7(
    policy: Any,
    idle: float,
    traces: dict[int, Any],
    sensitivity: dict[tuple[float, str], list[StrategyResult]],
) -> None:
    """Pre-start against its lead (ten seeds, the policy's idle timeout) and its knobs (five seeds)."""
    print("\n== 7. pre-start: sensitivity to the lead (ten seeds), then its knobs (seeds 0-4, lead x1) ==")
    print("  rule                 lead  held/busy per seed / GPU cells waiting > 10 s / added p95 (s)")
    for name, _ in RULES:
        for lead in LEADS:
            rs = sensitivity[(lead, name)]
            print(f"  {name:20s} x{lead:<4g} held " + " ".join(f"{r.held_per_busy:5.2f}" for r in rs))
            print(f"  {'':20s} {'':5s} >10s " + " ".join(f"{r.waited_over_10s_share:5.0%}" for r in rs))
            print(f"  {'':20s} {'':5s} p95  " + " ".join(f"{r.added_p95_s:5.0f}" for r in rs))
        rs = sensitivity[(LEAD, name)]
        print(
            f"  {'':20s} pre-starts per week (dropped unused, their GPU-hours): "
            + " ".join(f"{r.prestarts}({r.prestarts_dropped},{r.prestart_dropped_gpu_h:.0f})" for r in rs)
        )
    knobs = [
        ("queue: true", lambda r: replace(r, prestart=replace(r.prestart, queue=True))),
        ("hold: 5m", lambda r: replace(r, prestart=replace(r.prestart, hold_s=300.0))),
        (
            "off (release.prestart.enabled: false)",
            lambda r: replace(r, prestart=replace(r.prestart, enabled=False)),
        ),
    ]
    five = [traces[s] for s in SEEDS]
    for name, rule in RULES:
        for label, change in knobs:
            rs = [
                summarise(
                    simulate(policy, tr, replace(gpu_auto(idle, True, change(rule)), name=name), WITH_LEAD)
                )
                for tr in five
            ]
            print(
                f"  {name:20s} {label:38s} held "
                + " ".join(f"{r.held_per_busy:.2f}" for r in rs)
                + "  >10s "
                + " ".join(f"{r.waited_over_10s_share:.0%}" for r in rs)
                + "  p95 "
                + " ".join(f"{r.added_p95_s:.0f}" for r in rs)
            )


def _section_8(policy: Any, idle: float, traces: dict[int, Any]) -> None:
    """Issue 18's remaining targets: the first kernel's pre-start, the felt-cost rule, the breakdown."""
    print("\n== 8. first-kernel pre-start, felt restart cost, what is left (ten seeds, lead x1) ==")
    print("  mean held/busy / mean GPU cells waiting > 10 s (range over seeds) / p95 per seed (s)")

    def line(label: str, rs: list[StrategyResult]) -> None:
        hb, slow = [r.held_per_busy for r in rs], [r.waited_over_10s_share for r in rs]
        print(
            f"  {label:62s} {np.mean(hb):.3f} ({min(hb):.2f}-{max(hb):.2f})  {np.mean(slow):5.1%} "
            f"({min(slow):.0%}-{max(slow):.0%})  p95 " + " ".join(f"{r.added_p95_s:.0f}" for r in rs)
        )

    def runs(engine: type[Engine], rule: ReleaseRule, idle_s: float = idle, pol: Any = policy) -> list[Any]:
        return [engine(pol, tr, gpu_auto(idle_s, True, rule), WITH_LEAD).run() for tr in traces.values()]

    for name, rule in RULES:
        for first in (False, True):
            changed = replace(rule, prestart=replace(rule.prestart, first=first))
            line(f"{name} first={'on' if first else 'off'}", [summarise(r) for r in runs(Engine, changed)])
    print("  the felt restart cost (FeltEngine) against its rule on the curve (base idle timeout in min):")
    for name, rule in RULES[::2]:
        for minutes in (5, 10, 15, 30, 60):
            line(f"{name} {minutes} min", [summarise(r) for r in runs(Engine, rule, 60.0 * minutes)])
            line(
                f"{name} {minutes} min, felt", [summarise(r) for r in runs(FeltEngine, rule, 60.0 * minutes)]
            )
    for name, rule in RULES:
        recs = runs(Engine, rule)
        counts, tail, n = _breakdown(recs)
        total, tails = sum(counts.values()), sum(tail.values())
        print(f"  {name}: {total} of {n} GPU cells waited > 10 s ({total / n:.1%}); {tails} at or above p95:")
        for why, k in sorted(counts.items(), key=lambda kv: -kv[1]):
            print(
                f"    {why:44s} {k:5d} {k / n:6.1%} of GPU cells  "
                f"{tail[why]:4d} ({tail[why] / tails:.0%} of the tail)"
            )
    private = [n for n, f in policy.flavors.items() if not policy.members[f.member].public]
    for gpus in (4, 8):
        pooled = replace(
            policy,
            flavors={
                n: replace(f, warm_pool=1, warm_pool_gpus=gpus) if n in private else f
                for n, f in policy.flavors.items()
            },
        )
        for name, rule in RULES:
            line(
                f"{name}, pool: one {gpus}-GPU kernel per private flavor",
                [summarise(r) for r in runs(Engine, rule, pol=pooled)],
            )
    for label, engine in (
        ("every dropped pre-start gives the chance back", RearmEngine),
        ("pre-start queues, 4+ GPUs only", QueueBigEngine),
    ):
        for name, rule in RULES:
            line(f"{name}, {label}", [summarise(r) for r in runs(engine, rule)])


def _section_9(policy: Any, traces: dict[int, Any]) -> None:
    """Issue 18's targets against perfect foresight: which are out of reach of any release rule and pre-start
    at these capacities (docs/simulator.md, "Perfect foresight")."""
    print("\n== 9. perfect foresight (ten seeds): held/busy, GPU cells waiting > 10 s, p95 added (s) ==")
    print("  range over seeds; then on how many seeds each target holds (held, waiting, p95) and all three")
    instant = {"cold_start_private_s": 0.0, "cold_start_public_s": 0.0, "restore_overhead_s": 0.0}
    instant["restore_mb_per_s"] = 1e12
    at_once = replace(policy, burst=replace(policy.burst, threshold_s=0.0))

    def row(label: str, strategy: Any, pol: Any = policy, **config: Any) -> None:
        rs = [summarise(simulate(pol, tr, strategy, SimConfig(**config))) for tr in traces.values()]
        hb, slow, p95 = (
            [getattr(r, a) for r in rs] for a in ("held_per_busy", "waited_over_10s_share", "added_p95_s")
        )
        met = [
            (h <= TARGET_HELD, w <= TARGET_SLOW, p <= TARGET_P95)
            for h, w, p in zip(hb, slow, p95, strict=True)
        ]
        counts = "/".join(str(sum(m[i] for m in met)) for i in range(3))
        print(
            f"  {label:56s} {min(hb):.2f}-{max(hb):.2f}x  {min(slow):4.0%}-{max(slow):4.0%}  "
            f"{min(p95):5.0f}-{max(p95):5.0f}  {counts:8s} all three {sum(all(m) for m in met)}"
        )

    bound = foresight(state_carry_over=True)
    at_zero = gpu_auto(0.0, True, FLAT)  # every rule at 0 min: released when idle (the least held measured)
    now = f"any rule at 0 min: released at once (lead x{LEAD:g})"
    print("  the policy's capacities:")
    row("foresight", bound)
    row("foresight, starts and restores instant (queueing only)", bound, **instant)
    row("... and bursting at once (threshold 0)", bound, at_once, **instant)
    row(now, at_zero, lead_scale=LEAD)
    for scale in (1.5, 2.0):
        private = {n: int(f.capacity_gpus * scale) for n, f in policy.flavors.items() if n in PRIVATE}
        sizes = ", ".join(f"{n} {g}" for n, g in private.items())
        print(f"  private pools x{scale:g} ({sizes}; public unchanged):")
        row("foresight", bound, capacity=private)
        row(now, at_zero, capacity=private, lead_scale=LEAD)
        for name, rule in RULES:
            for minutes in (15, 2):
                strategy = replace(gpu_auto(60.0 * minutes, True, rule), name=name)
                row(f"{name} {minutes} min (lead x{LEAD:g})", strategy, capacity=private, lead_scale=LEAD)


def _breakdown(runs: list[Any]) -> tuple[dict[str, int], dict[str, int], int]:
    """Why each GPU cell that waited > 10 s waited (the first matching cause), and how many of them are at or
    above their seed's p95 added latency; also the number of GPU cells."""
    counts: dict[str, int] = {}
    tail: dict[str, int] = {}
    n = 0
    for run in runs:
        mine: dict[str, list[Any]] = {}
        for a in run.allocations:
            mine.setdefault(a.session, []).append(a)
        cells = [c for c in run.cells if c.gpus > 0 and c.first_output_s is not None and not c.rejected]
        n += len(cells)
        p95 = float(np.percentile([c.wait_s for c in cells], 95))
        ends = {(c.session, c.index): c.end_s for c in run.cells}
        for c in cells:
            if c.wait_s <= 10:
                continue
            allocs = mine.get(c.session, [])
            prev_end = ends.get((c.session, c.index - 1), -1.0) or -1.0
            k = next(
                (
                    a
                    for a in allocs
                    if not a.prestart_dropped and a.start_s <= c.first_output_s <= (a.end_s or 1e18)
                ),
                None,
            )
            size = f"{c.gpus} GPU{'s' if c.gpus > 1 else ''}"
            if c.wait_s - c.cold_wait_s >= 10:
                why = f"queued ({'then burst' if k is not None and k.public else 'private'}), {size}"
            elif any(a.prestart_dropped and prev_end <= a.start_s <= c.submit_s for a in allocs):
                why = "a spurious edit's pre-start was dropped"
            elif k is not None and k is min(allocs, key=lambda a: a.start_s):
                why = "first kernel, " + ("lead < start" if c.prestarted else "not pre-started")
            elif c.prestarted:
                why = "restart pre-started, lead < start"
            elif k is not None and k.public:
                why = f"public cold start (90 s), {size}"
            elif c.restore_s >= 10 and c.cold_wait_s - c.restore_s < 10:
                why = "restore"
            else:
                why = "restart, not pre-started (no lead, refused)"
            counts[why] = counts.get(why, 0) + 1
            if c.wait_s >= p95:
                tail[why] = tail.get(why, 0) + 1
    for why in counts:
        tail.setdefault(why, 0)
    return counts, tail, n


class FeltEngine(Engine):
    """A release rule that prices a restart as the user will feel it (measured here, not shipped: it lands on
    its own rule's trade-off curve, docs/simulator.md "Targets (issue 18)"). ``idle_timeout`` stays the worth
    of a whole cold start (start + restore); the part the notebook's pre-starts are expected to hide is not
    counted (the mean over its kernel starts of what each start's lead left unhidden, never more than the
    time between the release and the next cell; none for a start that queued or went public, which a
    pre-start cannot hide), and the new start's own GPU-time is. Inputs the gateway knows: the kernel's
    start (admission to ready), whether it queued or went public, and per earlier start how long before its
    cell the pre-start came (``_SessionRun.leads``)."""

    def _arm_idle_check(self, t: float, k: Any) -> None:
        a, rule = k.alloc, self.release_rule
        start = (a.ready_s - a.start_s) if a.ready_s is not None else 0.0
        leads = k.sess.leads[-rule.history :]
        if a.prestart and a.cells_run == 0 or start <= 0 or not leads or a.public or a.queued:
            return super()._arm_idle_check(t, k)
        unhidden = sum(max(0.0, start - x) for x in leads) / (len(leads) * start)
        base, n = self.strategy.idle_timeout_s or 0.0, max(1, a.gpus)
        gaps = k.sess.gaps[-rule.history :] if rule.kind == "predictive" else []
        if len(gaps) < 3:
            limit = min(base, max(rule.min_idle_s, base * unhidden / n + start))
        else:
            limit = min(base, _felt_hold(gaps, n, base, unhidden, start))
        self.at(t + limit, self._idle_check, k, k.token)


def _felt_hold(gaps: list[float], gpus: int, restart_gpu_s: float, unhidden: float, start_s: float) -> float:
    """``predictive``'s hold with each restart priced as felt: a gap ``g`` that outlasts the hold ``h`` costs
    the hold, the new start's GPU-time and ``restart_gpu_s`` times the share a pre-start leaves unhidden
    with ``g - h`` to work in."""
    best_h, best_cost = 0.0, float("inf")
    for h in [0.0, *sorted({g * 1.1 for g in gaps})]:
        cost = 0.0
        for g in gaps:
            share = min(1.0, max(unhidden, 1.0 - (g - h) / start_s))
            cost += gpus * g if g <= h else gpus * (h + start_s) + restart_gpu_s * share
        if cost <= best_cost:
            best_h, best_cost = h, cost
    return best_h


class RearmEngine(Engine):
    """Lever: every pre-start dropped unused gives the session its chance back, for any activity (shipped: one
    second chance per cell that ran, for a code edit only; ``placement/prestart.py``)."""

    def _release(self, t: float, k: Any) -> None:
        super()._release(t, k)
        if k.alloc.prestart and k.alloc.cells_run == 0:
            k.sess.ran_since_prestart = True


class QueueBigEngine(Engine):
    """Lever: a pre-start of a 4- or 8-GPU kernel may join a private queue (``queue: true`` for those)."""

    def _prestart(self, t: float, sr: Any) -> None:
        rule = self.release_rule
        if max(sr.last_gpus, 1) >= 4:
            self.release_rule = replace(rule, prestart=replace(rule.prestart, queue=True))
        try:
            super()._prestart(t, sr)
        finally:
            self.release_rule = rule


Limit = Callable[[float, int, list[float]], float]


class CandidateEngine(Engine):
    """The engine with a candidate release limit ``limit(idle_timeout_s, gpus, session_gaps_s)`` in place of
    the shipped rule: only for comparing candidates here; the product's rule is ``release.idle_limit_s``."""

    def __init__(self, policy: Any, trace: Any, strategy: Any, config: SimConfig, limit: Limit) -> None:
        super().__init__(policy, trace, strategy, config)
        self.limit = limit

    def _arm_idle_check(self, t: float, k: Any) -> None:
        gaps = self.user_gaps.get(k.sess.s.user, []) if self.config.user_history else k.sess.gaps
        base = self.strategy.idle_timeout_s or 0.0
        self.at(t + self.limit(base, k.alloc.gpus, gaps), self._idle_check, k, k.token)


def _shipped(rule: ReleaseRule) -> Limit:
    return lambda base, gpus, gaps: idle_limit_s(base, gpus, rule, gaps) or 0.0


def _adaptive(mult: float, floor_s: float) -> Limit:
    """``mult`` x the session's own p75 gap so far, over the GPU count, within [floor, base]; before three
    gaps are seen, the gpu-minutes rule."""

    def limit(base: float, gpus: int, gaps: list[float]) -> float:
        if len(gaps) < 3:
            return min(base, max(floor_s, base / max(1, gpus)))
        return min(base, max(floor_s, mult * float(np.quantile(gaps, 0.75)) / max(1, gpus)))

    return limit


CANDIDATES: list[tuple[str, Limit]] = [
    ("flat (the old rule)", _shipped(FLAT)),
    ("gpu-minutes, no floor", _shipped(ReleaseRule(min_idle_s=0))),
    ("gpu-minutes, floor 2 min", _shipped(ReleaseRule(min_idle_s=120))),
    ("gpu-minutes, floor 3 min (shipped)", _shipped(ReleaseRule())),
    ("gpu-minutes, floor 4 min", _shipped(ReleaseRule(min_idle_s=240))),
    ("gpu-minutes, floor 5 min", _shipped(ReleaseRule(min_idle_s=300))),
    ("timeout / GPUs^0.75, floor 3 min", lambda b, g, _: min(b, max(180.0, b / max(1, g) ** 0.75))),
    ("4+ GPUs: 3 min, else timeout", lambda b, g, _: b if g < 4 else min(b, 180.0)),
    ("adaptive: 2 x own p75 gap / GPUs", _adaptive(2.0, 180.0)),
    ("adaptive: 3 x own p75 gap / GPUs", _adaptive(3.0, 180.0)),
    ("flat 5 min", lambda b, g, _: 300.0),
    ("predictive (shipped)", _shipped(ReleaseRule(kind="predictive"))),
    ("predictive, last 5 gaps", _shipped(ReleaseRule(kind="predictive", history=5))),
    ("predictive, the user's history", _shipped(ReleaseRule(kind="predictive", history=50))),
]


if __name__ == "__main__":
    sys.exit(main())
