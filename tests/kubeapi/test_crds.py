"""CRDs from ../shared/reference/crds: 422 on schema violations, pruning, defaulting, runtime CRDs."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

G = "kueue.x-k8s.io"


@pytest.fixture
def custom(kube_member, require_crds):
    return client.CustomObjectsApi(kube_member.api_client())


def _invalid(exc: client.ApiException) -> dict:
    assert exc.status == 422, exc.body
    body = json.loads(exc.body)
    assert body["reason"] == "Invalid"
    return body


def test_invalid_enum_is_rejected_with_field_path(custom):
    with pytest.raises(client.ApiException) as err:
        custom.create_cluster_custom_object(
            G,
            "v1beta2",
            "clusterqueues",
            {
                "apiVersion": f"{G}/v1beta2",
                "kind": "ClusterQueue",
                "metadata": {"name": "cq"},
                "spec": {"queueingStrategy": "Random"},
            },
        )
    causes = _invalid(err.value)["details"]["causes"]
    assert causes[0]["field"] == "spec.queueingStrategy"
    assert causes[0]["reason"] == "FieldValueNotSupported"


def test_wrong_type_is_rejected(custom):
    with pytest.raises(client.ApiException) as err:
        custom.create_cluster_custom_object(
            G,
            "v1beta2",
            "resourceflavors",
            {
                "apiVersion": f"{G}/v1beta2",
                "kind": "ResourceFlavor",
                "metadata": {"name": "rf"},
                "spec": {"nodeLabels": ["not", "a", "map"]},
            },
        )
    assert _invalid(err.value)["details"]["causes"][0]["field"] == "spec.nodeLabels"


def test_missing_required_field_is_rejected(custom):
    with pytest.raises(client.ApiException) as err:
        custom.create_cluster_custom_object(
            G,
            "v1beta2",
            "workloadpriorityclasses",
            {"apiVersion": f"{G}/v1beta2", "kind": "WorkloadPriorityClass", "metadata": {"name": "urgent"}},
        )
    cause = _invalid(err.value)["details"]["causes"][0]
    assert (cause["field"], cause["reason"]) == ("value", "FieldValueRequired")


def test_unknown_fields_are_pruned_and_defaults_applied(custom):
    created = custom.create_cluster_custom_object(
        G,
        "v1beta2",
        "clusterqueues",
        {
            "apiVersion": f"{G}/v1beta2",
            "kind": "ClusterQueue",
            "metadata": {"name": "cq"},
            "spec": {"namespaceSelector": {}, "typoField": 1},
        },
    )
    assert "typoField" not in created["spec"]
    assert created["spec"]["queueingStrategy"] == "BestEffortFIFO"
    assert created["spec"]["stopPolicy"] == "None"


def test_v1beta1_writes_are_converted_to_storage_version(kube_member, custom):
    custom.create_cluster_custom_object(
        G,
        "v1beta1",
        "clusterqueues",
        {
            "apiVersion": f"{G}/v1beta1",
            "kind": "ClusterQueue",
            "metadata": {"name": "old"},
            "spec": {"namespaceSelector": {}, "cohort": "gpu"},
        },
    )
    stored = kube_member.get(f"{G}/v1beta2", "ClusterQueue", "old")
    assert stored["spec"]["cohortName"] == "gpu"
    assert (
        custom.get_cluster_custom_object(G, "v1beta2", "clusterqueues", "old")["spec"]["cohortName"] == "gpu"
    )


def test_strategic_merge_patch_is_unsupported_for_custom_resources(kube_member, custom):
    custom.create_cluster_custom_object(
        G,
        "v1beta2",
        "resourceflavors",
        {"apiVersion": f"{G}/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "rf"}, "spec": {}},
    )
    with pytest.raises(client.ApiException) as err:
        custom.patch_cluster_custom_object(
            G,
            "v1beta2",
            "resourceflavors",
            "rf",
            {"spec": {}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert err.value.status == 415


def test_installed_crds_are_listed(kube_member, require_crds):
    ext = client.ApiextensionsV1Api(kube_member.api_client())
    names = {c.metadata.name for c in ext.list_custom_resource_definition().items}
    assert {"workloads.kueue.x-k8s.io", "clusterqueues.kueue.x-k8s.io"} <= names


def test_crd_created_through_the_api_is_served(kube_member):
    ext = client.ApiextensionsV1Api(kube_member.api_client())
    ext.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    custom = client.CustomObjectsApi(kube_member.api_client())
    custom.create_namespaced_custom_object(
        "example.com",
        "v1",
        "default",
        "widgets",
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}},
    )
    with pytest.raises(client.ApiException) as err:
        custom.create_namespaced_custom_object(
            "example.com",
            "v1",
            "default",
            "widgets",
            {
                "apiVersion": "example.com/v1",
                "kind": "Widget",
                "metadata": {"name": "w2"},
                "spec": {"size": "big"},
            },
        )
    assert err.value.status == 422
