"""The generated kubeconfig works with ``load_kube_config``; Leases work through CoordinationV1Api."""

from __future__ import annotations

import datetime as dt

from kubernetes import client, config


def test_load_kube_config_selects_each_context(kube_members):
    for server in kube_members:
        api = config.new_client_from_config(config_file=kube_members.kubeconfig_path, context=server.context)
        assert api.configuration.host == server.url
        names = [n.metadata.name for n in client.CoreV1Api(api).list_node().items]
        assert names == sorted(n["metadata"]["name"] for n in server.list("v1", "Node"))


def test_load_kube_config_into_default_client(kube_members):
    config.load_kube_config(config_file=kube_members.kubeconfig_path, context="public")
    try:
        assert "public-gold-1" in [n.metadata.name for n in client.CoreV1Api().list_node().items]
    finally:
        client.Configuration.set_default(client.Configuration())


def test_lease_create_and_renew(kube_member):
    leases = client.CoordinationV1Api(kube_member.api_client())
    now = dt.datetime.now(dt.timezone.utc)
    lease = leases.create_namespaced_lease(
        "default",
        {
            "metadata": {"name": "kernel-abc"},
            "spec": {"holderIdentity": "gateway-1", "leaseDurationSeconds": 30, "renewTime": now.isoformat()},
        },
    )
    lease.spec.renew_time = now + dt.timedelta(seconds=10)
    renewed = leases.replace_namespaced_lease("kernel-abc", "default", lease)
    assert renewed.spec.renew_time > now
    assert renewed.spec.holder_identity == "gateway-1"
