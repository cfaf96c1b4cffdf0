"""Placement: where a GPU kernel should run, and why.

The core (``policy``, ``state``, ``wait``, ``decide``) is pure: values in, a ``Decision`` out, no I/O. Reading
policy files lives in ``policy_load``; reading clusters and ``kubectl`` dumps lives in ``adapters``, which the
core never imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Names are resolved on first use (PEP 562): importing ``mlp_kernel.placement.units`` or ``.types`` must not
# load the YAML loader and the decision code, because the gateway process imports those at start-up and is
# one process per open notebook (see docs/design.md).
_WHERE = {
    "decide": "decider",  # the module is not named like its function: importing it must not shadow it
    "BurstSettings": "policy", "Flavor": "policy", "Member": "policy", "Policy": "policy",
    "SnapshotSettings": "policy",
    "PolicyError": "policy_load", "PolicyIssue": "policy_load", "load_policy": "policy_load",
    "parse_policy": "policy_load",
    "ClusterState": "state", "FlavorState": "state", "MemberState": "state",
    "Action": "types", "Budget": "types", "Decision": "types", "GpuRequest": "types", "RuleResult": "types",
    "format_duration": "units", "format_size": "units", "parse_duration": "units", "parse_size": "units",
    "WaitEstimate": "wait", "expected_wait": "wait",
}  # fmt: skip

if TYPE_CHECKING:
    from .decider import decide
    from .policy import BurstSettings, Flavor, Member, Policy, SnapshotSettings
    from .policy_load import PolicyError, PolicyIssue, load_policy, parse_policy
    from .state import ClusterState, FlavorState, MemberState
    from .types import Action, Budget, Decision, GpuRequest, RuleResult
    from .units import format_duration, format_size, parse_duration, parse_size
    from .wait import WaitEstimate, expected_wait


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Action",
    "Budget",
    "BurstSettings",
    "ClusterState",
    "Decision",
    "Flavor",
    "FlavorState",
    "GpuRequest",
    "Member",
    "MemberState",
    "Policy",
    "PolicyError",
    "PolicyIssue",
    "RuleResult",
    "SnapshotSettings",
    "WaitEstimate",
    "decide",
    "expected_wait",
    "format_duration",
    "format_size",
    "load_policy",
    "parse_duration",
    "parse_size",
    "parse_policy",
]
