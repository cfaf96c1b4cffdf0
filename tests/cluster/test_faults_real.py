"""Faults a real API server will not produce, injected by a proxy in front of it (``faultproxy.py``).

First the fault injector's own tests (``tests/kubeapi/test_faults.py``, unchanged) through the proxy to a
real kube-apiserver, with the official client; then what the proxy adds (``Status`` bodies as the API
server writes them, ``410 Expired`` for a watch from a compacted version, a plain pass-through when nothing
is armed); then the product under those faults: the end-to-end test of
``tests/e2e_kubernetes/test_faults.py``.
"""

from __future__ import annotations

import json
import threading

import pytest
from kubernetes import client

from tests.cluster.faulty import FaultyMember, FaultyMembers, kube_members  # noqa: F401
from tests.e2e_kubernetes.test_faults import (  # noqa: F401
    test_500s_during_launch_still_start_the_kernel_with_exactly_one_pod,
)
from tests.kubeapi.test_faults import (  # noqa: F401
    core,
    test_aborted_watch_surfaces_as_protocol_error,
    test_cleanly_closed_watch_is_resumed_by_the_client,
    test_fail_next_n_matching_requests,
    test_slow_responses,
)

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def kube_member(faulty_kube_members: FaultyMembers) -> FaultyMember:
    """The private member through its proxy, for the fault injector's own tests (objects in ``default``)."""
    member = faulty_kube_members.private
    yield member
    member.delete("v1", "Secret", "s", "default")
    member.delete("v1", "ConfigMap", "x", "default")


def test_an_injected_error_is_the_status_the_api_server_writes(kube_member, core) -> None:  # noqa: F811
    kube_member.faults.fail_next(
        1, path=r"/configmaps$", method="POST", code=503, reason="ServiceUnavailable"
    )
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})
    status = json.loads(err.value.body)
    assert err.value.status == 503 and err.value.headers["Content-Type"] == "application/json"
    assert {k: status[k] for k in ("kind", "apiVersion", "status", "reason", "code")} == {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": "ServiceUnavailable",
        "code": 503,
    }
    # the real server's own Status for a real error reaches the client through the proxy unchanged
    with pytest.raises(client.ApiException) as real:
        core.read_namespaced_config_map("x", "default")
    assert real.value.status == 404 and json.loads(real.value.body)["reason"] == "NotFound"
    assert kube_member.faults.fired == [("error", "POST", "/api/v1/namespaces/default/configmaps")]


def test_nothing_armed_is_a_pass_through_watch_included(kube_member, core) -> None:  # noqa: F811
    start = core.list_namespaced_config_map("default").metadata.resource_version
    creator = threading.Timer(0.5, lambda: kube_member.create(_configmap("x")))
    creator.start()
    resp = core.list_namespaced_config_map(
        "default", watch=True, resource_version=start, timeout_seconds=10, _preload_content=False
    )
    try:
        event = json.loads(next(line for line in resp.stream(decode_content=True) if line.strip()))
    finally:
        resp.release_conn()
        creator.join()
    assert event["type"] == "ADDED" and event["object"]["metadata"]["name"] == "x"
    assert kube_member.faults.fired == []
    assert any("watch=true" in path for method, path in kube_member.requests if method == "GET")


def test_a_watch_from_a_compacted_version_gets_410_expired(kube_member, core) -> None:  # noqa: F811
    old = core.list_namespaced_config_map("default").metadata.resource_version
    kube_member.create(_configmap("x"))
    kube_member.store.compact()
    resp = core.list_namespaced_config_map(
        "default", watch=True, resource_version=old, timeout_seconds=5, _preload_content=False
    )
    try:
        [line] = [line for line in resp.read().splitlines() if line.strip()]
    finally:
        resp.release_conn()
    event = json.loads(line)
    assert resp.status == 200 and event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
    assert f"too old resource version: {old}" in event["object"]["message"]
    # from the current version (a relist's) the watch is the real server's again
    now = core.list_namespaced_config_map("default").metadata.resource_version
    again = core.list_namespaced_config_map(
        "default", watch=True, resource_version=now, timeout_seconds=1, _preload_content=False
    )
    assert b"ERROR" not in again.read()
    assert [kind for kind, _m, _p in kube_member.faults.fired] == ["expired"]


def _configmap(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}
