"""Reaching a member's API server: kubeconfig context, in-cluster service account, or the Karmada proxy.

The policy says how each member is reached (``Member.kubeconfig_context`` / ``in_cluster`` /
``karmada_cluster``). Through Karmada, every member API path is served under
``/apis/cluster.karmada.io/v1alpha1/clusters/{name}/proxy/``, so a client whose host is the Karmada server
plus that prefix talks to the member unchanged (RBAC: ``clusters/proxy`` on the Karmada API; Pull-mode members
need apiserver-network-proxy). Karmada does not pass our credentials on: it impersonates our Karmada identity
(user and groups) on the member with its own impersonator token, so the member's RBAC must name that identity,
and the proxy forwards whatever the Cluster's Ready says (an unreachable member answers 500 with the dial
error). Precedence when several are set: in-cluster, then kubeconfig context, then Karmada proxy, because a
direct connection has fewer moving parts than a proxied one.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from kubernetes import client, config
from kubernetes.config.incluster_config import InClusterConfigLoader

from ... import identity
from ...placement.policy import Member

KARMADA_PROXY = "/apis/cluster.karmada.io/v1alpha1/clusters/{name}/proxy"


class MemberUnreachable(RuntimeError):
    """The member has no usable connection settings; the message says which settings to add."""


@dataclass(frozen=True)
class Connection:
    """How this process reaches members: an optional kubeconfig file, and the Karmada API's context."""

    kubeconfig: str | None = None
    karmada_context: str | None = None


def _from_kubeconfig(path: str | None, context: str | None) -> client.Configuration:
    cfg = client.Configuration()
    config.load_kube_config(config_file=path, context=context, client_configuration=cfg, persist_config=False)
    return cfg


def _prefix_host(cfg: client.Configuration, prefix: str) -> None:
    """Point ``cfg`` at ``prefix`` under its server, and keep it there.

    The kubeconfig loader installs a ``refresh_api_key_hook`` that re-applies the kubeconfig (host included,
    and a new hook) to the configuration before every request, to refresh expiring tokens (exec plugins,
    OIDC). Run it against a scratch configuration instead and take only the token from it, so refreshing keeps
    working while the shared configuration's host (used by several threads at once) is never rewritten.
    """
    cfg.host = cfg.host.rstrip("/") + prefix
    inner = cfg.refresh_api_key_hook
    if inner is None:
        return

    def refresh(c: client.Configuration) -> None:
        nonlocal inner
        scratch = client.Configuration()
        inner(scratch)
        inner = scratch.refresh_api_key_hook or inner
        c.api_key.update(scratch.api_key)

    cfg.refresh_api_key_hook = refresh


def member_configuration(member: Member, connection: Connection) -> client.Configuration:
    """A client configuration that talks to ``member``'s API server."""
    if member.in_cluster:
        cfg = client.Configuration()
        # load_incluster_config with the token and CA of identity.service_account_dir() (the standard mount,
        # unless the runtime put them elsewhere); the API server's address is KUBERNETES_SERVICE_HOST/PORT
        files = identity.service_account_dir()
        InClusterConfigLoader(
            token_filename=os.path.join(files, "token"), cert_filename=os.path.join(files, "ca.crt")
        ).load_and_set(cfg)
        return cfg
    if member.kubeconfig_context:
        return _from_kubeconfig(connection.kubeconfig, member.kubeconfig_context)
    if member.karmada_cluster:
        cfg = _from_kubeconfig(connection.kubeconfig, connection.karmada_context)
        _prefix_host(cfg, KARMADA_PROXY.format(name=member.karmada_cluster))
        return cfg
    raise MemberUnreachable(
        f"member {member.name!r} has no kubeconfig_context, karmada_cluster or in_cluster setting in the "
        "policy; add one so mlp-kernel can reach its API server"
    )


class MemberClients:
    """One ``ApiClient`` per member, made on first use and shared (its connection pool is thread-safe).

    ``overrides`` maps member names to ready ``ApiClient``s (tests, or a host application that manages
    credentials itself); other members are configured from the policy.
    """

    def __init__(self, connection: Connection, overrides: dict[str, client.ApiClient] | None = None) -> None:
        self._connection = connection
        self._clients: dict[str, client.ApiClient] = dict(overrides or {})
        self._owned: list[client.ApiClient] = []
        self._lock = threading.Lock()

    def get(self, member: Member) -> client.ApiClient:
        with self._lock:
            api = self._clients.get(member.name)
            if api is None:
                api = client.ApiClient(member_configuration(member, self._connection))
                self._clients[member.name] = api
                self._owned.append(api)
            return api

    def close(self) -> None:
        """Close the clients this object made (not the overrides it was given)."""
        with self._lock:
            for api in self._owned:
                api.close()
                self._clients = {k: v for k, v in self._clients.items() if v is not api}
            self._owned.clear()
