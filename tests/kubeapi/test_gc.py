"""Owner-reference garbage collection and finalizers."""

from __future__ import annotations

from kubernetes import client

from .builders import python_pod


def test_secret_owned_by_pod_is_collected_with_it(kube_member):
    core = client.CoreV1Api(kube_member.api_client())
    pod = core.create_namespaced_pod("default", python_pod("owner", "print(1)"))
    core.create_namespaced_secret(
        "default",
        {
            "metadata": {
                "name": "conn",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": pod.metadata.uid}
                ],
            }
        },
    )
    kube_member.wait_for_pod_phase("default", "owner", "Succeeded")
    core.delete_namespaced_pod("owner", "default")
    kube_member.wait_for(
        lambda: kube_member.find("v1", "Secret", "conn", "default") is None, what="secret GC"
    )


def test_orphan_propagation_keeps_dependents(kube_member):
    core = client.CoreV1Api(kube_member.api_client())
    owner = core.create_namespaced_config_map("default", {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(
        "default",
        {
            "metadata": {
                "name": "dep",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
                ],
            }
        },
    )
    core.delete_namespaced_config_map("owner", "default", propagation_policy="Orphan")
    dep = core.read_namespaced_config_map("dep", "default")
    assert not dep.metadata.owner_references


def test_finalizer_holds_deletion_until_removed(kube_member):
    core = client.CoreV1Api(kube_member.api_client())
    core.create_namespaced_config_map(
        "default", {"metadata": {"name": "held", "finalizers": ["example.com/x"]}}
    )
    core.delete_namespaced_config_map("held", "default")
    assert core.read_namespaced_config_map("held", "default").metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": None}})
    assert kube_member.find("v1", "ConfigMap", "held", "default") is None


def test_immediate_delete_answers_success_status(kube_member):
    core = client.CoreV1Api(kube_member.api_client())
    core.create_namespaced_config_map("default", {"metadata": {"name": "gone"}})
    status = core.delete_namespaced_config_map("gone", "default")
    assert status["status"] == "Success" and status["details"]["name"] == "gone"  # v37 returns a dict here
