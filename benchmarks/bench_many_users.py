"""Many queued GPU (auto) kernels re-deciding against one member with many pending Workloads (issue 15).

Why: each queued kernel re-decides every ``reevaluate_s`` (5 s). The direct read (``state_from_cluster``
without ``watch``, what every gateway did first) lists every ClusterQueue, LocalQueue, ResourceFlavor and
Workload per decision, so the API server's work grows with notebooks x Workloads; the watch cache
(``watch=True``) lists once per gateway and then costs one visibility request per decision, but that first
list still holds every Workload; with the queue summary (``summary``: the policy's ``queue_summary``, one
``mlp-kernel queue-summary`` publisher per member, run here in-process with its own client as its
Deployment would) a gateway watches one ConfigMap instead, so nothing it reads grows with W. This measures
the three in the same run on the REAL control plane (tests/cluster: etcd, kube-apiserver, controllers and
Kueue built from their Go modules; no kubelet: nothing here runs a pod).

Set-up: one member with the tests' Kueue objects (ClusterQueue gpu-private, LocalQueue jupyter/kernels) and a
ClusterQueue ``batch`` with no GPU quota whose LocalQueue jobs/batch holds W Workloads created directly with
the API (so they stay pending). N simulated gateways, each with its OWN ApiClient (a gateway is a process per
kernel, so each has its own cache), run ``state_from_cluster`` + ``decide`` every ``--every`` seconds from
random offsets. The warm-up is the time until every gateway has its first decision (capped by
``--warmup-cap``: then how many had one is reported); the window after it measures: requests the clients
sent per second, the API server's own ``apiserver_request_total`` per second (its /metrics; includes
Kueue's and the controllers' requests, which every mode shares), Workload LISTs among them, the API
server's and Kueue's CPU (``/proc/<pid>/stat``, cores), and decisions per second achieved. W grows between
rounds (``--workloads 1000,3000``), every mode measured at each W, the summary first (on a quiet plane; the
flood of the others' first lists takes the API server a while to drain, waited for between modes). A mode is
cut short, its API server killed and the run ended, when the API server passes 8 GiB or the machine's
available memory falls under 3 GiB (200 first lists of 10,000 Workloads took it to 23 GB): the row says so.

Run: ``flock /tmp/mlpk-heavy.lock .venv/bin/python benchmarks/bench_many_users.py [--gateways 200]
[--workloads 10000] [--modes summary,watch,direct] [--window 20] [--warmup-cap 90] [--json f]``.
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

from mlp_kernel.cli.queue_summary import Publisher  # noqa: E402
from mlp_kernel.placement import GpuRequest, decide, parse_policy  # noqa: E402
from mlp_kernel.placement.adapters import state_from_cluster  # noqa: E402
from mlp_kernel.placement.adapters.watch_cache import drop_caches  # noqa: E402
from tests.cluster import build  # noqa: E402
from tests.cluster.pki import make_pki  # noqa: E402
from tests.cluster.plane import Plane  # noqa: E402
from tests.kubeapi.fixtures import PRIVATE_KUEUE  # noqa: E402

POLICY_TEXT = """
tiers: [bronze, silver]
members:
  private: {namespace: jupyter, local_queue: kernels%s}
flavors:
  bronze: {member: private, tier: bronze, gpu_models: [T4], node_labels: {mlp.io/gpu-tier: bronze},
          price_per_gpu_hour: 0}
  silver: {member: private, tier: silver, gpu_models: [V100], node_labels: {mlp.io/gpu-tier: silver},
          price_per_gpu_hour: 0}
"""
SUMMARY = ("mlp-kernel", "mlp-queue-summary")
POLICIES = {
    "direct": parse_policy(POLICY_TEXT % ""),
    "watch": parse_policy(POLICY_TEXT % ""),
    "summary": parse_policy(POLICY_TEXT % ", queue_summary: %s/%s" % SUMMARY),
}
MODE_NAMES = {"direct": "direct (before)", "watch": "watch cache", "summary": "queue summary"}
MIN_AVAILABLE_KB = 3 * 1024 * 1024
MAX_APISERVER_KB = 8 * 1024 * 1024

BATCH = """
apiVersion: v1
kind: Namespace
metadata: {name: jobs}
---
apiVersion: v1
kind: Namespace
metadata: {name: mlp-kernel}
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


