"""Load and validate a policy file, reporting every problem with its field path and line.

Admins edit the policy by hand or in the admin page; one run must tell them everything that is wrong, where
(``flavors.gold.price_per_gpu_hour: expected a number (line 31)``), and not stop at the first error. The YAML
is composed into nodes (not just loaded) so each value keeps the line it came from.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from ..safe_yaml import YamlInputError, compose_yaml_all, read_yaml_text
from .policy import BurstSettings, Flavor, Member, Policy, SnapshotSettings, _frozen_map
from .release import DEFAULT_MIN_IDLE_S, RULE_KINDS, ReleaseRule
from .types import GpuRequest
from .units import (
    MAX_DURATION_S,
    QUANTITY_HELP,
    format_duration,
    parse_duration,
    parse_quantity,
    parse_size,
)

Path = tuple[str | int, ...]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?)$")

MAX_GPUS = 1024  # per kernel
MAX_CAPACITY = 1_000_000  # GPUs in one flavor
MAX_PRICE = 100_000.0  # dollars per GPU-hour: a typo guard; NaN and infinity are refused too

TOP_FIELDS = (
    "version",
    "tiers",
    "members",
    "flavors",
    "burst",
    "data_classes",
    "idle_timeout",
    "release",
    "launch_timeout",
    "max_gpus",
    "default_request",
    "snapshot",
)
MEMBER_FIELDS = (
    "public",
    "backend",
    "namespace",
    "local_queue",
    "cluster_queue",
    "kubeconfig_context",
    "karmada_cluster",
    "in_cluster",
    "health",
    "display_name",
)
FLAVOR_FIELDS = (
    "member",
    "tier",
    "gpu_models",
    "node_labels",
    "tolerations",
    "price_per_gpu_hour",
    "capacity_gpus",
    "gpu_resource",
)
TOLERATION_FIELDS = ("key", "operator", "value", "effect", "tolerationSeconds")
BURST_FIELDS = ("enabled", "threshold", "deadline_horizon")
DATA_CLASS_FIELDS = ("known", "keep_private")
REQUEST_FIELDS = ("gpu_model", "gpu_count", "tier", "cpu", "memory", "burstable", "budget", "data_class")
SNAPSHOT_FIELDS = ("enabled", "max_size", "exclude", "storage")
RELEASE_FIELDS = ("rule", "min_idle")


@dataclass(frozen=True)
class PolicyIssue:
    """One problem in a policy: where (dotted field path, YAML line when known) and what."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.message}" + (f" (line {self.line})" if self.line else "")


