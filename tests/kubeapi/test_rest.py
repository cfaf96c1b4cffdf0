"""CRUD through the official client: Status bodies, selectors, patches, subresources, discovery."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, dynamic

from .builders import python_pod


@pytest.fixture
def core(kube_member):
    return client.CoreV1Api(kube_member.api_client())


def _status(exc: client.ApiException) -> dict:
    return json.loads(exc.body)


def test_get_missing_object_is_404_with_not_found_status(core):
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_pod("nope", "default")
    assert err.value.status == 404
    body = _status(err.value)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "NotFound", 404)
    assert body["message"] == 'pods "nope" not found'


def test_create_existing_object_is_409_already_exists(core):
    core.create_namespaced_secret("default", {"metadata": {"name": "s"}, "stringData": {"a": "b"}})
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_secret("default", {"metadata": {"name": "s"}})
    assert err.value.status == 409
    assert _status(err.value)["reason"] == "AlreadyExists"


def test_update_with_stale_resource_version_is_409_conflict(core):
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}, "data": {"k": "1"}})
    core.patch_namespaced_config_map("cm", "default", {"data": {"k": "2"}})
    created.data = {"k": "3"}
    with pytest.raises(client.ApiException) as err:
        core.replace_namespaced_config_map("cm", "default", created)
    assert err.value.status == 409
    assert _status(err.value)["reason"] == "Conflict"


def test_invalid_pod_is_422_with_field_causes(core):
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_pod(
            "default", {"metadata": {"name": "bad"}, "spec": {"containers": [{"name": "c"}]}}
        )
    body = _status(err.value)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "spec.containers[0].image"


def test_create_in_missing_namespace_is_404(core):
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_secret("ghost", {"metadata": {"name": "s"}})
    assert err.value.status == 404
    assert _status(err.value)["message"] == 'namespaces "ghost" not found'


def test_generate_name_and_server_fields(core):
    secret = core.create_namespaced_secret(
        "default", {"metadata": {"generateName": "conn-"}, "stringData": {"k": "v"}}
    )
    assert secret.metadata.name.startswith("conn-") and len(secret.metadata.name) == 10
    assert secret.metadata.uid and secret.metadata.resource_version and secret.metadata.creation_timestamp
    assert secret.data == {"k": "dg=="} and secret.type == "Opaque"


def test_label_and_field_selectors(core):
    for name, tier in (("a", "x"), ("b", "y"), ("c", "y")):
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": {"tier": tier}}})
    names = lambda items: sorted(i.metadata.name for i in items)  # noqa: E731
    assert names(core.list_namespaced_config_map("default", label_selector="tier=y").items) == ["b", "c"]
    assert names(core.list_namespaced_config_map("default", label_selector="tier in (x),!missing").items) == [
        "a"
    ]
    assert names(core.list_config_map_for_all_namespaces(field_selector="metadata.name=b").items) == ["b"]
    assert (
        names(core.list_namespaced_config_map("default", field_selector="metadata.namespace!=default").items)
        == []
    )


def test_pod_field_selectors_on_phase_and_node(kube_member, core):
    core.create_namespaced_pod("default", python_pod("runner"))
    kube_member.wait_for_pod_phase("default", "runner", "Running")
    running = core.list_namespaced_pod("default", field_selector="status.phase=Running")
    assert [p.metadata.name for p in running.items] == ["runner"]
    on_node = core.list_pod_for_all_namespaces(
        field_selector=f"spec.nodeName={running.items[0].spec.node_name}"
    )
    assert len(on_node.items) == 1


def test_list_pagination_with_limit_and_continue(core):
    for i in range(5):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"cm{i}"}})
    first = core.list_namespaced_config_map("default", limit=2)
    assert len(first.items) == 2 and first.metadata._continue
    rest = core.list_namespaced_config_map("default", limit=10, _continue=first.metadata._continue)
    assert [c.metadata.name for c in first.items + rest.items] == [f"cm{i}" for i in range(5)]


def test_strategic_merge_patch_merges_lists_by_key(core):
    core.create_namespaced_pod("default", python_pod("p", env=[{"name": "A", "value": "1"}]))
    patched = core.patch_namespaced_pod(
        "p",
        "default",
        {"metadata": {"labels": {"x": "y"}}, "spec": {"containers": [{"name": "main", "image": "new"}]}},
    )
    assert patched.spec.containers[0].image == "new"
    assert patched.spec.containers[0].env[0].name == "A"  # merged by name, not replaced
    assert patched.metadata.labels == {"x": "y"}


def test_json_patch(core):
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    patched = core.patch_namespaced_config_map(
        "cm", "default", [{"op": "add", "path": "/data/b", "value": "2"}, {"op": "remove", "path": "/data/a"}]
    )
    assert patched.data == {"b": "2"}


def test_status_subresource_separates_spec_and_status(core):
    core.create_namespaced_service(
        "default", {"metadata": {"name": "svc", "labels": {"k": "v"}}, "spec": {"ports": [{"port": 80}]}}
    )
    svc = core.read_namespaced_service("svc", "default")
    svc.status = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
    svc.metadata.labels["k"] = "changed"
    updated = core.replace_namespaced_service_status("svc", "default", svc)
    assert updated.status.load_balancer.ingress[0].ip == "10.0.0.1"
    assert updated.metadata.labels["k"] == "v"  # the status endpoint ignores metadata and spec
    updated.status = {}
    updated.spec.ports[0].port = 81
    replaced = core.replace_namespaced_service("svc", "default", updated)
    assert replaced.spec.ports[0].port == 81
    assert replaced.status.load_balancer.ingress[0].ip == "10.0.0.1"  # the main endpoint ignores status


def test_delete_returns_object_and_namespace_delete_cascades(kube_member, core):
    core.create_namespace({"metadata": {"name": "tmp"}})
    core.create_namespaced_secret("tmp", {"metadata": {"name": "s"}})
    core.delete_namespace("tmp")
    kube_member.wait_for(lambda: kube_member.find("v1", "Namespace", "tmp") is None, what="namespace removal")
    assert kube_member.find("v1", "Secret", "s", "tmp") is None


def test_discovery_serves_dynamic_client(kube_member, require_crds):
    dyn = dynamic.DynamicClient(kube_member.api_client())
    cqs = dyn.resources.get(api_version="kueue.x-k8s.io/v1beta2", kind="ClusterQueue")
    assert cqs.namespaced is False
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    assert [p.metadata.name for p in pods.get(namespace="default").items] == []
    version = client.VersionApi(kube_member.api_client()).get_code()
    assert version.major == "1" and version.git_version.startswith("v1.")


def test_events_are_listed_through_core_api(kube_member, core):
    core.create_namespaced_pod("default", python_pod("ev"))
    kube_member.wait_for_pod_phase("default", "ev", "Running")
    reasons = {
        e.reason for e in core.list_namespaced_event("default", field_selector="involvedObject.name=ev").items
    }
    assert {"Scheduled", "Pulling", "Pulled", "Created", "Started"} <= reasons


def test_server_side_apply_creates_then_updates(kube_member):
    api = kube_member.api_client()
    core = client.CoreV1Api(api)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"a": "1"}}
    kwargs = {"field_manager": "test", "_content_type": "application/apply-patch+yaml"}
    core.patch_namespaced_config_map("applied", "default", body, **kwargs)
    body["data"] = {"a": "2"}
    assert core.patch_namespaced_config_map("applied", "default", body, **kwargs).data == {"a": "2"}


def test_member_without_crds_serves_core_kinds_and_runs_no_kueue(tmp_path):
    from .fixtures import PRIVATE_NODES
    from .members import Member

    member = Member("bare", nodes=PRIVATE_NODES, crd_dir=None, kubelet_options={"root_dir": tmp_path}).start()
    try:
        core = client.CoreV1Api(member.api_client())
        pod = core.create_namespaced_pod("default", python_pod("p", queue="kernels"))
        assert not pod.spec.scheduling_gates  # no Kueue webhook without the Kueue CRDs
        assert member.kueue is None
        member.wait_for_pod_phase("default", "p", "Running")
    finally:
        member.stop()


def test_claim_needs_access_modes_and_a_size_and_is_bound_at_once(core):
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_persistent_volume_claim("default", {"metadata": {"name": "c"}, "spec": {}})
    fields = [c["field"] for c in _status(err.value)["details"]["causes"]]
    assert err.value.status == 422 and fields == ["spec.accessModes", "spec.resources[storage]"]
    spec = {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "5Gi"}}}
    claim = core.create_namespaced_persistent_volume_claim(
        "default", {"metadata": {"name": "c"}, "spec": spec}
    )
    assert (claim.status.phase, claim.status.access_modes, claim.status.capacity) == (
        "Bound",
        ["ReadWriteMany"],
        {"storage": "5Gi"},
    )
    with pytest.raises(client.ApiException) as err:
        core.patch_namespaced_persistent_volume_claim(
            "c", "default", {"spec": {"accessModes": ["ReadWriteOnce"]}}
        )
    assert err.value.status == 422
