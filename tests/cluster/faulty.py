"""The real members behind fault proxies: what the product reaches can fail on demand, the test's view cannot.

``faulty_kube_members`` is ``real_kube_members`` (reset between tests) seen through one ``FaultProxy`` per
member (``faultproxy.py``): its ``kubeconfig_path`` (the one the product's kernels and ``mlp-kernel gc`` get)
names the proxies, each member has ``.faults`` and ``.requests`` as the test API's members do, and
``member.store.compact()`` makes a resumed watch meet ``410 Expired``. Everything else a test does with a
member (``find``, ``create``, ``wait_for``, the kubelet) still goes to the API server directly, so a test's
own assertions are never hit by the faults it arms. The members themselves are not changed: the plain
``real_kube_members`` of other tests keep their direct kubeconfig.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .faultproxy import FaultProxy
from .members import RealMember, RealMembers


class _CompactingStore:
    """``member.store`` with ``compact()``: history before now is gone, for watches through the proxy."""

    def __init__(self, member: RealMember, proxy: FaultProxy):
        self._member, self._proxy = member, proxy

    def compact(self) -> None:
        listed = self._member.rest.get("/api/v1/namespaces", limit=1)
        self._proxy.compact(listed["metadata"]["resourceVersion"])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._member.store, name)


class FaultyMember:
    """A ``RealMember`` whose product-facing kubeconfig goes through ``faults`` (a ``FaultProxy``)."""

    def __init__(self, member: RealMember, proxy: FaultProxy, kubeconfig_path: str):
        self._member = member
        self.faults = proxy
        self.kubeconfig_path = kubeconfig_path
        self.store = _CompactingStore(member, proxy)

    @property
    def requests(self) -> Any:
        return self.faults.requests

    def api_client(self) -> Any:
        return RealMember.api_client(self)  # type: ignore[arg-type]  # through the proxy, as the product

    def __getattr__(self, name: str) -> Any:
        return getattr(self._member, name)


class FaultyMembers:
    """``RealMembers`` with a fault proxy per member and a kubeconfig naming the proxies."""

    def __init__(self, members: RealMembers, proxies: dict[str, FaultProxy]):
        self._members = members
        self.kubeconfig_path = str(Path(members.root) / "kubeconfig-faulty")
        doc = yaml.safe_load(Path(members.kubeconfig_path).read_text())
        for cluster in doc["clusters"]:
            cluster["cluster"]["server"] = proxies[cluster["name"]].url
        Path(self.kubeconfig_path).write_text(yaml.safe_dump(doc))
        Path(self.kubeconfig_path).chmod(0o600)
        self.members = {
            name: FaultyMember(m, proxies[name], self.kubeconfig_path) for name, m in members.members.items()
        }
        self.private, self.public = self.members["private"], self.members["public"]
        self.proxies = proxies

    def __iter__(self) -> Iterator[FaultyMember]:
        return iter(self.members.values())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._members, name)


def start_proxies(members: RealMembers) -> dict[str, FaultProxy]:
    pki = members.pki
    return {
        name: FaultProxy(m.url, str(pki.ca), str(pki.cert), str(pki.key)).start()
        for name, m in members.members.items()
    }


@pytest.fixture(scope="package")
def fault_members(real_members: RealMembers) -> Iterator[FaultyMembers]:
    proxies = start_proxies(real_members)
    try:
        yield FaultyMembers(real_members, proxies)
    finally:
        for proxy in proxies.values():
            proxy.stop()


@pytest.fixture
def faulty_kube_members(real_kube_members: RealMembers, fault_members: FaultyMembers) -> FaultyMembers:
    """``real_kube_members`` (reset) behind the proxies, no fault armed and nothing recorded."""
    for proxy in fault_members.proxies.values():
        proxy.reset()
    return fault_members


@pytest.fixture
def kube_members(faulty_kube_members: FaultyMembers) -> FaultyMembers:
    """Imported by a test module, this puts its tests (and fixtures such as ``start_kube_kernel``) behind the
    proxies instead of the conftest's direct ``kube_members``."""
    return faulty_kube_members
