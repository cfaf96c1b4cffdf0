"""Benchmark of one placement decision at platform scale: p50 must stay under 1 ms.

Why: the gateway calls ``decide`` on every cell that needs a GPU and again while a request waits in a queue
(re-placement under the burst rule), and the simulator calls it for every arrival of a week-long trace. The
decision must be cheap however busy the clusters are.

Scale (from the issue): 50 flavors over 10 members (7 private, 3 public, 5 flavors each, overlapping GPU
models so the burst rule has real choices), 10,000 pending Workloads in the clusters. The state is built once
from real-shaped Kueue objects through the dump adapter (timed separately: it is I/O-side and runs once per
refresh, not per decision), then ``decide`` is timed for a mix of requests that exercise every rule: free
private quota (run), full private flavors with queue estimates (queue / burst), public-only models, rejects.

Run: ``.venv/bin/python benchmarks/bench_placement.py [--iterations 3000] [--json out.json]``.
Prints the figures; exit status 1 when p50 >= 1 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlp_kernel.placement import GpuRequest, Policy, decide, parse_policy  # noqa: E402
from mlp_kernel.placement.adapters import state_from_objects  # noqa: E402

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
MODELS = ["RTX", "T4", "V100", "A30", "L4", "L40S", "A100", "H100", "H200", "B200"]
TIERS = ["bronze", "silver", "gold", "platinum", "diamond"]
GPU = "nvidia.com/gpu"


def build_policy(members: int = 10, flavors_per_member: int = 5, public_members: int = 3) -> Policy:
    doc: dict[str, Any] = {
        "tiers": TIERS,
        "members": {},
        "flavors": {},
        "max_gpus": 8,
        "burst": {"threshold": "10m", "deadline_horizon": "2h"},
        "data_classes": {"known": ["public", "internal", "sensitive"], "keep_private": ["sensitive"]},
    }
    for m in range(members):
        name = f"member-{m}"
        doc["members"][name] = {
            "public": m >= members - public_members,
            "namespace": "jupyter",
            "local_queue": "kernels",
            "cluster_queue": f"cq-{m}",
            "karmada_cluster": name,
        }
        for k in range(flavors_per_member):
            models = [MODELS[(m + k) % len(MODELS)], MODELS[(m + 2 * k + 1) % len(MODELS)]]
            doc["flavors"][f"f{m}-{k}"] = {
                "member": name,
                "tier": TIERS[k % len(TIERS)],
                "gpu_models": sorted(set(models)),
                "node_labels": {"mlp.io/gpu-tier": f"f{m}-{k}"},
                "price_per_gpu_hour": round(0.5 * k + (3.0 if m >= members - public_members else 0.0), 2),
            }
    return parse_policy(doc)


def build_objects(policy: Policy, pending_total: int) -> dict[str, list[dict[str, Any]]]:
    """ClusterQueues (mostly full), LocalQueues, admitted and pending Workloads, Karmada Clusters."""
    out: dict[str, list[dict[str, Any]]] = {}
    members = list(policy.members.values())
    per_member = pending_total // len(members)
    for i, member in enumerate(members):
        flavors = policy.flavors_of(member.name)
        cq = {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "ClusterQueue",
            "metadata": {"name": member.cluster_queue},
            "spec": {
                "namespaceSelector": {},
                "resourceGroups": [
                    {
                        "coveredResources": [GPU],
                        "flavors": [
                            {"name": f.name, "resources": [{"name": GPU, "nominalQuota": 8}]} for f in flavors
                        ],
                    }
                ],
            },
            "status": {
                "conditions": [{"type": "Active", "status": "True"}],
                "flavorsUsage": [
                    {"name": f.name, "resources": [{"name": GPU, "total": _used(member.public, i, k)}]}
                    for k, f in enumerate(flavors)
                ],
            },
        }
        lq = {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "LocalQueue",
            "metadata": {"name": "kernels", "namespace": "jupyter"},
            "spec": {"clusterQueue": member.cluster_queue},
        }
        objs: list[dict[str, Any]] = [cq, lq]
        for n in range(per_member):
            f = flavors[n % len(flavors)]
            objs.append(_workload(f"w{i}-{n}", f.name, pending=True))
        for n in range(30):  # admissions over the last hour, for rates
            f = flavors[n % len(flavors)]
            objs.append(
                _workload(f"a{i}-{n}", f.name, pending=False, cq=member.cluster_queue, minutes_ago=2 * n)
            )
        objs.append(
            {
                "apiVersion": "cluster.karmada.io/v1alpha1",
                "kind": "Cluster",
                "metadata": {"name": member.name},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }
        )
        out[member.name] = objs
    return out


def _used(public: bool, member_index: int, flavor_index: int) -> int:
    """Private flavors are full except one (so 'any GPU' still runs); public ones have room."""
    return 6 if public or (member_index == 0 and flavor_index == 4) else 8


def _workload(
    name: str, flavor: str, *, pending: bool, cq: str = "", minutes_ago: float = 0
) -> dict[str, Any]:
    w: dict[str, Any] = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": "jupyter"},
        "spec": {
            "queueName": "kernels",
            "podSets": [
                {
                    "name": "main",
                    "count": 1,
                    "template": {
                        "spec": {
                            "nodeSelector": {"mlp.io/gpu-tier": flavor},
                            "containers": [{"name": "k", "resources": {"requests": {GPU: "1"}}}],
                        }
                    },
                }
            ],
        },
    }
    if not pending:
        at = (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
        w["status"] = {
            "admission": {
                "clusterQueue": cq,
                "podSetAssignments": [{"name": "main", "flavors": {GPU: flavor}}],
            },
            "conditions": [
                {"type": "QuotaReserved", "status": "True", "lastTransitionTime": at},
                {"type": "Finished", "status": "True"},
            ],
        }
    return w


def requests() -> list[GpuRequest]:
    flex = {"burstable": True, "budget": "flex"}
    return [
        GpuRequest(),  # any GPU: a free private flavor wins
        GpuRequest(gpu_model="V100", **flex),
        GpuRequest(gpu_model="H100", gpu_count=2, waited_s=900, **flex),
        GpuRequest(gpu_model="A30", deadline=NOW + timedelta(minutes=30), waited_s=200, **flex),
        GpuRequest(tier="gold", gpu_count=4, data_class="sensitive", **flex),
        GpuRequest(gpu_model="B200", budget="fixed"),
        GpuRequest(gpu_model="RTX", gpu_count=8, **flex),
        GpuRequest(gpu_model="MI300X"),  # unknown model: reject
    ]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    policy = build_policy()
    objects = build_objects(policy, args.pending)
    pending = sum(
        1 for objs in objects.values() for o in objs if o["kind"] == "Workload" and "status" not in o
    )
    t0 = time.perf_counter()
    state = state_from_objects(policy, objects, now=NOW)
    state_ms = (time.perf_counter() - t0) * 1000

    reqs = requests()
    actions = {}
    for r in reqs:  # warm up, and record what each request exercises
        d = decide(policy, state, r, NOW)
        actions[f"{r.gpu_model or r.tier or 'any'} x{r.gpu_count}"] = d.action.value
    samples: list[float] = []
    per_kind: dict[str, list[float]] = {}
    for i in range(args.iterations):
        r = reqs[i % len(reqs)]
        t = time.perf_counter()
        d = decide(policy, state, r, NOW)
        elapsed = (time.perf_counter() - t) * 1000
        samples.append(elapsed)
        per_kind.setdefault(d.action.value, []).append(elapsed)
    big = decide(policy, state, reqs[1], NOW)  # a burst: the longest explanation
    t = time.perf_counter()
    for _ in range(200):
        json.dumps(big.to_json())
    json_ms = (time.perf_counter() - t) * 1000 / 200

    figures = {
        "members": len(policy.members),
        "flavors": len(policy.flavors),
        "pending_workloads": pending,
        "iterations": args.iterations,
        "decide_p50_ms": statistics.median(samples),
        "decide_p90_ms": percentile(samples, 0.90),
        "decide_p99_ms": percentile(samples, 0.99),
        "decide_max_ms": max(samples),
        "decide_p50_ms_by_action": {k: statistics.median(v) for k, v in sorted(per_kind.items())},
        "to_json_ms": json_ms,
        "state_from_objects_ms": state_ms,
        "requests": actions,
    }
    print(
        f"placement benchmark: {figures['members']} members, {figures['flavors']} flavors, "
        f"{pending} pending workloads in state, {args.iterations} decisions"
    )
    print(
        f"  decide p50 {figures['decide_p50_ms']:.3f} ms   p90 {figures['decide_p90_ms']:.3f} ms   "
        f"p99 {figures['decide_p99_ms']:.3f} ms   max {figures['decide_max_ms']:.3f} ms"
    )
    for action, p50 in figures["decide_p50_ms_by_action"].items():
        print(f"  decide p50 when the answer is {action:<6} {p50:.3f} ms")
    print(f"  Decision.to_json + json.dumps of a burst decision {json_ms:.3f} ms")
    print(f"  state from Kueue objects (adapter, once per refresh) {state_ms:.0f} ms")
    print(f"  requests: {actions}")
    ok = figures["decide_p50_ms"] < 1.0
    print(f"  target p50 < 1 ms: {'MET' if ok else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