def counting(api: Any) -> list[int]:
    """A one-item list that counts the client's requests from now on."""
    count = [0]
    pool = api.rest_client.pool_manager
    inner = pool.request

    def counted(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return inner(*args, **kwargs)

    pool.request = counted
    return count


def available_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


class Gateway:
    """One simulated queued kernel: its own client, a decision every ``every`` seconds."""

    def __init__(self, kubeconfig: Path, context: str, mode: str) -> None:
        self.api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig), context=context)
        self.watch = mode != "direct"
        self.policy = POLICIES[mode]
        self._count = counting(self.api)
        self.decisions = 0
        self.first_done = threading.Event()

    @property
    def requests(self) -> int:
        return self._count[0]

    def run(self, stop: threading.Event, every: float, offset: float) -> None:
        stop.wait(offset)
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                state = state_from_cluster(self.policy, {"private": self.api}, watch=self.watch)
            except Exception:  # the client closed under a read when the mode was cut short
                if stop.is_set():
                    return
                raise
            decide(self.policy, state, GpuRequest(), datetime.now(timezone.utc))
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


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def guard_memory(plane: Plane, stop: threading.Event, done: threading.Event, tripped: list[bool]) -> None:
    """Kill the API server when it passes MAX_APISERVER_KB or the machine's available memory falls under
    MIN_AVAILABLE_KB (a shared machine): 200 first lists of 10,000 Workloads took it to 23 GB, and stopping
    the gateways does not end lists already in flight. The run then ends after this mode."""
    pid = plane.procs["kube-apiserver"].pid
    while not done.wait(0.5):
        try:
            over = rss_kb(pid) > MAX_APISERVER_KB or available_kb() < MIN_AVAILABLE_KB
        except OSError:
            return
        if over:
            tripped.append(True)
            os.kill(pid, 9)
            stop.set()
            return


def settle(plane: Plane, limit_s: float = 60.0) -> float:
    """Wait until the API server is quiet (under 0.2 cores over 2 s): a cut-short mode's lists still drain."""
    t0 = time.monotonic()
    pid = plane.procs["kube-apiserver"].pid
    while time.monotonic() - t0 < limit_s:
        before = cpu_s(pid)
        time.sleep(2)
        if cpu_s(pid) - before < 0.4:
            break
    return time.monotonic() - t0


def start_publisher(kubeconfig: Path, context: str) -> tuple[Publisher, list[int], threading.Thread, float]:
    """The member's queue-summary publisher with its own client, once it has written the summary."""
    api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig), context=context)
    count = counting(api)
    t0 = time.monotonic()
    publisher = Publisher(api, *SUMMARY, period_s=10.0)
    publisher.start()
    thread = threading.Thread(target=publisher.run, daemon=True)
    thread.start()
    while publisher.writes == 0:
        time.sleep(0.1)
    return publisher, count, thread, time.monotonic() - t0


