"""Many queued GPU (auto) kernels re-deciding against one member with many pending Workloads (issue 15).

Why: each queued kernel re-decides every ``reevaluate_s`` (5 s). The direct read (``state_from_cluster``
without ``watch``, what every gateway did before) lists every ClusterQueue, LocalQueue, ResourceFlavor and
Workload per decision, so the API server's work grows with notebooks x Workloads; the watch cache
(``watch=True``, what the gateway's backend uses now) lists once per gateway and then costs one visibility
request per decision. This measures both in the same run on the REAL control plane (tests/cluster: etcd,
kube-apiserver, controllers and Kueue built from their Go modules; no kubelet: nothing here runs a pod).

Set-up: one member with the tests' Kueue objects (ClusterQueue gpu-private, LocalQueue jupyter/kernels) and a
ClusterQueue ``batch`` with no GPU quota whose LocalQueue jobs/batch holds W Workloads created directly with
the API (so they stay pending). N simulated gateways, each with its OWN ApiClient (a gateway is a process per
kernel, so each has its own cache), run ``state_from_cluster`` + ``decide`` every ``--every`` seconds from
random offsets. After a warm-up (for the cache: every gateway's first read, which lists everything once) the
window measures: requests the clients sent per second, the API server's own ``apiserver_request_total`` per
second (its /metrics; includes Kueue's and the controllers' requests, which both modes share), the API
server's and Kueue's CPU (``/proc/<pid>/stat``, cores), and decisions per second achieved. W grows between
rounds (``--workloads 1000,3000``), both modes measured at each W.

Run: ``flock /tmp/mlpk-heavy.lock .venv/bin/python benchmarks/bench_many_users.py [--gateways 200]
[--workloads 1000,3000] [--window 20] [--json f]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import kubernetes
import urllib3
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mlp_kernel.placement import GpuRequest, decide, parse_policy  # noqa: E402
from mlp_kernel.placement.adapters import state_from_cluster  # noqa: E402
from mlp_kernel.placement.adapters.watch_cache import drop_caches  # noqa: E402
from tests.cluster import build  # noqa: E402
from tests.cluster.pki import make_pki  # noqa: E402
from tests.cluster.plane import Plane  # noqa: E402
from tests.kubeapi.fixtures import PRIVATE_KUEUE  # noqa: E402

POLICY = parse_policy("""
tiers: [bronze, silver]
members:
  private: {namespace: jupyter, local_queue: kernels}
flavors:
  bronze: {member: private, tier: bronze, gpu_models: [T4], node_labels: {mlp.io/gpu-tier: bronze},
          price_per_gpu_hour: 0}
  silver: {member: private, tier: silver, gpu_models: [V100], node_labels: {mlp.io/gpu-tier: silver},
          price_per_gpu_hour: 0}
""")

BATCH = """
apiVersion: v1
kind: Namespace
metadata: {name: jobs}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: batch}
spec:
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [nvidia.com/gpu]
    flavors:
    - name: bronze
      resources:
      - {name: nvidia.com/gpu, nominalQuota: 0}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: batch, namespace: jobs}
