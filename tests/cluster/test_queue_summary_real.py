"""The queue summary (issue 15) on the real control plane: ``mlp-kernel queue-summary`` and the gateways.

The samples of docs/samples/queue-summary are applied as shipped (less the Deployment's pod: the publisher
runs here, in the test process, under the sample's own ServiceAccount token). Real Kueue admits three one-GPU
Workloads and leaves two six-GPU ones pending. The publisher's ConfigMap must hold the counters a fresh count
of the listed Workloads gives; a gateway (the kernel launcher's ServiceAccount, with gateway-read.yaml) must
decide from it without a single Workload request and reach the state a direct read gives; a stale summary
(its publisher stopped), a missing one, or one the gateway may not read must make it count Workloads itself,
with the reason in the state's ``source``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from mlp_kernel.cli.queue_summary import Publisher
from mlp_kernel.placement import parse_policy
from mlp_kernel.placement.adapters import state_from_cluster
from mlp_kernel.placement.adapters.summary import DATA_KEY, STALE_PERIODS, decode, encode
from mlp_kernel.placement.adapters.watch_cache import drop_caches
from mlp_kernel.placement.adapters.workloads import WorkloadCounters
from tests.placement.test_watch_cache import _requests

from .fixtures import samples_for_module
from .members import RealMember, RealMembers

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "docs" / "samples"
SUMMARY = "mlp-kernel/mlp-queue-summary"
PERIOD_S = 5.0  # stale after 15 s: a publisher slowed by a loaded 2-core CI machine is still fresh
WORKLOAD_PATH = re.compile(r"/workloads(\?|/|$)")  # not .../pendingworkloads (the visibility API)

POLICY_TEXT = """
tiers: [bronze, silver]
members:
  private: {namespace: jupyter, local_queue: kernels, queue_summary: %s}
flavors:
  bronze: {member: private, tier: bronze, gpu_models: [T4], node_labels: {mlp.io/gpu-tier: bronze},
          price_per_gpu_hour: 0}
  silver: {member: private, tier: silver, gpu_models: [V100], node_labels: {mlp.io/gpu-tier: silver},
          price_per_gpu_hour: 0}
