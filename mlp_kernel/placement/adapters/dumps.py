"""Placement state from ``kubectl get ... -o yaml`` files, so admins can ask "where would this go?" offline.

A file may hold one object, a ``v1 List`` (what ``kubectl get a,b,c -o yaml`` prints), several YAML documents,
or a visibility API ``PendingWorkloadsSummary`` (``kubectl get --raw /apis/visibility.kueue.x-k8s.io/...``,
JSON is YAML). Karmada ``Cluster`` objects may be in any member's file: they describe every member's health.
A member without files keeps its declared capacity (all free), and its explanation says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ...safe_yaml import YamlInputError, load_yaml_all, read_yaml_text
from ..policy import Policy
from ..state import ClusterState, MemberState, declared_member_state
from .kueue import StateError, index_objects, karmada_health, member_state_from_objects
from .shapes import check_object


def read_objects(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every Kubernetes object in a dump file, Lists flattened. Raises ``StateError`` with the file name."""
    name = os.fspath(path)
    try:  # bounded and typed at the edge: a dump may be gzip'd, binary, an alias bomb or hand-edited
        text = read_yaml_text(name)
    except YamlInputError as exc:
        raise StateError(f"cannot read state file {name}: {exc.problem}") from None
    try:
        docs = load_yaml_all(text, source=name)
    except YamlInputError as exc:
        raise StateError(f"state file {exc}") from None
    out: list[dict[str, Any]] = []
    for doc in docs:
        if not isinstance(doc, Mapping) or "kind" not in doc:
            raise StateError(
                f"state file {name}: expected Kubernetes objects (a mapping with 'kind'), as printed by "
                f"`kubectl get clusterqueues,localqueues,workloads -A -o yaml`"
            )
        try:
            for obj in _flatten(doc):
                check_object(obj)
                out.append(obj)
        except StateError as exc:
            raise StateError(f"state file {name}: {exc}") from None
    return out


def _flatten(doc: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    kind = str(doc.get("kind", ""))
    if kind == "List" or (kind.endswith("List") and isinstance(doc.get("items"), list)):
        items = doc.get("items") or []
        if not isinstance(items, list):
            raise StateError(f"{kind}: items: expected a list of objects, got {type(items).__name__}")
        item_kind = kind[:-4] if kind != "List" else ""
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise StateError(f"{kind}: items[{i}]: expected an object, got {type(item).__name__}")
            obj = dict(item)
            if item_kind and "kind" not in obj:
                obj["kind"] = item_kind  # typed lists (ClusterQueueList) leave kind off their items
            yield from _flatten(obj)
        return
    yield dict(doc)


def state_from_objects(
    policy: Policy,
    objects_by_member: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    now: datetime | None = None,
    sources: Mapping[str, str] | None = None,
    own_workload: str | None = None,
    assume_missing_ready: bool = True,
) -> ClusterState:
    """Placement state from objects grouped by member; members without objects keep declared capacity."""
    now = now or datetime.now(timezone.utc)
    unknown = [m for m in objects_by_member if m not in policy.members]
    if unknown:
        raise StateError(
            f"state given for unknown member(s) {', '.join(unknown)}; the policy's members are: "
            f"{', '.join(policy.members)}"
        )
    clusters = {
        str((o.get("metadata") or {}).get("name")): o
        for objs in objects_by_member.values()
        for o in objs
        if o.get("kind") == "Cluster" and str(o.get("apiVersion", "")).startswith("cluster.karmada.io/")
    }
    members: dict[str, MemberState] = {}
    for name, member in policy.members.items():
        objs = objects_by_member.get(name)
        ready, reason = karmada_health(member, clusters, assume_missing_ready)
        if objs is None or member.backend == "local":
            declared = declared_member_state(policy, name)
            members[name] = MemberState(
                ready=ready,
                reason=reason,
                cluster_queue_active=True,
                flavors=declared.flavors,
                source=declared.source,
            )
            continue
        source = (sources or {}).get(name, "given objects")
        try:
            members[name] = member_state_from_objects(
                policy,
                member,
                index_objects(objs),
                now=now,
                ready=ready,
                reason=reason,
                source=source,
                own_workload=own_workload,
            )
        except StateError as exc:  # say which files were read for the member
            raise StateError(f"{source}: {exc}") from None
    return ClusterState(members)


def state_from_dumps(
    policy: Policy,
    dumps: Mapping[str, Sequence[str | os.PathLike[str]]],
    *,
    now: datetime | None = None,
    own_workload: str | None = None,
) -> ClusterState:
    """Placement state from dump files per member: ``{"private": ["private.yaml"], "aws": ["aws.yaml"]}``."""
    objects = {member: [o for p in paths for o in read_objects(p)] for member, paths in dumps.items()}
    sources = {
        m: "dump " + ", ".join(os.path.basename(os.fspath(p)) for p in paths) for m, paths in dumps.items()
    }
    return state_from_objects(policy, objects, now=now, sources=sources, own_workload=own_workload)
