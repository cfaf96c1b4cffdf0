"""Placement: where a GPU kernel should run, and why.

The core (``policy``, ``state``, ``wait``, ``decide``) is pure: values in, a ``Decision`` out, no I/O. Reading
policy files lives in ``policy_load``; reading clusters and ``kubectl`` dumps lives in ``adapters``, which the
core never imports.
"""

from __future__ import annotations

from .decide import decide
from .policy import BurstSettings, Flavor, Member, Policy, SnapshotSettings
from .policy_load import PolicyError, PolicyIssue, load_policy, parse_policy
from .state import ClusterState, FlavorState, MemberState
from .types import Action, Budget, Decision, GpuRequest, RuleResult
from .units import format_duration, format_size, parse_duration, parse_size
from .wait import WaitEstimate, expected_wait

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