"""


def policy(summary: str) -> Any:
    return parse_policy(POLICY_TEXT % summary)


def workload(name: str, gpus: int) -> dict[str, Any]:
    container = {"name": "main", "image": "x", "resources": {"requests": {"nvidia.com/gpu": str(gpus)}}}
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Workload",
        "metadata": {"name": name, "namespace": "jupyter"},
        "spec": {
            "queueName": "kernels",
            "podSets": [{"name": "main", "count": 1, "template": {"spec": {"containers": [container]}}}],
        },
    }


def client_as(m: RealMember, namespace: str, name: str) -> kubernetes.client.ApiClient:
    """An ApiClient with a bound token of the ServiceAccount (what its pod would get)."""
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
    token = m.rest.request("POST", path, request)["status"]["token"]
    ca = base64.b64encode(m.plane.pki.ca.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": m.url, "certificate-authority-data": ca}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    return kubernetes.config.new_client_from_config_dict(config)


def sample_docs() -> list[dict[str, Any]]:
    docs = [*yaml.safe_load_all((SAMPLES / "queue-summary/deployment.yaml").read_text())]
    docs += yaml.safe_load_all((SAMPLES / "queue-summary/gateway-read.yaml").read_text())
    docs += yaml.safe_load_all((SAMPLES / "rbac/kernel-launcher.yaml").read_text())
    docs.append(
        {  # the kernel launcher reads the cluster's queues as per-user servers do (rbac/per-user)
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "test-gateway-kueue-reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "mlp-kernel-kueue-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "mlp-kernel-gateway", "namespace": "jupyter"}],
        }
    )
    docs += yaml.safe_load_all((SAMPLES / "rbac/per-user/kueue-reader.yaml").read_text())
    return [d for d in docs if d and d["kind"] != "Deployment"]


samples_namespace = samples_for_module(sample_docs)


@pytest.fixture
def member(samples_namespace: None, real_kube_members: RealMembers) -> Iterator[RealMember]:
    """The samples applied, three one-GPU and two six-GPU Workloads; no summary published yet (the reset
    between tests deletes the Workloads, this the summary a test's publisher wrote)."""
    m = real_kube_members.private
    drop_caches()
    try:
        for doc in sample_docs():
            m.apply(doc)
        for i in range(3):
            m.create(workload(f"small-{i}", 1))
        for i in range(2):
            m.create(workload(f"big-{i}", 6))
        yield m
    finally:
        drop_caches()
        name, namespace = SUMMARY.split("/")[1], SUMMARY.split("/")[0]
        if m.find("v1", "ConfigMap", name, namespace):
            m.delete("v1", "ConfigMap", name, namespace)
        m.wait_for(lambda: not m.find("v1", "ConfigMap", name, namespace), 30, what=f"{SUMMARY} deleted")


def fresh_count(m: RealMember) -> WorkloadCounters:
    return WorkloadCounters.of(m.list("kueue.x-k8s.io/v1beta2", "Workload"))


def published(m: RealMember) -> dict[str, Any] | None:
    cm = m.find("v1", "ConfigMap", "mlp-queue-summary", "mlp-kernel")
    return json.loads(cm["data"][DATA_KEY]) if cm else None


def same_counts(doc: dict[str, Any] | None, counters: WorkloadCounters) -> bool:
    if doc is None:
        return False
    fresh = encode(counters, {}, datetime.fromisoformat(doc["publishedAt"]), doc["periodSeconds"])
    return doc == fresh


@pytest.fixture
def publisher(member: RealMember) -> Iterator[Publisher]:
    api = client_as(member, "mlp-kernel", "mlp-kernel-queue-summary")
    pub = Publisher(api, "mlp-kernel", "mlp-queue-summary", PERIOD_S)
    pub.start()
    thread = threading.Thread(target=pub.run, daemon=True)
    thread.start()
    try:
        yield pub
    finally:
        pub.stop()
        thread.join(10)
        api.close()


def admitted_and_pending(m: RealMember) -> bool:
    counters = fresh_count(m)
    admitted = sum(counters.admitted_gpus.values())
    return admitted == 3 and sum(counters.pending.values()) == 2


def test_the_summary_holds_the_counters_of_the_workloads(member: RealMember, publisher: Publisher) -> None:
    member.wait_for(lambda: admitted_and_pending(member), 60, what="Kueue admitting 3 small, 2 big pending")
    member.wait_for(
        lambda: same_counts(published(member), fresh_count(member)),
        30,
        what="the published summary to match a fresh count of the Workloads",
    )
    doc = published(member)
    assert doc is not None and doc["workloads"] == 5 and doc["periodSeconds"] == PERIOD_S
    assert sum(n for *_, n in doc["admittedGpus"]) == 3
    assert len(doc["admissions"]) >= 1 and sum(n for *_, n in doc["pending"]) == 2
    # it writes every period, changes or not: the publication time is the publisher's heartbeat
    first = doc["publishedAt"]
    member.wait_for(
        lambda: (published(member) or {}).get("publishedAt") != first, 4 * PERIOD_S, what="a heartbeat write"
    )


def test_a_gateway_decides_from_the_summary_without_reading_workloads(
    member: RealMember, publisher: Publisher
) -> None:
    member.wait_for(lambda: admitted_and_pending(member), 60, what="Kueue admitting 3 small, 2 big pending")
    member.wait_for(lambda: same_counts(published(member), fresh_count(member)), 30, what="summary current")
    gateway = client_as(member, "jupyter", "mlp-kernel-gateway")
    urls = _requests(gateway)
    admin = member.api_client()
    pol = policy(SUMMARY)

    sources: list[str] = []

    def agree() -> bool:
        now = datetime.now(timezone.utc)
        cached = state_from_cluster(pol, {"private": gateway}, now=now, watch=True).members["private"]
        direct = state_from_cluster(pol, {"private": admin}, now=now).members["private"]
        sources.append(cached.source)
        from_summary = f"queue summary {SUMMARY}, " in cached.source
        return (
            from_summary and cached.flavors == direct.flavors and cached.ready and cached.cluster_queue_active
        )

    try:
        member.wait_for(agree, 30, what="the summary-fed state to equal a direct read")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last sources: {sources[-3:]}") from None
    assert all(f"queue summary {SUMMARY}, " in s for s in sources), sources
    assert urls and not [u for u in urls if WORKLOAD_PATH.search(u)], urls
    # the state is the real one: bronze holds the three admitted GPUs of its four
    now = datetime.now(timezone.utc)
    state = state_from_cluster(pol, {"private": gateway}, now=now, watch=True).members["private"]
    assert state.flavors["bronze"].used_gpus == 3, state.flavors["bronze"]

    # the publisher stops: once its summary is older than STALE_PERIODS periods the gateway counts itself
    publisher.stop()
    later = now + timedelta(seconds=(STALE_PERIODS + 2) * PERIOD_S + 1)
    stale = state_from_cluster(pol, {"private": gateway}, now=later, watch=True).members["private"]
    assert "is stale" in stale.source and "counting Workloads itself" in stale.source, stale.source
    assert [u for u in urls if WORKLOAD_PATH.search(u)], "the fallback did not read the Workloads"
    direct = state_from_cluster(pol, {"private": admin}, now=later).members["private"]
    assert stale.flavors == direct.flavors
    gateway.close()
    admin.close()


def test_a_missing_or_forbidden_summary_falls_back_with_the_reason(
    member: RealMember, publisher: Publisher
) -> None:
    member.wait_for(lambda: admitted_and_pending(member), 60, what="Kueue admitting 3 small, 2 big pending")
    admin = member.api_client()
    gateway = client_as(member, "jupyter", "mlp-kernel-gateway")
    now = datetime.now(timezone.utc)
    direct = state_from_cluster(policy(SUMMARY), {"private": admin}, now=now).members["private"]

    missing = policy("mlp-kernel/no-such-summary")
    state = state_from_cluster(missing, {"private": admin}, now=now, watch=True).members["private"]
    assert "queue summary mlp-kernel/no-such-summary not found" in state.source, state.source
    assert "counting Workloads itself" in state.source and state.flavors == direct.flavors

    # gateway-read.yaml grants that one ConfigMap by name: any other is 403 for the gateway
    state = state_from_cluster(missing, {"private": gateway}, now=now, watch=True).members["private"]
    assert "cannot read queue summary mlp-kernel/no-such-summary: 403" in state.source, state.source
    assert state.flavors == direct.flavors
    gateway.close()
    admin.close()


def test_the_published_summary_decodes_to_the_same_answers(member: RealMember, publisher: Publisher) -> None:
    member.wait_for(lambda: admitted_and_pending(member), 60, what="Kueue admitting 3 small, 2 big pending")
    member.wait_for(lambda: same_counts(published(member), fresh_count(member)), 30, what="summary current")
    doc = published(member)
    summary = decode(json.dumps(doc))
    fresh = fresh_count(member)
    assert summary.counters.pending == fresh.pending and summary.counters.admitted_gpus == fresh.admitted_gpus
    assert not summary.stale(summary.published_at + timedelta(seconds=STALE_PERIODS * PERIOD_S))
    assert summary.stale(summary.published_at + timedelta(seconds=STALE_PERIODS * PERIOD_S + 0.5))
