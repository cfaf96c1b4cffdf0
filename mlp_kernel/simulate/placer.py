"""The simulator's one door to placement: the live ``decide`` function, fed a state built from the pools.

Why a separate module: every strategy's every GPU decision goes through ``ask`` here, and ``DECIDE`` *is*
``mlp_kernel.placement.decide`` (a test asserts the identity), so the simulator can never drift into a
private copy of the placement rules. What this module adds is only the translation from the engine's pool
counters to a ``ClusterState`` (quota, usage, pending, observed admission rate) and from seconds to datetimes.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from types import MappingProxyType

from ..placement import ClusterState, Decision, FlavorState, GpuRequest, MemberState, Policy, decide

DECIDE = decide
"""The placement function every simulated decision calls: the gateway's own."""

RATE_WINDOW_S = 1800.0
"""Admissions observed over this recent window give ``admission_rate_per_s`` (as the live adapters do)."""


class Pools:
    """GPU quota per flavor as Kueue would count it: nominal, used, pending, recent admissions."""

    def __init__(self, policy: Policy, capacity: dict[str, int] | None = None) -> None:
        self.policy = policy
        self.capacity: dict[str, int] = {}
        for name, f in policy.flavors.items():
            declared = f.capacity_gpus if f.capacity_gpus is not None else policy.max_gpus * 1000
            self.capacity[name] = int((capacity or {}).get(name, declared))
        self.used = dict.fromkeys(policy.flavors, 0)
        self.preemptible = dict.fromkeys(policy.flavors, 0)  # of ``used``: warm-pool kernels (any user's)
        self.pending = dict.fromkeys(policy.flavors, 0)
        self._admissions: dict[str, deque[float]] = {name: deque() for name in policy.flavors}

    def free(self, flavor: str) -> int:
        """GPUs a user's request may have: the unused ones and those of warm-pool kernels (claimed, or ended
        to make room: the pool has the lowest priority)."""
        return self.capacity[flavor] - self.used[flavor] + self.preemptible[flavor]

    def unused(self, flavor: str) -> int:
        """GPUs nobody holds, not even the warm pool."""
        return self.capacity[flavor] - self.used[flavor]

    def max_free(self) -> int:
        return max((self.free(f) for f in self.capacity), default=0)

    def admit(self, flavor: str, gpus: int, t: float) -> None:
        self.used[flavor] += gpus
        self._admissions[flavor].append(t)

    def release(self, flavor: str, gpus: int) -> None:
        self.used[flavor] -= gpus

    def rate(self, flavor: str, t: float) -> float | None:
        window = self._admissions[flavor]
        while window and window[0] < t - RATE_WINDOW_S:
            window.popleft()
        return len(window) / RATE_WINDOW_S if window else None

    def state(self, t: float) -> ClusterState:
        members = {}
        for member in self.policy.members:
            flavors = {
                f.name: FlavorState(
                    nominal_gpus=self.capacity[f.name],
                    used_gpus=self.used[f.name] - self.preemptible[f.name],
                    pending=self.pending[f.name],
                    admission_rate_per_s=self.rate(f.name, t),
                )
                for f in self.policy.flavors_of(member)
            }
            members[member] = MemberState(flavors=MappingProxyType(flavors), source="simulator")
        return ClusterState(MappingProxyType(members))


def ask(policy: Policy, pools: Pools, request: GpuRequest, t: float, epoch: datetime) -> Decision:
    """Placement's answer for ``request`` at simulated second ``t``."""
    return DECIDE(policy, pools.state(t), request, epoch + timedelta(seconds=t))
