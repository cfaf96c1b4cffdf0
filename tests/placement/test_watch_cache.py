"""The watch-fed placement cache (issue 15, many users) against the in-repo test Kubernetes API.

A watched read must give the state a direct read gives, follow changes without listing again, read no
Workloads per decision, list again after 410 Gone, and not hide an unreachable member. The counters that stand
in for the Workloads must come back to what a fresh count gives after any sequence of changes.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from kubernetes import client

from mlp_kernel.placement.adapters import state_from_cluster
from mlp_kernel.placement.adapters.watch_cache import _registry, drop_caches
from mlp_kernel.placement.adapters.workloads import WorkloadCounters
from tests.placement.test_live import POLICY, clients, fill_bronze_and_queue_one


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    drop_caches()
    yield
    drop_caches()


def _both(api: dict[str, Any]) -> tuple[Any, Any]:
    now = datetime.now(timezone.utc)
    return (
        state_from_cluster(POLICY, api, now=now, watch=True),
        state_from_cluster(POLICY, api, now=now),
    )


def _requests(api: Any) -> list[str]:
    """Every URL the client asks for from now on (counted at urllib3, below our code)."""
    seen: list[str] = []
    pool = api.rest_client.pool_manager
    inner = pool.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(url)
        return inner(method, url, *args, **kwargs)

    pool.request = request
    return seen


def test_watched_state_follows_changes_and_matches_a_direct_read(kube_members: Any) -> None:
    api = clients(kube_members)
    watched, direct = _both(api)
    assert watched == direct and watched.members["private"].flavors["bronze"].nominal_gpus == 4
    private = kube_members.private
    fill_bronze_and_queue_one(private)
    private.wait_for(
        lambda: (lambda w, d: w == d and d.members["private"].flavors["bronze"].pending == 1)(*_both(api)),
        what="the watched state to match a direct read with one pending workload",
    )
    bronze = state_from_cluster(POLICY, api, watch=True).members["private"].flavors["bronze"]
    assert (bronze.used_gpus, bronze.pending) == (4, 1) and bronze.admission_rate_per_s
    informers = [i for _, cache in _registry.values() for i in cache.informers]
    assert informers and all(i.lists == 1 for i in informers)  # followed by the watch, never listed again


def test_a_watched_decision_reads_no_kueue_lists(kube_members: Any) -> None:
    api = clients(kube_members)
    state_from_cluster(POLICY, api, watch=True)  # the first read lists and starts the watches
    seen = {name: _requests(a) for name, a in api.items()}
    for _ in range(5):
        assert state_from_cluster(POLICY, api, watch=True).members["private"].ready
    for urls in seen.values():  # per decision and member: the visibility API only
        assert len(urls) == 5 and all("pendingworkloads" in url for url in urls), urls


def test_410_gone_lists_again(kube_members: Any) -> None:
    api = clients(kube_members)
    state_from_cluster(POLICY, api, watch=True)
    private = kube_members.private
    custom = client.CustomObjectsApi(private.api_client())
    core = client.CoreV1Api(private.api_client())
    core.create_namespaced_config_map("jupyter", {"metadata": {"name": "unwatched"}})  # moves the revision on
    private.store.compact()
    private.store.close_watches()  # the informers resume from a compacted resourceVersion: 410 Gone
    custom.patch_cluster_custom_object(
        "kueue.x-k8s.io", "v1beta2", "clusterqueues", "gpu-private", {"spec": {"stopPolicy": "Hold"}}
    )
    private.wait_for(
        lambda: "stopPolicy Hold" in state_from_cluster(POLICY, api, watch=True).members["private"].reason,
        what="the stopped ClusterQueue in the watched state",
    )
    lists = [i.lists for _, cache in _registry.values() for i in cache.informers if i.kind == "ClusterQueue"]
    assert max(lists) >= 2


def test_an_unreachable_member_is_not_ready_with_a_watch(kube_members: Any) -> None:
    api = clients(kube_members)
    assert state_from_cluster(POLICY, api, watch=True).members["public"].ready
    kube_members.public.stop()
    # the test server's stop leaves open keep-alive connections served; a real API server that goes away
    # closes them, so drop the client's idle ones as that would
    api["public"].rest_client.pool_manager.clear()
    kube_members.private.wait_for(
        lambda: not state_from_cluster(POLICY, api, watch=True, retry_delays_s=()).members["public"].ready,
        what="the stopped member not Ready",
    )
    state = state_from_cluster(POLICY, api, watch=True, retry_delays_s=())
    assert "cannot read Kueue objects" in state.members["public"].reason
    assert state.members["private"].ready


def _workload(rng: random.Random, i: int) -> dict[str, Any]:
    gpus = rng.choice([0, 1, 2, "500m", "lots"])
    flavor = rng.choice(["bronze", "silver"])
    w: dict[str, Any] = {
        "kind": "Workload",
        "metadata": {"name": f"w{i}", "namespace": rng.choice(["jupyter", "other"])},
        "spec": {
            "queueName": rng.choice(["kernels", "batch"]),
            "active": rng.choice([True, False, None]),
            "podSets": [
                {
                    "count": rng.choice([1, 2]),
                    "template": {
                        "spec": {
                            "nodeSelector": rng.choice([{}, {"mlp.io/gpu-tier": flavor}]),
                            "containers": [{"resources": {"requests": {"nvidia.com/gpu": gpus}}}],
                        }
                    },
                }
            ],
        },
        "status": {"conditions": []},
    }
    at = (datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=rng.randrange(120))).isoformat()
    if rng.random() < 0.5:
        w["status"]["admission"] = {
            "clusterQueue": rng.choice(["gpu-private", "other"]),
            "podSetAssignments": [{"flavors": {"nvidia.com/gpu": flavor}}],
        }
        w["status"]["conditions"].append(
            {"type": "QuotaReserved", "status": "True", "lastTransitionTime": at}
        )
    if rng.random() < 0.2:
        w["status"]["conditions"].append({"type": "Finished", "status": "True"})
    return w


def _answers(c: WorkloadCounters) -> Any:
    now = datetime(2026, 1, 1, 1, tzinfo=timezone.utc)
    out: list[Any] = []
    for question in (
        lambda: [c.admitted("gpu-private", f, "nvidia.com/gpu") for f in ("bronze", "silver")],
        lambda: [
            c.admitted_since("gpu-private", ["nvidia.com/gpu"], f, now - timedelta(hours=1), now)
            for f in ("bronze", "silver")
        ],
        lambda: c.pending_by_selector({("jupyter", "kernels")}, {"nvidia.com/gpu"}),
        lambda: c.pending_by_selector(set(), {"nvidia.com/gpu"}),
    ):
        try:
            out.append(question())
        except ValueError as exc:  # an unreadable quantity is an answer too: the same error either way
            out.append(str(exc))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_counters_updated_one_change_at_a_time_equal_a_fresh_count(seed: int) -> None:
    rng = random.Random(seed)
    live: dict[int, dict[str, Any]] = {}
    counters = WorkloadCounters()
    for step in range(60):
        key = rng.randrange(15)
        if key in live and rng.random() < 0.3:
            del live[key]
            counters.put(key, None)
        else:
            live[key] = _workload(rng, step)
            counters.put(key, copy.deepcopy(live[key]))
        assert _answers(counters) == _answers(WorkloadCounters.of(live.values())), step
    counters.clear()
    assert _answers(counters) == _answers(WorkloadCounters()) and not counters.pending


def test_a_client_that_may_list_but_not_watch_reads_directly(kube_members: Any) -> None:
    api = clients(kube_members)
    private = kube_members.private
    assert state_from_cluster(POLICY, api, watch=True).members["private"].ready
    private.faults.fail_next(1, path=r"/workloads$", code=403, reason="Forbidden")  # the watch's reconnect
    private.faults.drop_watches(path=r"/workloads$", clean=True)
    workloads = next(i for _, c in _registry.values() for i in c.informers if i.kind == "Workload")
    private.wait_for(lambda: not workloads.synced, what="the Workload informer to give up")
    seen = _requests(api["private"])
    state = state_from_cluster(POLICY, api, watch=True)
    assert state.members["private"].ready and state.members["private"].flavors["bronze"].nominal_gpus == 4
    assert any("/workloads" in url and "watch" not in url for url in seen)  # read directly
    time.sleep(2.5)  # longer than the informer's pause before listing again: it must not
    assert workloads.lists == 1 and not workloads.synced
