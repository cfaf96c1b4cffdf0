"""Karmada plane: Cluster objects with Ready and resourceSummary, and the cluster proxy (watch included)."""

from __future__ import annotations

import json

from kubernetes import client, watch

from .builders import python_pod

C = ("cluster.karmada.io", "v1alpha1", "clusters")


def _cluster(kube_members, name: str) -> dict:
    return client.CustomObjectsApi(kube_members.karmada.api_client()).get_cluster_custom_object(*C, name)


def _ready(cluster: dict) -> str | None:
    return next(
        (c["status"] for c in cluster.get("status", {}).get("conditions", []) if c["type"] == "Ready"), None
    )


def test_clusters_are_ready_with_resource_summary(kube_members):
    clusters = client.CustomObjectsApi(kube_members.karmada.api_client()).list_cluster_custom_object(*C)[
        "items"
    ]
    assert sorted(c["metadata"]["name"] for c in clusters) == ["private", "public"]
    public = kube_members.karmada.wait_for(
        lambda: _ready(_cluster(kube_members, "public")) == "True" and _cluster(kube_members, "public"),
        what="public Ready",
    )
    assert public["status"]["resourceSummary"]["allocatable"]["nvidia.com/gpu"] == "8"
    assert public["spec"]["provider"] == "aws"
    assert public["metadata"]["labels"] == {"mlp.io/member": "public"}


def test_allocated_follows_running_pods(kube_members):
    core = client.CoreV1Api(kube_members.private.api_client())
    core.create_namespaced_pod("jupyter", python_pod("k", queue="kernels", gpus=2))
    kube_members.private.wait_for_pod_phase("jupyter", "k", "Running")
    kube_members.karmada.wait_for(
        lambda: (
            _cluster(kube_members, "private")["status"]["resourceSummary"]["allocated"].get("nvidia.com/gpu")
            == "2"
        ),
        what="allocated 2 GPUs",
    )


def test_unready_member_is_tainted_and_proxy_refuses(kube_members):
    kube_members.karmada.set_member_ready("public", False)
    cluster = _cluster(kube_members, "public")
    assert _ready(cluster) == "False"
    assert {"key": "cluster.karmada.io/not-ready", "effect": "NoSchedule"} in cluster["spec"]["taints"]
    proxied = client.ApiClient(client.Configuration(host=kube_members.karmada.proxy_url("public")))
    try:
        client.CoreV1Api(proxied).list_namespaced_pod("jupyter")
        raise AssertionError("proxy answered although the member is not ready")
    except client.ApiException as exc:
        assert exc.status == 500 and "connection refused" in json.loads(exc.body)["message"]
    kube_members.karmada.set_member_ready("public", True)
    assert _ready(_cluster(kube_members, "public")) == "True"


def test_proxy_forwards_crud_to_the_member(kube_members):
    proxied = client.ApiClient(client.Configuration(host=kube_members.karmada.proxy_url("public")))
    core = client.CoreV1Api(proxied)
    core.create_namespaced_secret("jupyter", {"metadata": {"name": "via-proxy"}, "stringData": {"a": "b"}})
    assert kube_members.public.find("v1", "Secret", "via-proxy", "jupyter") is not None
    assert kube_members.private.find("v1", "Secret", "via-proxy", "jupyter") is None
    with_404 = None
    try:
        core.read_namespaced_secret("missing", "jupyter")
    except client.ApiException as exc:
        with_404 = exc
    assert with_404 is not None and json.loads(with_404.body)["reason"] == "NotFound"


def test_proxy_streams_watches(kube_members):
    proxied = client.ApiClient(client.Configuration(host=kube_members.karmada.proxy_url("private")))
    core = client.CoreV1Api(proxied)
    start = core.list_namespaced_config_map("jupyter").metadata.resource_version
    kube_members.private.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seen", "namespace": "jupyter"}}
    )
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, "jupyter", resource_version=start, timeout_seconds=1
        )
    ]
    assert events == [("ADDED", "seen")]
