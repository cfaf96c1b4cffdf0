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
from typing import Any

import yaml

from ..safe_yaml import YamlInputError, compose_yaml_all, read_yaml_text
from ..validation import Issue, format_path
from .data_class import DATA_CLASS_MATCHES
from .policy import (
    MAX_CAPACITY,
    MAX_GPUS,
    MAX_PRICE,
    BudgetSettings,
    BurstSettings,
    DataClassDefault,
    DataClassSettings,
    Flavor,
    Member,
    Policy,
    SnapshotSettings,
    Tenancy,
    WorkspaceSyncSettings,
    _frozen_map,
)
from .prestart import Prestart
from .release import ReleaseRule
from .schema import DNS_LABEL, DNS_SUBDOMAIN, FieldSpec, default_of, keys, specs, storage_checks
from .tenancy import template_problem
from .types import GpuRequest
from .units import MAX_DURATION_S, QUANTITY_HELP, format_duration, parse_duration, parse_quantity, parse_size

Path = tuple[str | int, ...]

_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?)$")

__all__ = [
    "MAX_CAPACITY",
    "MAX_GPUS",
    "MAX_PRICE",
    "PolicyError",
    "PolicyIssue",
    "load_policy",
    "parse_policy",
]

TOLERATION_FIELDS = ("key", "operator", "value", "effect", "tolerationSeconds")

PolicyIssue = Issue
"""A problem in a policy: ``mlp_kernel.validation.Issue`` (path, message, line, severity), old name."""


class PolicyError(ValueError):
    """The policy is invalid; ``errors`` lists every problem found, in file order."""

    def __init__(self, errors: list[Issue], source: str = "<string>") -> None:
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
        issue = Issue("", f"cannot read policy file {source}: {exc.problem}")
        raise PolicyError([issue], source) from None
    return parse_policy(text, source=source)


def parse_policy(text_or_mapping: str | Mapping[str, Any], source: str = "<string>") -> Policy:
    """Validate a policy given as YAML text or an already-loaded mapping. Raises ``PolicyError``."""
    lines: dict[Path, int] = {}
    issues: list[Issue] = []
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


def _compose(text: str | bytes, source: str, lines: dict[Path, int], issues: list[Issue]) -> Any:
    try:  # bounded: an alias bomb or cyclic alias would make _node_to_python below run forever
        docs = compose_yaml_all(text, source=source)
    except YamlInputError as exc:
        issues.append(Issue("", exc.problem, exc.line))
        return None
    if not docs:
        issues.append(Issue("", "the policy is empty; expected a mapping with at least members and flavors"))
        return None
    if len(docs) > 1:
        issues.append(Issue("", "expected one YAML document, found several", docs[1].start_mark.line + 1))
        return None
    try:
        return _node_to_python(docs[0], (), lines, issues, yaml.constructor.SafeConstructor())
    except (yaml.YAMLError, ValueError, OverflowError) as exc:  # a scalar such as 2020-13-45 (a bad date)
        mark = getattr(exc, "problem_mark", None)
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        issues.append(Issue("", f"not valid YAML: {problem}", mark.line + 1 if mark else None))
        return None


def _node_to_python(
    node: yaml.Node, path: Path, lines: dict[Path, int], issues: list[Issue], cons: Any
) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                issues.append(Issue(_fmt(path), "keys must be plain strings", key_node.start_mark.line + 1))
                continue
            key = cons.construct_object(key_node)
            if key in out:
                issues.append(Issue(_fmt(path + (str(key),)), "duplicate key", key_node.start_mark.line + 1))
            out[key] = _node_to_python(value_node, path + (str(key),), lines, issues, cons)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_node_to_python(v, path + (i,), lines, issues, cons) for i, v in enumerate(node.value)]
    return cons.construct_object(node)


_fmt = format_path


# --- validation ---------------------------------------------------------------------------------------------

_MISSING = object()