class PolicyError(ValueError):
    """The policy is invalid; ``errors`` lists every problem found, in file order."""

    def __init__(self, errors: list[PolicyIssue], source: str = "<string>") -> None:
        self.errors = list(errors)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    def describe(self) -> str:
        """For a command's stderr: ``invalid policy FILE: problem``, one line when there is one problem (a
        binary file, an alias bomb), else that header and one problem per line."""
        head = f"invalid policy {self.source}:"
        return f"{head} {self.errors[0]}" if len(self.errors) == 1 else f"{head}\n{self}"


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and validate the policy file at ``path``. Raises ``PolicyError`` listing every problem."""
    source = os.fspath(path)
    try:
        text = read_yaml_text(source)  # refuses gzip'd, binary and oversized files with one line
    except YamlInputError as exc:
        issue = PolicyIssue("", f"cannot read policy file {source}: {exc.problem}")
        raise PolicyError([issue], source) from None
    return parse_policy(text, source=source)


def parse_policy(text_or_mapping: str | Mapping[str, Any], source: str = "<string>") -> Policy:
    """Validate a policy given as YAML text or an already-loaded mapping. Raises ``PolicyError``."""
    lines: dict[Path, int] = {}
    issues: list[PolicyIssue] = []
    if isinstance(text_or_mapping, (str, bytes)):
        data: Any = _compose(text_or_mapping, source, lines, issues)
        if issues:
            raise PolicyError(issues, source)
    else:  # a mapping already loaded (the admin page), or anything else: the checker says what is wrong
        data = text_or_mapping
    checker = _Checker(lines)
    policy = checker.policy(data, source)
    if checker.issues:
        ordered = sorted(checker.issues, key=lambda i: (i.line is None, i.line or 0))
        raise PolicyError(ordered, source)
    assert policy is not None
    return policy


# --- YAML with line numbers -------------------------------------------------------------------------------


def _compose(text: str | bytes, source: str, lines: dict[Path, int], issues: list[PolicyIssue]) -> Any:
    try:  # bounded: an alias bomb or cyclic alias would make _node_to_python below run forever
        docs = compose_yaml_all(text, source=source)
    except YamlInputError as exc:
        issues.append(PolicyIssue("", exc.problem, exc.line))
        return None
    if not docs:
        issues.append(
            PolicyIssue("", "the policy is empty; expected a mapping with at least members and flavors")
        )
        return None
    if len(docs) > 1:
        issues.append(
            PolicyIssue("", "expected one YAML document, found several", docs[1].start_mark.line + 1)
        )
        return None
    try:
        return _node_to_python(docs[0], (), lines, issues, yaml.constructor.SafeConstructor())
    except (yaml.YAMLError, ValueError, OverflowError) as exc:  # a scalar such as 2020-13-45 (a bad date)
        mark = getattr(exc, "problem_mark", None)
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        issues.append(PolicyIssue("", f"not valid YAML: {problem}", mark.line + 1 if mark else None))
        return None


def _node_to_python(
    node: yaml.Node, path: Path, lines: dict[Path, int], issues: list[PolicyIssue], cons: Any
) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                issues.append(
                    PolicyIssue(_fmt(path), "keys must be plain strings", key_node.start_mark.line + 1)
                )
                continue
            key = cons.construct_object(key_node)
            if key in out:
                issues.append(
                    PolicyIssue(_fmt(path + (str(key),)), "duplicate key", key_node.start_mark.line + 1)
                )
            out[key] = _node_to_python(value_node, path + (str(key),), lines, issues, cons)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_node_to_python(v, path + (i,), lines, issues, cons) for i, v in enumerate(node.value)]
    return cons.construct_object(node)


def _fmt(path: Path) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text


# --- validation ---------------------------------------------------------------------------------------------

_MISSING = object()


class _Checker:
    """Reads fields with defaults, records an issue for each bad one, and always returns something usable."""

    def __init__(self, lines: dict[Path, int]) -> None:
        self.lines = lines
        self.issues: list[PolicyIssue] = []

    def err(self, path: Path, message: str) -> None:
        line = None
        for n in range(len(path), -1, -1):  # a missing field reports its parent's line
            if path[:n] in self.lines:
                line = self.lines[path[:n]]
                break
        self.issues.append(PolicyIssue(_fmt(path), message, line))

    def mapping(self, value: Any, path: Path, what: str = "a mapping") -> dict[str, Any]:
        if value is None or value is _MISSING:
            return {}
        if not isinstance(value, Mapping):
            self.err(path, f"expected {what}, got {_kind(value)}")
            return {}
        return dict(value)

    def known_fields(self, obj: Mapping[str, Any], path: Path, allowed: tuple[str, ...]) -> None:
        for key in obj:
            if key not in allowed:
                self.err(path + (str(key),), f"unknown field; expected one of: {', '.join(allowed)}")

    def string(
        self,
        obj: Mapping[str, Any],
        key: str,
        path: Path,
        default: Any = None,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        hint: str = "",
    ) -> Any:
        value = obj.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.err(path + (key,), "required" + (f" ({hint})" if hint else ""))
            return default
        if not isinstance(value, str) or not value.strip():
            self.err(path + (key,), f"expected a non-empty string, got {_kind(value)}")
            return default
        if pattern is not None and not pattern.match(value):
            self.err(path + (key,), f"{value!r} is not valid" + (f": {hint}" if hint else ""))
            return default
        return value

    def boolean(self, obj: Mapping[str, Any], key: str, path: Path, default: bool) -> bool:
        value = obj.get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        if not isinstance(value, bool):
            self.err(path + (key,), f"expected true or false, got {_kind(value)}")
            return default
        return value

    def number(
        self,
        obj: Mapping[str, Any],
        key: str,
        path: Path,
        default: Any = None,
        required: bool = False,
        minimum: float = 0.0,
        maximum: float = math.inf,
    ) -> Any:
        value = obj.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.err(path + (key,), "required: expected a number")
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.err(path + (key,), f"expected a number, got {_kind(value)}")
            return default
        if not (minimum <= value <= maximum) or not math.isfinite(value):  # YAML reads .nan, .inf as floats
            self.err(path + (key,), f"must be a number from {minimum:g} to {maximum:g}, got {value}")
            return default
        return float(value)

    def integer(
        self,
        obj: Mapping[str, Any],
        key: str,
        path: Path,
        default: Any = None,
        minimum: int = 0,
        maximum: int | None = None,
    ) -> Any:
        value = obj.get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(path + (key,), f"expected a whole number, got {_kind(value)}")
            return default
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
            self.err(path + (key,), f"must be {bound}, got {value}")
            return default
        return value

    def duration(
        self, obj: Mapping[str, Any], key: str, path: Path, default: float, positive: bool = False
    ) -> float:
        value = obj.get(key, _MISSING)
        if value is _MISSING or value is None:
            return default
        try:
            seconds = parse_duration(value)
        except (ValueError, TypeError):
            self.err(path + (key,), f"expected a duration such as 90s, 15m, 1h30m, got {value!r}")
            return default
        if positive and seconds <= 0:
            self.err(path + (key,), "must be longer than 0")
            return default
        if seconds > MAX_DURATION_S:  # 1e12 s overflows the gateway's timers
            self.err(path + (key,), f"must be at most {format_duration(MAX_DURATION_S)}, got {value!r}")
            return default
        return seconds

    def string_list(self, obj: Mapping[str, Any], key: str, path: Path) -> list[str]:
        value = obj.get(key, _MISSING)
        if value is _MISSING or value is None:
            return []
        if not isinstance(value, list):
            self.err(path + (key,), f"expected a list of strings, got {_kind(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.err(path + (key, i), f"expected a non-empty string, got {_kind(item)}")
            else:
                out.append(item.strip())
        return out

    # --- sections -----------------------------------------------------------------------------------------

    def policy(self, data: Any, source: str) -> Policy | None:
        top = self.mapping(data, (), "a mapping with members and flavors at the top level")
        self.known_fields(top, (), TOP_FIELDS)
        version = top.get("version", 1)
        if version != 1:
            self.err(("version",), f"unsupported policy version {version!r}; this release reads version 1")
        members = self.members(top.get("members", _MISSING))
        tiers = self.tiers(top)
        max_gpus = self.integer(top, "max_gpus", (), 8, minimum=1, maximum=MAX_GPUS)
        flavors = self.flavors(top.get("flavors", _MISSING), members, tiers)
        burst = self.burst(top.get("burst", _MISSING))
        known, private = self.data_classes(top.get("data_classes", _MISSING))
        idle = self.duration(top, "idle_timeout", (), 900.0, positive=True)
        release = self.release(top.get("release", _MISSING))
        launch = self.duration(top, "launch_timeout", (), 1800.0, positive=True)
        snapshot = self.snapshot(top.get("snapshot", _MISSING))
        request = self.default_request(top.get("default_request", _MISSING), flavors, tiers, known, max_gpus)
        if self.issues:
            return None
        return Policy(
            members=_frozen_map(members),
            flavors=_frozen_map(flavors),
            tiers=tuple(tiers),
            burst=burst,
            private_data_classes=frozenset(private),
            data_classes=frozenset(known | private),
            idle_timeout_s=idle,
            release=release,
            default_request=request,
            snapshot=snapshot,
            launch_timeout_s=launch,
            max_gpus=max_gpus,
            source=source,
        )

    def members(self, raw: Any) -> dict[str, Member]:
        path: Path = ("members",)
        if raw is _MISSING or raw is None:
            self.err(path, "required: at least one member (a cluster, or `backend: local` for this machine)")
            return {}
        section = self.mapping(raw, path, "a mapping of member name to settings")
        out: dict[str, Member] = {}
        for name, value in section.items():
            p = path + (str(name),)
            if not isinstance(name, str) or not _DNS_LABEL.match(name):
                self.err(p, "member names must be lowercase letters, digits and '-' (a DNS label)")
                continue
            obj = self.mapping(value, p)
            self.known_fields(obj, p, MEMBER_FIELDS)
            backend = self.string(obj, "backend", p, "kubernetes")
            if backend not in ("local", "kubernetes"):
                self.err(p + ("backend",), f"expected local or kubernetes, got {backend!r}")
                backend = "kubernetes"
            need = backend == "kubernetes"
            namespace = self.string(
                obj,
                "namespace",
                p,
                required=need,
                pattern=_DNS_LABEL,
                hint="the namespace kernel pods are created in",
            )
            local_queue = self.string(
                obj,
                "local_queue",
                p,
                required=need,
                pattern=_DNS_SUBDOMAIN,
                hint="the Kueue LocalQueue kernel pods are labelled with",
            )
            cluster_queue = self.string(obj, "cluster_queue", p, pattern=_DNS_SUBDOMAIN)
            karmada = self.string(obj, "karmada_cluster", p)
            health = self.string(obj, "health", p, "karmada" if karmada else "static")
            if health not in ("karmada", "static"):
                self.err(p + ("health",), f"expected karmada or static, got {health!r}")
            elif health == "karmada" and not karmada:
                self.err(
                    p + ("health",), "health: karmada needs karmada_cluster (the Karmada Cluster's name)"
                )
            out[name] = Member(
                name=name,
                public=self.boolean(obj, "public", p, False),
                backend=backend,
                namespace=namespace,
                local_queue=local_queue,
                cluster_queue=cluster_queue,
                kubeconfig_context=self.string(obj, "kubeconfig_context", p),
                karmada_cluster=karmada,
                in_cluster=self.boolean(obj, "in_cluster", p, False),
                health=health if health in ("karmada", "static") else "static",
                display_name=self.string(obj, "display_name", p, "") or "",
            )
        if not section and isinstance(raw, Mapping):
            self.err(path, "required: at least one member")
        return out

    def tiers(self, top: Mapping[str, Any]) -> list[str]:
        if "tiers" not in top:
            # Order of first appearance in flavors.
            seen: list[str] = []
            flavors = top.get("flavors")
            if isinstance(flavors, Mapping):
                for f in flavors.values():
                    t = f.get("tier") if isinstance(f, Mapping) else None
                    if isinstance(t, str) and t not in seen:
                        seen.append(t)
            return seen
        tiers = self.string_list(top, "tiers", ())
        if len(set(tiers)) != len(tiers):
            self.err(("tiers",), "tier names must be unique")
        if not tiers and isinstance(top.get("tiers"), list):
            self.err(("tiers",), "must list at least one tier (lowest/cheapest first)")
        return tiers

    def flavors(self, raw: Any, members: Mapping[str, Member], tiers: list[str]) -> dict[str, Flavor]:
        path: Path = ("flavors",)
        if raw is _MISSING or raw is None:
            self.err(path, "required: at least one flavor (a GPU pool on a member)")
            return {}
        section = self.mapping(raw, path, "a mapping of flavor name to settings")
        out: dict[str, Flavor] = {}
        for name, value in section.items():
            p = path + (str(name),)
            if not isinstance(name, str) or not _DNS_SUBDOMAIN.match(name):
                self.err(p, "flavor names must be a ResourceFlavor name: lowercase letters, digits, '-', '.'")
                continue
            obj = self.mapping(value, p)
            self.known_fields(obj, p, FLAVOR_FIELDS)
            member = self.string(obj, "member", p, required=True, hint="the member that has this pool")
            if member is not None and member not in members:
                self.err(p + ("member",), f"unknown member {member!r}; members are: {', '.join(members)}")
            tier = self.string(obj, "tier", p, required=True, hint="one of the names in tiers")
            if tier is not None and tiers and tier not in tiers:
                self.err(p + ("tier",), f"unknown tier {tier!r}; tiers are: {', '.join(tiers)}")
            models = self.string_list(obj, "gpu_models", p)
            if not models and "gpu_models" not in obj:
                self.err(p + ("gpu_models",), "required: the GPU models this pool offers, e.g. [V100, A30]")
            elif len({m.casefold() for m in models}) != len(models):
                self.err(p + ("gpu_models",), "GPU models must be unique (case-insensitive)")
            labels = self.labels(obj.get("node_labels", _MISSING), p + ("node_labels",))
            member_obj = members.get(member) if member else None
            if member_obj is not None and member_obj.backend == "kubernetes" and not labels:
                self.err(
                    p + ("node_labels",),
                    "required for a kubernetes member: the label that pins a pod to this flavor, "
                    "e.g. {mlp.io/gpu-tier: silver}",
                )
            tolerations = self.tolerations(obj.get("tolerations", _MISSING), p + ("tolerations",))
            price = self.number(obj, "price_per_gpu_hour", p, 0.0, required=True, maximum=MAX_PRICE)
            capacity = self.integer(obj, "capacity_gpus", p, None, minimum=0, maximum=MAX_CAPACITY)
            if (
                member_obj is not None
                and member_obj.backend == "local"
                and capacity is None
                and "capacity_gpus" not in obj
            ):
                self.err(p + ("capacity_gpus",), "required for a local member: how many GPUs this pool has")
            resource = self.string(obj, "gpu_resource", p, "nvidia.com/gpu")
            out[name] = Flavor(
                name=name,
                member=member or "",
                tier=tier or "",
                tier_rank=tiers.index(tier) if tier in tiers else 0,
                gpu_models=tuple(models),
                node_labels=_frozen_map(labels),
                tolerations=tuple(_frozen_map(t) for t in tolerations),
                price_per_gpu_hour=price if price is not None else 0.0,
                capacity_gpus=capacity,
                gpu_resource=resource,
            )
        if not section and isinstance(raw, Mapping):
            self.err(path, "required: at least one flavor")
        self.pinning(out, members)
        return out

    def pinning(self, flavors: Mapping[str, Flavor], members: Mapping[str, Member]) -> None:
        """Kueue compares only the label keys a flavor defines, so pinning needs one key every flavor has."""
        for member in members.values():
            mine = [f for f in flavors.values() if f.member == member.name and f.node_labels]
            if member.backend != "kubernetes" or len(mine) < 2:
                continue
            common = set(mine[0].node_labels)
            for f in mine[1:]:
                common &= set(f.node_labels)
            if not common:
                self.err(
                    ("flavors", mine[-1].name, "node_labels"),
                    f"the flavors of member {member.name!r} share no node label key, so a nodeSelector "
                    f"cannot pin a pod to one of them; give them all a common key such as mlp.io/gpu-tier",
                )

    def labels(self, raw: Any, path: Path) -> dict[str, str]:
        obj = self.mapping(raw, path, "a mapping of label key to value")
        out = {}
        for key, value in obj.items():
            key_text = str(key)
            prefix, _, name = key_text.rpartition("/")
            if (prefix and not _DNS_SUBDOMAIN.match(prefix)) or not _LABEL_NAME.match(name):
                self.err(path + (key_text,), f"{key_text!r} is not a valid Kubernetes label key")
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, (str, int))
                or not _LABEL_VALUE.match(str(value))
            ):
                self.err(path + (key_text,), f"{value!r} is not a valid Kubernetes label value")
                continue
            out[key_text] = str(value)
        return out

    def tolerations(self, raw: Any, path: Path) -> list[dict[str, Any]]:
        if raw is _MISSING or raw is None:
            return []
        if not isinstance(raw, list):
            self.err(path, f"expected a list of tolerations, got {_kind(raw)}")
            return []
        out = []
        for i, item in enumerate(raw):
            obj = self.mapping(item, path + (i,), "a toleration {key, operator, value, effect}")
            self.known_fields(obj, path + (i,), TOLERATION_FIELDS)
            if obj.get("operator", "Equal") not in ("Equal", "Exists"):
                self.err(path + (i, "operator"), "expected Equal or Exists")
            if obj.get("effect") not in (None, "", "NoSchedule", "PreferNoSchedule", "NoExecute"):
                self.err(path + (i, "effect"), "expected NoSchedule, PreferNoSchedule or NoExecute")
            out.append(obj)
        return out

    def burst(self, raw: Any) -> BurstSettings:
        p: Path = ("burst",)
        obj = self.mapping(raw, p)
        self.known_fields(obj, p, BURST_FIELDS)
        return BurstSettings(
            threshold_s=self.duration(obj, "threshold", p, 600.0),
            deadline_horizon_s=self.duration(obj, "deadline_horizon", p, 7200.0, positive=True),
            enabled=self.boolean(obj, "enabled", p, True),
        )

    def release(self, raw: Any) -> ReleaseRule:
        p: Path = ("release",)
        obj = self.mapping(raw, p, "a mapping with rule and min_idle")
        self.known_fields(obj, p, RELEASE_FIELDS)
        kind = self.string(obj, "rule", p, "gpu-minutes")
        if kind not in RULE_KINDS:
            self.err(p + ("rule",), f"expected {' or '.join(RULE_KINDS)}, got {kind!r} (flat releases every "
                     "kernel after idle_timeout; gpu-minutes divides it by the kernel's GPU count)")
            kind = "gpu-minutes"
        return ReleaseRule(kind=kind, min_idle_s=self.duration(obj, "min_idle", p, DEFAULT_MIN_IDLE_S))

    def data_classes(self, raw: Any) -> tuple[set[str], set[str]]:
        p: Path = ("data_classes",)
        obj = self.mapping(raw, p)
        self.known_fields(obj, p, DATA_CLASS_FIELDS)
        known = set(self.string_list(obj, "known", p))
        private = self.string_list(obj, "keep_private", p)
        for i, c in enumerate(private):
            if known and c not in known:
                self.err(p + ("keep_private", i), f"{c!r} is not in data_classes.known")
        return known, set(private)

    def snapshot(self, raw: Any) -> SnapshotSettings:
        p: Path = ("snapshot",)
        obj = self.mapping(raw, p)
        self.known_fields(obj, p, SNAPSHOT_FIELDS)
        max_bytes = 2 * 1024**3
        if obj.get("max_size") is not None:
            try:
                max_bytes = parse_size(obj["max_size"])
            except (ValueError, TypeError):
                self.err(p + ("max_size",), f"expected a size such as 2Gi or 500M, got {obj['max_size']!r}")
        storage = self.mapping(obj.get("storage", _MISSING), p + ("storage",)) or {"kind": "local"}
        if not isinstance(storage.get("kind", "local"), str):
            self.err(p + ("storage", "kind"), "expected a string such as local or s3")
        storage.setdefault("kind", "local")
        if storage["kind"] not in ("local", "volume", "s3"):
            self.err(p + ("storage", "kind"), f"expected local, volume or s3, got {storage['kind']!r}")
        if storage["kind"] == "volume":
            if not isinstance(storage.get("claim"), str) or not storage.get("claim"):
                self.err(p + ("storage", "claim"), "a volume needs its PersistentVolumeClaim (claim: NAME)")
            for key in ("path", "gateway_path"):
                value = storage.get(key)
                if value is not None and not (isinstance(value, str) and value.startswith("/")):
                    self.err(p + ("storage", key), f"expected an absolute path, got {value!r}")
        if storage["kind"] == "s3":  # checked here so a mistake (or an inline secret) fails at load time
            from ..snapshot.s3_config import storage_errors

            for sub, message in storage_errors(storage):
                self.err(p + ("storage", *sub), message)
        return SnapshotSettings(
            enabled=self.boolean(obj, "enabled", p, True),
            max_bytes=max_bytes,
            exclude=tuple(self.string_list(obj, "exclude", p)),
            storage=_frozen_map(storage),
        )

    def default_request(
        self, raw: Any, flavors: Mapping[str, Flavor], tiers: list[str], known: set[str], max_gpus: int
    ) -> GpuRequest:
        p: Path = ("default_request",)
        obj = self.mapping(raw, p)
        self.known_fields(obj, p, REQUEST_FIELDS)
        model = self.string(obj, "gpu_model", p)
        if model is not None:
            canon = {g.casefold(): g for f in flavors.values() for g in reversed(f.gpu_models)}
            if model.casefold() not in canon and flavors:
                self.err(
                    p + ("gpu_model",), f"no flavor offers {model!r}; models are: {', '.join(canon.values())}"
                )
            model = canon.get(model.casefold(), model)
        tier = self.string(obj, "tier", p)
        if tier is not None and tier not in tiers:
            self.err(p + ("tier",), f"unknown tier {tier!r}; tiers are: {', '.join(tiers)}")
        if model is not None and tier is not None:
            self.err(p + ("tier",), "give gpu_model or tier, not both")
        count = self.integer(obj, "gpu_count", p, 1, minimum=1, maximum=max_gpus)
        cpu = self.quantity(obj, "cpu", p)
        memory = self.quantity(obj, "memory", p)
        budget = self.string(obj, "budget", p, "fixed")
        if budget not in ("flex", "fixed"):
            self.err(p + ("budget",), f"expected flex or fixed, got {budget!r}")
            budget = "fixed"
        data_class = self.string(obj, "data_class", p)
        if data_class is not None and known and data_class not in known:
            self.err(
                p + ("data_class",), f"unknown data class {data_class!r}; known: {', '.join(sorted(known))}"
            )
        return GpuRequest(
            gpu_model=model,
            gpu_count=count,
            tier=tier,
            cpu=cpu,
            memory=memory,
            burstable=self.boolean(obj, "burstable", p, False),
            budget=budget,
            data_class=data_class,
        )

    def quantity(self, obj: Mapping[str, Any], key: str, path: Path) -> str | None:
        value = obj.get(key)
        if value is None:
            return None
        try:
            parse_quantity(value)
        except ValueError:
            self.err(path + (key,), f"expected {QUANTITY_HELP}, got {value!r}")
            return None
        return str(value)


def _kind(value: Any) -> str:
    if value is None or value is _MISSING:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
