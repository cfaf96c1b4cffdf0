"""Benchmark of the what-if simulator: the figures docs/simulator.md quotes, and how long they take.

One command: ``.venv/bin/python benchmarks/bench_simulate.py [--plots docs/img]``. It prints
1. the generator's calibration against the published trace characteristics;
2. all strategies side by side on the default generated trace (20 users, one week, seed 0) against the
   sample platform policy, with gpu-auto under the policy's release rule and under the flat rule, public
   spend against a budget, and the gpu-auto idle-timeout sweep under both rules;
3. the same headline figures over five seeds (how much one trace's luck matters);
4. the runtime of a week of 300 users (pools scaled x15 so the load per GPU matches the default trace);
5. each target from the issue with MET / MISSED.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mlp_kernel.placement import load_policy  # noqa: E402
from mlp_kernel.placement.release import FLAT, describe  # noqa: E402
from mlp_kernel.simulate import (  # noqa: E402
    SimConfig,
    by_name,
    cold_share_crossing,
    compare,
    format_budget,
    format_sweep,
    format_table,
    generate,
    generate_sessions,
    gpu_auto,
    idle_sweep,
)
from mlp_kernel.simulate.metrics import StrategyResult  # noqa: E402
from mlp_kernel.simulate.strategies import NAMES  # noqa: E402
from mlp_kernel.simulate.study import DEFAULT_SWEEP_MIN  # noqa: E402
from mlp_kernel.simulate.trace_stats import compare as calibration  # noqa: E402

POLICY = REPO / "kernelspecs/gpu-auto/platform-policy.yaml"
BUDGET_USD = 2000.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plots", type=Path, help="write the PNGs here (docs/img for the docs)")
    args = ap.parse_args()
    policy = load_policy(POLICY)
    idle = policy.idle_timeout_s
    flat = replace(gpu_auto(idle, release_rule=FLAT), name="gpu-auto flat")
    strategies = [by_name(n, idle) for n in NAMES] + [flat]
    sweep_s = [60 * m for m in DEFAULT_SWEEP_MIN]

    print("== 1. generator calibration (3000 sessions, seed 11) ==")
    for name, stat, target, measured in calibration(generate_sessions(3000, seed=11)):
        print(f"  {name:22s} {stat:5s} target {target:>10.3f}  measured {measured:>10.3f}  "
              f"({measured / target:.2f}x)")

    print("\n== 2. default trace: 20 users, 7 days, seed 0; policy", POLICY.relative_to(REPO), "==")
    print(f"  gpu-auto: the policy's release rule ({describe(idle, policy.release)}); "
          f"gpu-auto flat: every kernel after {idle / 60:g} min idle")
    trace = generate(users=20, days=7, seed=0)
    print(f"  {len(trace.sessions)} sessions, {len(trace.cells)} cells, {trace.span_s / 3600:.0f} h")
    t0 = time.perf_counter()
    comparison = compare(policy, trace, strategies)
    sweep = idle_sweep(policy, trace, sweep_s)
    flat_sweep = idle_sweep(policy, trace, sweep_s, release_rule=FLAT)
    default_s = time.perf_counter() - t0
    print(format_table(comparison.results))
    print(format_budget(comparison.results, BUDGET_USD))
    print(f"\nidle-timeout sweep, gpu-auto under the policy's rule ({policy.release.kind}; the idle "
          "timeout is a 1-GPU kernel's):")
    print(format_sweep(sweep))
    print("\nthe same sweep under the flat rule:")
    print(format_sweep(flat_sweep))
    print(f"  ({len(strategies)} strategies + 2 x {len(sweep)}-point sweeps simulated in {default_s:.1f} s)")
    if args.plots:
        from mlp_kernel.simulate.plots import plot_held_vs_busy, plot_idle_sweep

        print("  wrote", plot_held_vs_busy(comparison.runs, args.plots / "simulator-held-vs-busy.png"),
              plot_idle_sweep(sweep, args.plots / "simulator-idle-sweep.png",
                              label=f"gpu-auto ({policy.release.kind} rule)", compare=flat_sweep,
                              compare_label="gpu-auto (flat rule)"))

    print("\n== 3. five seeds (20 users, 7 days): held/busy, cold starts, waits, 25% crossing ==")
    names = [s.name for s in strategies]
    seeds: dict[str, list[float]] = {n: [] for n in names}
    autos: dict[str, list[StrategyResult]] = {"gpu-auto": [], "gpu-auto flat": []}
    crossings: dict[str, list[float | None]] = {"gpu-auto": [], "gpu-auto flat": []}
    for seed in range(5):
        t = generate(users=20, days=7, seed=seed)
        for r in compare(policy, t, strategies).results:
            seeds[r.strategy].append(r.held_per_busy)
            if r.strategy in autos:
                autos[r.strategy].append(r)
        crossings["gpu-auto"].append(cold_share_crossing(idle_sweep(policy, t, sweep_s)))
        flat_t = idle_sweep(policy, t, sweep_s, release_rule=FLAT)
        crossings["gpu-auto flat"].append(cold_share_crossing(flat_t))
    for name, values in seeds.items():
        print(f"  {name:14s} held/busy " + "  ".join(f"{v:.2f}x" for v in values)
              + f"   mean {sum(values) / len(values):.2f}x")
    for name, results in autos.items():
        print(f"  {name:14s} cold-start share " + "  ".join(f"{r.cold_start_share:.0%}" for r in results)
              + f"   mean {sum(r.cold_start_share for r in results) / len(results):.0%}")
        print(f"  {name:14s} wait p95 (s)     " + "  ".join(f"{r.wait_p95_s:.0f}" for r in results))
        print(f"  {name:14s} wait mean (s)    " + "  ".join(f"{r.wait_mean_s:.0f}" for r in results))
        print(f"  {name:14s} dropped kernels  " + "  ".join(f"{r.dropped_kernels}" for r in results))
        print(f"  {name:14s} 25% crossing (min) "
              + "  ".join(f"{c / 60:.0f}" if c is not None else "-" for c in crossings[name]))
    worst = max(seeds["gpu-auto"])

    print("\n== 4. runtime: a week of 300 users, pools x15 ==")
    t0 = time.perf_counter()
    big = generate(users=300, days=7, seed=1)
    gen_s = time.perf_counter() - t0
    scaled = {n: (f.capacity_gpus or 0) * 15 for n, f in policy.flavors.items()}
    t0 = time.perf_counter()
    big_results = compare(policy, big, strategies, SimConfig(capacity=scaled)).results
    sim_s = time.perf_counter() - t0
    print(f"  {len(big.sessions)} sessions, {len(big.cells)} cells; capacity {scaled}")
    print(f"  generated in {gen_s:.1f} s; {len(strategies)} strategies simulated in {sim_s:.1f} s "
          f"({sum(r.decisions for r in big_results):,} placement calls)")
    print("  " + "  ".join(f"{r.strategy} {r.held_per_busy:.2f}x" for r in big_results))

    print("\n== 5. targets ==")
    res = {r.strategy: r for r in comparison.results}
    auto, server = res["gpu-auto"], res["server-held"]
    crossing = cold_share_crossing(sweep)
    checks = [
        (f"gpu-auto (idle {idle / 60:g} min, {describe(idle, policy.release)}) held/busy <= 1.15x: "
         f"{auto.held_per_busy:.2f}x (worst of five seeds {worst:.2f}x)", worst <= 1.15),
        (f"server-held several times worse: held/busy {server.held_per_busy:.2f}x "
         f"({server.held_per_busy / auto.held_per_busy:.1f}x gpu-auto's), idle GPU-hours "
         f"{server.gpu_h_idle / auto.gpu_h_idle:.1f}x gpu-auto's", server.gpu_h_idle >= 3 * auto.gpu_h_idle),
        (f"sweep shows where cold-start share crosses 25%: "
         f"{'~%.0f min' % (crossing / 60) if crossing is not None else 'no crossing'}", crossing is not None),
        (f"week of 300 users under a minute: {gen_s + sim_s:.1f} s", gen_s + sim_s < 60),
    ]
    for text, ok in checks:
        print(f"  {'MET   ' if ok else 'MISSED'} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