class _Checker:
    """Reads fields with defaults, records an issue for each bad one, and always returns something usable."""

    def __init__(self, lines: dict[Path, int]) -> None:
        self.lines = lines
        self.issues: list[Issue] = []

    def err(self, path: Path, message: str) -> None:
        line = None
        for n in range(len(path), -1, -1):  # a missing field reports its parent's line
            if path[:n] in self.lines:
                line = self.lines[path[:n]]
                break
        self.issues.append(Issue(_fmt(path), message, line))

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

    def choice(
        self,
        obj: Mapping[str, Any],
        key: str,
        path: Path,
        default: Any,
        choices: tuple[str, ...],
        hint: str = "",
    ) -> Any:
        value = self.string(obj, key, path, default)
        if value not in choices:
            more = f" ({hint})" if hint else ""
            self.err(path + (key,), f"expected {' or '.join(choices)}, got {value!r}{more}")
            return default
        return value

    def size(self, obj: Mapping[str, Any], key: str, path: Path, default: int) -> int:
        value = obj.get(key)
        if value is None:
            return default
        try:
            return parse_size(value)
        except (ValueError, TypeError):
            self.err(path + (key,), f"expected a size such as 2Gi or 500M, got {value!r}")
            return default

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

    # --- the declared fields ------------------------------------------------------------------------------

    def read(
        self, cls: type, obj: Mapping[str, Any], path: Path, optional: tuple[str, ...] = (), **maximum: float
    ) -> dict[str, Any]:
        """Every declared field of section ``cls`` in ``obj`` by its dataclass name, its default when missing
        or wrong; a key not declared is an error. ``custom`` fields are left to the section's own code, and
        ``maximum`` overrides a declared one (``gpu_count`` is bounded by the policy's ``max_gpus``)."""
        self.known_fields(obj, path, keys(cls))
        out: dict[str, Any] = {}
        given: dict[str, Any] = {}
        for f, spec in specs(cls):
            if spec.kind == "custom":
                continue
            required = f.name not in optional and (
                spec.required
                or (spec.required_if is not None and given.get(spec.required_if[0]) == spec.required_if[1])
            )
            value = self.value(spec, obj, path, default_of(f), required, maximum.get(spec.key, spec.maximum))
            out[f.name] = given[spec.key] = value
        return out

    def value(
        self,
        spec: FieldSpec,
        obj: Mapping[str, Any],
        path: Path,
        default: Any,
        required: bool,
        maximum: float | None,
    ) -> Any:
        key, kind = spec.key, spec.kind
        if kind == "boolean":
            return self.boolean(obj, key, path, default)
        if kind == "string":
            return self.string(obj, key, path, default, required, spec.pattern, spec.hint)
        if kind == "choice":
            return self.choice(obj, key, path, default, spec.choices, spec.hint)
        if kind == "number":
            top = math.inf if maximum is None else maximum
            return self.number(obj, key, path, default, required, spec.minimum or 0.0, top)
        if kind == "integer":
            return self.integer(obj, key, path, default, int(spec.minimum or 0), _int(maximum))
        if kind == "duration":
            return self.duration(obj, key, path, default, spec.positive)
        if kind == "size":
            return self.size(obj, key, path, default)
        if kind == "strings":
            return tuple(self.string_list(obj, key, path))
        if kind == "quantity":
            return self.quantity(obj, key, path)
        raise AssertionError(f"no reader for kind {kind!r}")

    # --- sections -----------------------------------------------------------------------------------------

    def policy(self, data: Any, source: str) -> Policy | None:
        top = self.mapping(data, (), "a mapping with members and flavors at the top level")
        fields = self.read(Policy, top, ())
        version = top.get("version", 1)
        if version != 1:
            self.err(("version",), f"unsupported policy version {version!r}; this release reads version 1")
        members = self.members(top.get("members", _MISSING))
        tiers = self.tiers(top)
        flavors = self.flavors(top.get("flavors", _MISSING), members, tiers)
        burst = BurstSettings(
            **self.read(BurstSettings, self.mapping(top.get("burst"), ("burst",)), ("burst",))
        )
        budgets = self.budgets(top.get("budgets"), members)
        for i, t in enumerate(fields["upgrade_tiers"]):
            if t not in tiers:
                self.err(("upgrade_tiers", i), f"unknown tier {t!r}; tiers are: {', '.join(tiers)}")
        known, private = self.data_classes(top.get("data_classes", _MISSING))
        class_defaults = self.data_class_defaults(top.get("data_classes"), known | private)
        release = self.release(self.release_section(top))
        snapshot = self.snapshot(top.get("snapshot", _MISSING))
        workspace_sync = self.workspace_sync(top.get("workspace_sync", _MISSING), snapshot)
        request = self.default_request(
            top.get("default_request", _MISSING), flavors, tiers, known, fields["max_gpus"]
        )
        if self.issues:
            return None
        return Policy(
            **fields,
            members=_frozen_map(members),
            flavors=_frozen_map(flavors),
            tiers=tuple(tiers),
            burst=burst,
            budgets=budgets,
            private_data_classes=frozenset(private),
            data_classes=frozenset(known | private),
            data_class_defaults=class_defaults,
            release=release,
            default_request=request,
            snapshot=snapshot,
            workspace_sync=workspace_sync,
            source=source,
        )

    def budgets(self, raw: Any, members: Mapping[str, Member]) -> BudgetSettings:
        path: Path = ("budgets",)
        b = BudgetSettings(**self.read(BudgetSettings, self.mapping(raw, path), path))
        for soft, hard in (("team_soft", "team_monthly"), ("user_soft", "user_monthly")):
            s, h = getattr(b, soft), getattr(b, hard)
            if s is not None and h is not None and s > h:
                self.err(path + (soft,), f"the soft limit ${s:g} is above the hard limit `{hard}` ${h:g}")
        m = members.get(b.ledger_member or "")
        if b.ledger_member and (m is None or m.backend != "kubernetes"):
            self.err(path + ("ledger_member",), f"{b.ledger_member!r} is not a kubernetes member")
        return b

    def members(self, raw: Any) -> dict[str, Member]:
        path: Path = ("members",)
        if raw is _MISSING or raw is None:
            self.err(path, "required: at least one member (a cluster, or `backend: local` for this machine)")
            return {}
        section = self.mapping(raw, path, "a mapping of member name to settings")
        out: dict[str, Member] = {}
        for name, value in section.items():
            p = path + (str(name),)
            if not isinstance(name, str) or not DNS_LABEL.match(name):
                self.err(p, "member names must be lowercase letters, digits and '-' (a DNS label)")
                continue
            obj = self.mapping(value, p)
            tenancy = self.tenancy(obj, p)
            fields = self.read(Member, obj, p, optional=("namespace", "local_queue") if tenancy else ())
            fields["tenancy"] = tenancy
            if obj.get("health") is None:  # the declared default_doc: karmada when there is a Cluster to ask
                fields["health"] = "karmada" if fields["karmada_cluster"] else "static"
            if not _label_key_ok(fields["gpu_product_label"]):
                self.err(
                    p + ("gpu_product_label",),
                    f"{fields['gpu_product_label']!r} is not a valid Kubernetes label key",
                )
            self.workspace_fields(fields, p)
            if fields["health"] == "karmada" and not fields["karmada_cluster"]:
                self.err(
                    p + ("health",), "health: karmada needs karmada_cluster (the Karmada Cluster's name)"
                )
            out[name] = Member(name=name, **fields)
        if not section and isinstance(raw, Mapping):
            self.err(path, "required: at least one member")
        return out

    def tenancy(self, obj: Mapping[str, Any], p: Path) -> Tenancy | None:
        """A member's ``tenancy`` section: templates that fill in for any user (``tenancy.template_problem``),
        and a LocalQueue from it or from the member."""
        raw = obj.get("tenancy")
        if raw is None:
            return None
        p = p + ("tenancy",)
        t = Tenancy(**self.read(Tenancy, self.mapping(raw, p), p))
        for key, pattern in (("namespace", DNS_LABEL), ("local_queue", DNS_SUBDOMAIN)):
            value = getattr(t, key)
            problem = template_problem(value, pattern) if isinstance(value, str) and value else ""
            if problem:
                self.err(p + (key,), problem)
        if t.service_account and template_problem(t.service_account, DNS_SUBDOMAIN):
            self.err(p + ("service_account",), template_problem(t.service_account, DNS_SUBDOMAIN))
        if obj.get("backend", "kubernetes") != "kubernetes":
            self.err(p, "tenancy is for kubernetes members (a local member has no namespace)")
        elif not t.local_queue and not obj.get("local_queue"):
            self.err(p + ("local_queue",), "required: the LocalQueue in each user's namespace (or the "
                     "member's local_queue)")  # fmt: skip
        return t

    def workspace_fields(self, fields: dict[str, Any], p: Path) -> None:
        """A member's workspace and packages volumes: claim names valid for any user, absolute paths."""
        for claim in ("workspace_claim", "packages_claim"):
            name = fields[claim]
            if name is None:
                continue
            if fields["public"]:
                self.err(
                    p + (claim,),
                    "a public member cannot mount the private workspace volume; "
                    "the notebook's files reach it through workspace_sync",
                )
            elif not isinstance(name, str) or not DNS_SUBDOMAIN.match(name.replace("{username}", "u")):
                self.err(
                    p + (claim,),
                    f"{name!r} is not a PersistentVolumeClaim name once {{username}} is filled in "
                    "(lowercase letters, digits, '-' and '.')",
                )
        for path in ("workspace_path", "packages_path"):
            value = fields[path]
            if not isinstance(value, str) or not value.startswith("/") or "/../" in value + "/":
                self.err(p + (path,), f"{value!r} must be an absolute path")
        work, pkgs = str(fields["workspace_path"]).rstrip("/"), str(fields["packages_path"]).rstrip("/")
        if fields["packages_claim"] and (pkgs == work or pkgs.startswith(work + "/")):
            self.err(p + ("packages_path",), f"{pkgs} is inside workspace_path {work}: mount it elsewhere")

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
            if not isinstance(name, str) or not DNS_SUBDOMAIN.match(name):
                self.err(p, "flavor names must be a ResourceFlavor name: lowercase letters, digits, '-', '.'")
                continue
            obj = self.mapping(value, p)
            fields = self.read(Flavor, obj, p)
            member, tier, models = fields["member"], fields["tier"], fields["gpu_models"]
            if member and member not in members:
                self.err(p + ("member",), f"unknown member {member!r}; members are: {', '.join(members)}")
            if tier and tiers and tier not in tiers:
                self.err(p + ("tier",), f"unknown tier {tier!r}; tiers are: {', '.join(tiers)}")
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
            products = self.products(obj.get("gpu_products", _MISSING), p, models, member_obj)
            tolerations = self.tolerations(obj.get("tolerations", _MISSING), p + ("tolerations",))
            if (
                member_obj is not None
                and member_obj.backend == "local"
                and fields["capacity_gpus"] is None
                and "capacity_gpus" not in obj
            ):
                self.err(p + ("capacity_gpus",), "required for a local member: how many GPUs this pool has")
            out[name] = Flavor(
                name=name,
                **fields,
                tier_rank=tiers.index(tier) if tier in tiers else 0,
                node_labels=_frozen_map(labels),
                gpu_products=_frozen_map(products),
                tolerations=tuple(_frozen_map(t) for t in tolerations),
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

    def products(
        self, raw: Any, path: Path, models: tuple[str, ...], member: Member | None
    ) -> dict[str, tuple[str, ...]]:
        """``gpu_products``: model -> the product label value(s) of its nodes, by the model's canonical name.

        A kubernetes flavor with several models must map each: without it ``%gpu h100`` could only be pinned
        to the flavor, and the scheduler may bind it to an A100 node (issue 14). That is an error, not a
        warning: the policy would promise users a model it cannot deliver, and the fix is one line per model.
        A one-model flavor needs no map (its flavor label pins the model); a local member has no nodes.
        """
        p = path + ("gpu_products",)
        if raw is _MISSING or raw is None:
            if member is not None and member.backend == "kubernetes" and len(models) > 1:
                example = ", ".join(f"{m}: <{member.gpu_product_label} value>" for m in models)
                self.err(
                    p,
                    f"required for a kubernetes flavor that offers several models ({', '.join(models)}): the "
                    f"value(s) of node label {member.gpu_product_label} for each, e.g. {{{example}}}; "
                    "`kubectl get nodes -L " + member.gpu_product_label + "` lists them",
                )
            return {}
        if member is not None and member.backend == "local":
            self.err(p, "only for kubernetes members: a local member has no nodes to pin")
            return {}
        obj = self.mapping(raw, p, "a mapping of GPU model to product label value(s)")
        canon = {m.casefold(): m for m in models}
        out: dict[str, tuple[str, ...]] = {}
        for key, value in obj.items():
            model = canon.get(str(key).casefold())
            if model is None:
                self.err(
                    p + (str(key),), f"{key!r} is not one of this flavor's gpu_models ({', '.join(models)})"
                )
                continue
            values = value if isinstance(value, list) else [value]
            good = [
                str(v) for v in values if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v)
            ]
            bad = [v for v in values if str(v) not in good or not _LABEL_VALUE.match(str(v))]
            if not values or bad:
                self.err(
                    p + (str(key),),
                    f"expected a label value or a list of them, got {bad[0]!r}" if bad else "empty list",
                )
                continue
            out[model] = tuple(dict.fromkeys(good))
        missing = [m for m in models if m not in out]
        if out and missing and len(models) > 1:
            self.err(p, f"no value for {', '.join(missing)}: every model of the flavor needs its product")
        return out

    def labels(self, raw: Any, path: Path) -> dict[str, str]:
        obj = self.mapping(raw, path, "a mapping of label key to value")
        out = {}
        for key, value in obj.items():
            key_text = str(key)
            if not _label_key_ok(key_text):
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

    def release_section(self, top: Mapping[str, Any]) -> dict[str, Any]:
        return self.mapping(
            top.get("release"), ("release",), "a mapping with rule, min_idle, history and prestart"
        )

    def release(self, section: Mapping[str, Any]) -> ReleaseRule:
        p: Path = ("release", "prestart")
        prestart = Prestart(**self.read(Prestart, self.mapping(section.get("prestart"), p), p))
        return ReleaseRule(**self.read(ReleaseRule, section, ("release",)), prestart=prestart)

    def data_classes(self, raw: Any) -> tuple[set[str], set[str]]:
        p: Path = ("data_classes",)
        fields = self.read(DataClassSettings, self.mapping(raw, p), p)
        known = set(fields["known"])
        for i, c in enumerate(fields["keep_private"]):
            if known and c not in known:
                self.err(p + ("keep_private", i), f"{c!r} is not in data_classes.known")
        return known, set(fields["keep_private"])

    def data_class_defaults(self, raw: Any, declared: set[str]) -> tuple[DataClassDefault, ...]:
        """``data_classes.defaults``: entries of ``class`` and one of ``team``, ``namespace``, ``path``."""
        p: Path = ("data_classes", "defaults")
        value = self.mapping(raw, p[:1]).get("defaults") if isinstance(raw, Mapping) else None
        if value is None:
            return ()
        if not isinstance(value, list):
            self.err(p, f"expected a list of {{team|namespace|path: ..., class: C}}, got {_kind(value)}")
            return ()
        out = []
        for i, item in enumerate(value):
            q = p + (i,)
            obj = self.mapping(item, q, "a mapping {team|namespace|path: ..., class: C}")
            self.known_fields(obj, q, ("class", *DATA_CLASS_MATCHES))
            matches = [k for k in DATA_CLASS_MATCHES if k in obj]
            cls = self.string(obj, "class", q, required=True, hint="the data class these notebooks have")
            if len(matches) != 1:
                self.err(q, "give exactly one of team, namespace, path")
            elif cls is not None and declared and cls not in declared:
                self.err(q + ("class",), f"{cls!r} is not declared in data_classes.known or keep_private")
            elif cls is not None:
                key = matches[0]
                text = self.string(obj, key, q)
                if isinstance(text, str):
                    out.append(DataClassDefault(data_class=cls, **{key: text}))
        return tuple(out)

    def snapshot(self, raw: Any) -> SnapshotSettings:
        p: Path = ("snapshot",)
        obj = self.mapping(raw, p)
        fields = self.read(SnapshotSettings, obj, p)
        storage = self.mapping(obj.get("storage", _MISSING), p + ("storage",)) or {"kind": "local"}
        for check in storage_checks():  # the snapshot package's own check (schema.register_storage_check)
            for issue in check(storage):
                self.err(p + ("storage", *_split(issue.path)), issue.message)
        storage.setdefault("kind", "local")
        return SnapshotSettings(**fields, storage=_frozen_map(storage))

    def workspace_sync(self, raw: Any, snapshot: SnapshotSettings) -> WorkspaceSyncSettings:
        p: Path = ("workspace_sync",)
        obj = self.mapping(raw, p)
        fields = self.read(WorkspaceSyncSettings, obj, p)
        storage = self.mapping(obj.get("storage", _MISSING), p + ("storage",))
        if storage:
            if storage.get("kind") != "s3":
                self.err(p + ("storage", "kind"), "workspace_sync goes through a bucket: expected kind: s3")
            for check in storage_checks():  # the snapshot package's s3 check, as for snapshot.storage
                for issue in check(storage):
                    self.err(p + ("storage", *_split(issue.path)), issue.message)
        elif fields["enabled"] and snapshot.storage.get("kind") != "s3":
            self.err(p + ("storage",), "workspace_sync needs a bucket: storage: {kind: s3, ...}, or a "
                                       "snapshot.storage of kind s3 to share")  # fmt: skip
        return WorkspaceSyncSettings(**fields, storage=_frozen_map(storage))

    def default_request(
        self, raw: Any, flavors: Mapping[str, Flavor], tiers: list[str], known: set[str], max_gpus: int
    ) -> GpuRequest:
        p: Path = ("default_request",)
        obj = self.mapping(raw, p)
        fields = self.read(GpuRequest, obj, p, gpu_count=max_gpus)
        model, tier, data_class = fields["gpu_model"], fields["tier"], fields["data_class"]
        if model is not None:
            canon = {g.casefold(): g for f in flavors.values() for g in reversed(f.gpu_models)}
            if model.casefold() not in canon and flavors:
                self.err(
                    p + ("gpu_model",), f"no flavor offers {model!r}; models are: {', '.join(canon.values())}"
                )
            fields["gpu_model"] = canon.get(model.casefold(), model)
        if tier is not None and tier not in tiers:
            self.err(p + ("tier",), f"unknown tier {tier!r}; tiers are: {', '.join(tiers)}")
        if model is not None and tier is not None:
            self.err(p + ("tier",), "give gpu_model or tier, not both")
        if fields["upgrade"] is not None and model is None:
            self.err(p + ("upgrade",), "only with gpu_model: it says whether that model may be upgraded")
        if data_class is not None and known and data_class not in known:
            self.err(
                p + ("data_class",), f"unknown data class {data_class!r}; known: {', '.join(sorted(known))}"
            )
        return GpuRequest(**fields)


def _label_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return not (prefix and not DNS_SUBDOMAIN.match(prefix)) and bool(_LABEL_NAME.match(name))


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _split(path: str) -> tuple[str | int, ...]:
    """``credentials.path`` -> ``("credentials", "path")``; ``exclude[0]`` -> ``("exclude", 0)``."""
    out: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(out)


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