def measure(
    plane: Plane, kubeconfig: Path, n: int, mode: str, every: float, window: float, warmup_cap: float
) -> dict[str, Any]:
    publisher = None
    extra: dict[str, Any] = {}
    if mode == "summary":
        publisher, publisher_requests, publisher_thread, took = start_publisher(kubeconfig, plane.name)
        extra["publisher_start_s"] = round(took, 1)
    gateways = [Gateway(kubeconfig, plane.name, mode) for _ in range(n)]
    stop, done, tripped = threading.Event(), threading.Event(), []
    guard = threading.Thread(target=guard_memory, args=(plane, stop, done, tripped), daemon=True)
    guard.start()
    threads = [
        threading.Thread(target=g.run, args=(stop, every, random.uniform(0, every)), daemon=True)
        for g in gateways
    ]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    warm_deadline = t_start + warmup_cap
    for g in gateways:
        if not g.first_done.wait(max(0.0, warm_deadline - time.monotonic())) or stop.is_set():
            break
    warmup_s = time.monotonic() - t_start
    first = sum(g.first_done.is_set() for g in gateways)
    stop.wait(every)
    try:
        before = sample(plane, gateways)
        stop.wait(window)
        after = sample(plane, gateways)
    except (OSError, urllib3.exceptions.HTTPError):
        if not tripped:
            raise
        before = after = (0, 0, (0.0, 0.0), 0.0, 0.0, time.monotonic())
    stop.set()
    done.set()
    join_deadline = time.monotonic() + 30  # a gateway inside a slow list finishes it first; not 200 x 30 s
    for t in threads:
        t.join(timeout=max(0.0, join_deadline - time.monotonic()))
    drop_caches()
    for g in gateways:
        g.api.close()
    if publisher is not None:
        publisher.stop()
        publisher_thread.join(30)
        extra["publisher_writes"] = publisher.writes
        extra["publisher_requests"] = publisher_requests[0]
        publisher.api.close()
    extra["settle_s"] = round(settle(plane), 1) if not tripped else 0.0
    dt = max(after[5] - before[5], 1e-9)
    return {
        "mode": MODE_NAMES[mode],
        "gateways": n,
        "first_decisions": first,
        "all_first_s": round(warmup_s, 1) if first == n else None,
        "warmup_s": round(warmup_s, 1),
        "cut_short": "memory" if tripped else "",
        "client_req_per_s": round((after[0] - before[0]) / dt, 1),
        "decisions_per_s": round((after[1] - before[1]) / dt, 1),
        "apiserver_req_per_s": round((after[2][0] - before[2][0]) / dt, 1),
        "workload_lists_per_s": round((after[2][1] - before[2][1]) / dt, 1),
        "apiserver_cpu_cores": round((after[3] - before[3]) / dt, 2),
        "kueue_cpu_cores": round((after[4] - before[4]) / dt, 2),
        **extra,
    }


def create_workloads(plane: Plane, start: int, stop: int) -> float:
    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: plane.rest.create(workload(i)), range(start, stop)))
    return time.monotonic() - t0


def wait_pending(plane: Plane, target: int, limit_s: float = 180.0) -> int:
    """Kueue's count of pending Workloads in ``batch`` once it has seen them all (or after ``limit_s``)."""
    deadline = time.monotonic() + limit_s
    while True:
        cq = plane.rest.get("/apis/kueue.x-k8s.io/v1beta2/clusterqueues/batch")
        pending = int((cq.get("status") or {}).get("pendingWorkloads") or 0)
        if pending >= target or time.monotonic() > deadline:
            return pending
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateways", type=int, default=200)
    ap.add_argument("--workloads", default="10000", help="pending Workloads per round, growing")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between one gateway's decisions")
    ap.add_argument("--window", type=float, default=20.0, help="seconds measured per mode and round")
    ap.add_argument(
        "--modes", default="summary,watch,direct", help="summary (queue summary), watch (own cache), direct"
    )
    ap.add_argument("--warmup-cap", type=float, default=90.0, help="most seconds waited for first decisions")
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
                pending = wait_pending(plane, target)
                for mode in args.modes.split(","):
                    r = measure(
                        plane, kubeconfig, args.gateways, mode, args.every, args.window, args.warmup_cap
                    )
                    r.update(workloads=target, batch_pending=pending)
                    results.append(r)
                    print(json.dumps(r), flush=True)
                    if r["cut_short"]:
                        break  # the API server was killed: nothing left to measure on
        finally:
            plane.stop()
    print()
    print(
        f"{'W':>6} {'mode':<16} {'first s':>8} {'decisions/s':>11} {'client req/s':>12} "
        f"{'apiserver req/s':>15} {'wl LIST/s':>9} {'apiserver CPU':>13} {'kueue CPU':>9}"
    )
    for r in results:
        first = (
            r["all_first_s"] if r["all_first_s"] is not None else f"{r['first_decisions']}@{r['warmup_s']}"
        )
        print(
            f"{r['workloads']:>6} {r['mode']:<16} {first:>8} {r['decisions_per_s']:>11} "
            f"{r['client_req_per_s']:>12} {r['apiserver_req_per_s']:>15} {r['workload_lists_per_s']:>9} "
            f"{r['apiserver_cpu_cores']:>13} {r['kueue_cpu_cores']:>9}"
            + (" CUT SHORT (memory)" if r["cut_short"] else "")
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