spec: {clusterQueue: batch}
"""


def workload(i: int) -> dict[str, Any]:
    container = {"name": "main", "image": "train", "resources": {"requests": {"nvidia.com/gpu": "1"}}}
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Workload",
        "metadata": {"name": f"job-{i:05d}", "namespace": "jobs"},
        "spec": {
            "queueName": "batch",
            "podSets": [
                {
                    "name": "main",
                    "count": 1,
                    "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
                }
            ],
        },
    }


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request_totals(plane: Plane) -> tuple[float, float]:
    """(all requests, Workload LISTs) from the API server's apiserver_request_total. A saturated API server
    (direct reads, 200 gateways, 3,000 Workloads) took over 10 s to answer /metrics: wait up to 3 min."""
    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(plane.pki.ca))
    resp = http.request(
        "GET",
        plane.url + "/metrics",
        headers={"Authorization": f"Bearer {plane.pki.tokens['admin']}"},
        timeout=urllib3.Timeout(connect=30, read=180),
        retries=False,
    )
    total = workload_lists = 0.0
    for line in resp.data.decode().splitlines():
        if line.startswith("apiserver_request_total{"):
            value = float(line.rsplit(" ", 1)[1])
            total += value
            if 'resource="workloads"' in line and 'verb="LIST"' in line:
                workload_lists += value
    return total, workload_lists


class Gateway:
    """One simulated queued kernel: its own client, a decision every ``every`` seconds."""

    def __init__(self, kubeconfig: Path, context: str, watch: bool) -> None:
        self.api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig), context=context)
        self.watch = watch
        self.requests = 0
        self.decisions = 0
        self.first_done = threading.Event()
        pool = self.api.rest_client.pool_manager
        inner = pool.request

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.requests += 1
            return inner(*args, **kwargs)

        pool.request = counted

    def run(self, stop: threading.Event, every: float, offset: float) -> None:
        stop.wait(offset)
        while not stop.is_set():
            t0 = time.monotonic()
            state = state_from_cluster(POLICY, {"private": self.api}, watch=self.watch)
            decide(POLICY, state, GpuRequest(), datetime.now(timezone.utc))
            self.decisions += 1
            self.first_done.set()
            stop.wait(max(0.0, every - (time.monotonic() - t0)))


def sample(plane: Plane, gateways: list[Gateway]) -> tuple[Any, ...]:
    """(client requests, decisions, API server totals, its CPU s, Kueue's CPU s, when)."""
    return (
        sum(g.requests for g in gateways),
        sum(g.decisions for g in gateways),
        request_totals(plane),
        cpu_s(plane.procs["kube-apiserver"].pid),
        cpu_s(plane.procs["kueue"].pid),
        time.monotonic(),
    )


def measure(
    plane: Plane, kubeconfig: Path, n: int, watch: bool, every: float, window: float
) -> dict[str, Any]:
    gateways = [Gateway(kubeconfig, plane.name, watch) for _ in range(n)]
    stop = threading.Event()
    threads = [
        threading.Thread(target=g.run, args=(stop, every, random.uniform(0, every)), daemon=True)
        for g in gateways
    ]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    warm_deadline = time.monotonic() + 300
    if watch:  # every gateway has read once (its cache listed everything), then one more period
        for g in gateways:
            g.first_done.wait(max(0.0, warm_deadline - time.monotonic()))
    warmup_s = time.monotonic() - t_start  # direct reads have nothing to warm: every gateway has started
    stop.wait(every)
    before = sample(plane, gateways)
    time.sleep(window)
    after = sample(plane, gateways)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    drop_caches()
    for g in gateways:
        g.api.close()
    dt = after[5] - before[5]
    return {
        "mode": "watch cache" if watch else "direct (before)",
        "gateways": n,
        "warmup_s": round(warmup_s, 1),
        "client_req_per_s": round((after[0] - before[0]) / dt, 1),
        "decisions_per_s": round((after[1] - before[1]) / dt, 1),
        "apiserver_req_per_s": round((after[2][0] - before[2][0]) / dt, 1),
        "workload_lists_per_s": round((after[2][1] - before[2][1]) / dt, 1),
        "apiserver_cpu_cores": round((after[3] - before[3]) / dt, 2),
        "kueue_cpu_cores": round((after[4] - before[4]) / dt, 2),
    }


def create_workloads(plane: Plane, start: int, stop: int) -> float:
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: plane.rest.create(workload(i)), range(start, stop)))
    return time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateways", type=int, default=200)
    ap.add_argument("--workloads", default="1000,3000", help="pending Workloads per round, growing")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between one gateway's decisions")
    ap.add_argument("--window", type=float, default=20.0, help="seconds measured per mode and round")
    ap.add_argument("--modes", default="direct,watch", help="direct (before), watch (the cache), or both")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    reason = build.missing_reason()
    if reason or not all(c.built for c in build.COMPONENTS):
        print(f"the real control plane is not built: {reason or 'run python -m tests.cluster.build'}")
        return 2
    random.seed(1)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-many-") as tmp:
        root = Path(tmp)
        t0 = time.monotonic()
        plane = Plane("private", root / "private", make_pki(root / "pki")).start()
        print(f"control plane up in {time.monotonic() - t0:.0f} s", flush=True)
        try:
            for text in (PRIVATE_KUEUE, BATCH):
                for doc in yaml.safe_load_all(text):
                    plane.rest.apply(doc)
            kubeconfig = plane.kubeconfig("admin")
            created = 0
            for target in (int(w) for w in args.workloads.split(",")):
                took = create_workloads(plane, created, target)
                print(f"created {target - created} Workloads in {took:.0f} s (now {target})", flush=True)
                created = target
                cq = plane.rest.get("/apis/kueue.x-k8s.io/v1beta2/clusterqueues/batch")
                pending = (cq.get("status") or {}).get("pendingWorkloads")
                for watch in [m == "watch" for m in args.modes.split(",")]:
                    r = measure(plane, kubeconfig, args.gateways, watch, args.every, args.window)
                    r.update(workloads=target, batch_pending=pending)
                    results.append(r)
                    print(json.dumps(r), flush=True)
        finally:
            plane.stop()
    print()
    print(
        f"{'W':>6} {'mode':<16} {'client req/s':>12} {'apiserver req/s':>15} {'wl LIST/s':>9} "
        f"{'apiserver CPU':>13} {'kueue CPU':>9} {'decisions/s':>11} {'warm-up s':>9}"
    )
    for r in results:
        print(
            f"{r['workloads']:>6} {r['mode']:<16} {r['client_req_per_s']:>12} {r['apiserver_req_per_s']:>15} "
            f"{r['workload_lists_per_s']:>9} {r['apiserver_cpu_cores']:>13} {r['kueue_cpu_cores']:>9} "
            f"{r['decisions_per_s']:>11} {r['warmup_s']:>9}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
