"""What placement knows about the clusters at one instant: health, quota, usage and queues.

The core never talks to a cluster: adapters (``placement.adapters``) build a ``ClusterState`` from Kueue and
Karmada objects, the simulator builds one directly, and ``ClusterState.from_policy`` gives the "everything
free" state used when nothing better is known. Values are aggregated per flavor (counts, not workload lists),
which is what keeps ``decide`` O(flavors) however many workloads are pending.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from .policy import Policy


@dataclass(frozen=True)
class FlavorState:
    """One flavor's GPU quota in the member's ClusterQueue.

    - ``nominal_gpus``: the ClusterQueue's nominalQuota of the GPU resource for this flavor.
    - ``used_gpus``: GPUs of admitted/reserving workloads (``status.flavorsUsage``), borrowed ones included.
    - ``borrowable_gpus``: more GPUs the queue may borrow from its cohort right now (0 without a cohort).
    - ``pending``: workloads waiting for this flavor (or any flavor of the queue) ahead of a new request.
    - ``admission_rate_per_s``: observed admissions per second on this flavor; None when not observed.
    - ``queue_position``: the request's own 1-based position when it is already queued (visibility API);
      None for a new request (it would join behind ``pending``).
    """

    nominal_gpus: int
    used_gpus: int = 0
    borrowable_gpus: int = 0
    pending: int = 0
    admission_rate_per_s: float | None = None
    queue_position: int | None = None

    @property
    def free_gpus(self) -> int:
        """GPUs a new workload could be admitted with now: unused nominal quota plus what it may borrow."""
        return max(0, self.nominal_gpus - self.used_gpus) + max(0, self.borrowable_gpus)

    @property
    def max_gpus(self) -> int:
        """The most GPUs one workload could ever get here (quota plus borrowing), used for 'can it fit at
        all'."""
        return max(0, self.nominal_gpus) + max(0, self.borrowable_gpus)


@dataclass(frozen=True)
class MemberState:
    """One member's health and its flavors' quota.

    - ``ready``: the Karmada Cluster is Ready (or health is static and nothing says otherwise).
    - ``reason``: why not ready / inactive, or a note on where the facts came from; shown in explanations.
    - ``cluster_queue_active``: the ClusterQueue is Active and not stopped (``stopPolicy`` None).
    - ``flavors``: per flavor name; a flavor absent here falls back to its declared capacity.
    - ``source``: where this state came from ("declared capacity", "dump private.yaml", "live"); explained.
    """

    ready: bool = True
    reason: str = ""
    cluster_queue_active: bool = True
    flavors: Mapping[str, FlavorState] = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""

    @property
    def usable(self) -> bool:
        return self.ready and self.cluster_queue_active


@dataclass(frozen=True)
class ClusterState:
    """Every member's state. Members absent here are treated as declared in the policy (all free)."""

    members: Mapping[str, MemberState] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_policy(cls, policy: Policy) -> ClusterState:
        """Everything ready; each flavor's declared capacity free (``max_gpus`` when no capacity is
        declared)."""
        return cls(MappingProxyType({name: declared_member_state(policy, name) for name in policy.members}))

    def with_member(self, name: str, state: MemberState) -> ClusterState:
        members = dict(self.members)
        members[name] = state
        return ClusterState(MappingProxyType(members))

    def with_flavor(self, member: str, flavor: str, state: FlavorState) -> ClusterState:
        current = self.members.get(member, MemberState())
        flavors = dict(current.flavors)
        flavors[flavor] = state
        return self.with_member(member, replace(current, flavors=MappingProxyType(flavors)))

    def with_usage(self, member: str, flavor: str, **changes: object) -> ClusterState:
        """A copy with some fields of one flavor changed, e.g. ``with_usage("private", "silver",
        used_gpus=8)``."""
        current = self.members.get(member, MemberState()).flavors.get(flavor, FlavorState(nominal_gpus=0))
        return self.with_flavor(member, flavor, replace(current, **changes))  # type: ignore[arg-type]

    def with_health(
        self,
        member: str,
        *,
        ready: bool | None = None,
        cluster_queue_active: bool | None = None,
        reason: str = "",
    ) -> ClusterState:
        current = self.members.get(member, MemberState())
        return self.with_member(
            member,
            replace(
                current,
                ready=current.ready if ready is None else ready,
                cluster_queue_active=current.cluster_queue_active
                if cluster_queue_active is None
                else cluster_queue_active,
                reason=reason or current.reason,
            ),
        )


def declared_flavor_state(policy: Policy, flavor: str) -> FlavorState:
    f = policy.flavors[flavor]
    return FlavorState(nominal_gpus=f.capacity_gpus if f.capacity_gpus is not None else policy.max_gpus)


def declared_member_state(policy: Policy, member: str) -> MemberState:
    return MemberState(
        ready=True,
        cluster_queue_active=True,
        source="declared capacity (no live state; all free)",
        flavors=MappingProxyType(
            {f.name: declared_flavor_state(policy, f.name) for f in policy.flavors_of(member)}
        ),
    )
