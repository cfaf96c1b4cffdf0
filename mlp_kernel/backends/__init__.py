"""Backends start remote kernels; ``BackendRouter`` picks one per launch from the chosen member.

A policy may mix members on different backends (the demo policy runs "private" and "aws" both as ``local``
subprocesses; the platform policy runs both on ``kubernetes``). The router sends each launch to the backend
of the member placement chose, and remembers which backend owns each remote kernel for release and exit.
Backends are created lazily, so a notebook that only uses the local backend never imports ``kubernetes``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any

from .base import (
    Backend,
    ExitInfo,
    GatewayBackend,
    LaunchEvent,
    LaunchSpec,
    Leased,
    RemoteKernel,
    StateReading,
)

if TYPE_CHECKING:
    from ..placement import ClusterState, Policy

__all__ = ["Backend", "BackendRouter", "GatewayBackend"]


class BackendRouter(GatewayBackend):
    """The gateway's backend: each call goes to the backend of the kernel's member (see the module doc)."""

    name = "router"

    def __init__(
        self,
        member_backend: Callable[[str], str],
        factories: dict[str, Callable[[], Backend]],
        force: str = "",
    ) -> None:
        self.member_backend = member_backend
        self.factories = factories
        self.force = force
        self._instances: dict[str, Backend] = {}
        self._owner: dict[str, Backend] = {}

    def get(self, name: str) -> Backend:
        if name not in self._instances:
            if name not in self.factories:
                raise ValueError(f"unknown backend {name!r}; known: {', '.join(self.factories)}")
            self._instances[name] = self.factories[name]()
        return self._instances[name]

    def _for_member(self, member: str | None) -> Backend:
        return self.get(self.force or self.member_backend(member or ""))

    async def launch(self, spec: LaunchSpec) -> AsyncGenerator[LaunchEvent, None]:
        backend = self._for_member(spec.decision.member)
        agen = backend.launch(spec)
        try:
            async for ev in agen:
                if ev.remote is not None:
                    self._owner[ev.remote.kernel_id + ev.remote.member] = backend
                yield ev
        finally:
            await agen.aclose()

    def _owner_of(self, remote: RemoteKernel) -> Backend:
        return self._owner.get(remote.kernel_id + remote.member) or self._for_member(remote.member)

    async def wait_exit(self, remote: RemoteKernel) -> ExitInfo:
        return await self._owner_of(remote).wait_exit(remote)

    async def release(self, remote: RemoteKernel) -> None:
        await self._owner_of(remote).release(remote)
        self._owner.pop(remote.kernel_id + remote.member, None)

    def handle_record(self, remote: RemoteKernel) -> dict[str, Any]:
        backend = self._owner_of(remote)
        return {"backend": backend.name, **backend.handle_record(remote)}

    async def cluster_state(self, policy: Policy) -> ClusterState:
        """Live state for every member whose backend reads one: Kueue's for Kubernetes members (through the
        backend's own clients, which retry transient API errors), this machine's GPU ledger for local ones;
        members of other backends count with their declared capacity."""
        from types import MappingProxyType

        from ..placement import ClusterState

        states = dict(ClusterState.from_policy(policy).members)
        for name in ("kubernetes", "local"):
            members = [m for m in policy.members.values() if (self.force or m.backend) == name]
            backend = self.get(name) if members else None
            if isinstance(backend, StateReading):
                states.update((await backend.cluster_state(policy, members)).members)
        return ClusterState(members=MappingProxyType(states))

    def holds_lease(self, remote: RemoteKernel) -> bool:
        return isinstance(self._owner_of(remote), Leased)

    async def renew(self, remote: RemoteKernel) -> None:
        """Keep the remote kernel's lease alive where the backend has one (Kubernetes: a Lease object)."""
        backend = self._owner_of(remote)
        if isinstance(backend, Leased):
            await backend.renew(remote)

    def renew_interval_s(self, remote: RemoteKernel, at_most: float) -> float:
        """How often to renew ``remote``'s lease: a third of its backend's lease duration, at most
        ``at_most`` (a lease shorter than the gateway's interval would otherwise expire while in use)."""
        backend = self._owner_of(remote)
        if isinstance(backend, Leased) and backend.lease_duration_s:
            return min(at_most, float(backend.lease_duration_s) / 3)
        return at_most

    async def release_record(self, record: dict[str, Any]) -> bool:
        return await self.get(str(record.get("backend") or "local")).release_record(record)
