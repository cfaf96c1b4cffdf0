"""The warm pool in the simulator: pre-started kernels per flavor that a cold start claims (issue 18 §3).

What it models, as the backends do it (docs/design.md, "A shared warm pool per flavor"):
- A flavor keeps up to ``warm_pool`` kernels of ``warm_pool_gpus`` GPUs started. They hold their GPUs (held,
  never busy: the report counts them as the platform's idle GPU-hours, ``warm_pool`` in the idle breakdown)
  from their admission on, cold start included.
- A cold start that placement sends to a flavor with a *ready* pool kernel of exactly its size claims it:
  the user waits only ``claim_s`` (rekey, chdir) plus the restore of their variables, not the pod start.
- Pool kernels are the platform's lowest priority: they never make a user queue. Placement sees their GPUs
  as free, and a user's admission that needs them ends pool kernels first (as Kueue preempts the pool's
  low-priority pods).
- The pool follows demand: a kernel nobody claims within ``warm_pool_idle`` is given back, and the pool is
  refilled (to its size, while GPUs are free and nobody queues on the flavor) only after a claim or a cold
  start that found it empty. An unused pool drains within ``warm_pool_idle`` of the last cold start.

This module keeps the pool's bookkeeping; the engine owns time and the GPU counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..placement import Policy


@dataclass(frozen=True)
class PoolSpec:
    """One flavor's pool: ``size`` kernels of ``gpus`` GPUs, released after ``idle_s`` unclaimed."""

    size: int
    gpus: int
    idle_s: float


def specs(policy: Policy, sizes: dict[str, int] | None = None) -> dict[str, PoolSpec]:
    """Each flavor's pool from the policy (``warm_pool``, ``warm_pool_gpus``, ``warm_pool_idle``), the size
    overridden per flavor by ``sizes`` (the simulator's ``--warm-pool``); flavors without a pool left out."""
    out = {}
    for name, f in policy.flavors.items():
        size = (sizes or {}).get(name, f.warm_pool)
        if size > 0:
            out[name] = PoolSpec(size, f.warm_pool_gpus, f.warm_pool_idle_s)
    return out


@dataclass
class PoolKernel:
    """A pre-started kernel; ``alloc`` is the engine's ``Allocation`` for its GPUs (the platform's)."""

    flavor: str
    gpus: int
    alloc: object
    ready: bool = False
    alive: bool = True


@dataclass
class FlavorPool:
    spec: PoolSpec
    kernels: list[PoolKernel] = field(default_factory=list)
    wanted: bool = False  # demand seen since the pool last drained: refill up to the size

    def ready(self, gpus: int) -> PoolKernel | None:
        """A ready kernel a request for ``gpus`` may claim (exactly the pool's size), oldest first."""
        if gpus != self.spec.gpus:
            return None
        return next((k for k in self.kernels if k.ready and k.alive), None)

    def live(self) -> list[PoolKernel]:
        return [k for k in self.kernels if k.alive]

    def missing(self) -> int:
        return self.spec.size - len(self.live()) if self.wanted else 0

    def forget(self, k: PoolKernel) -> None:
        k.alive = False
        self.kernels = [x for x in self.kernels if x is not k]
