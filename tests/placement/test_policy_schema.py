"""The policy schema declared once: the loader, the defaults and the doc all come from the field declarations;
one issue type; one parser each for quantities and deadlines; placement imports nothing outward."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from typing import Any

import pytest
import yaml

from mlp_kernel.placement import PolicyError, parse_policy
from mlp_kernel.placement.policy import BurstSettings, Flavor, Member, Policy, SnapshotSettings
from mlp_kernel.placement.policy_doc import section_types
from mlp_kernel.placement.release import ReleaseRule
from mlp_kernel.placement.schema import default_of, keys, spec_of, specs
from mlp_kernel.placement.types import GpuRequest
from mlp_kernel.placement.units import parse_deadline, parse_quantity
from mlp_kernel.validation import Issue

from .conftest import NOW, ROOT

MINIMAL: dict[str, Any] = {
    "members": {"m": {"backend": "local"}},
    "flavors": {
        "f": {"member": "m", "tier": "t", "gpu_models": ["X"], "price_per_gpu_hour": 0, "capacity_gpus": 1}
    },
}
# Where each section lives in a policy, so a test can put a value into any declared field.
WHERE: dict[type, tuple[str, ...]] = {
    Policy: (),
    Member: ("members", "m"),
    Flavor: ("flavors", "f"),
    BurstSettings: ("burst",),
    ReleaseRule: ("release",),
    SnapshotSettings: ("snapshot",),
    GpuRequest: ("default_request",),
}


def with_value(cls: type, key: str, value: Any) -> dict[str, Any]:
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    node = data
    for part in WHERE[cls]:
        node = node.setdefault(part, {})
    node[key] = value
    return data


def errors(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(data)
    return {i.path: i.message for i in info.value.errors}


def test_a_minimal_policy_gets_every_declared_default() -> None:
    policy = parse_policy(MINIMAL)
    values = {
        Policy: policy,
        Member: policy.members["m"],
        Flavor: policy.flavors["f"],
        BurstSettings: policy.burst,
        ReleaseRule: policy.release,
        SnapshotSettings: policy.snapshot,
        GpuRequest: policy.default_request,
    }
    given = {Member: set(MINIMAL["members"]["m"]), Flavor: set(MINIMAL["flavors"]["f"])}
    checked = 0
    for cls, obj in values.items():
        for f, spec in specs(cls):
            if spec.kind == "custom" or spec.key in given.get(cls, ()):
                continue
            assert getattr(obj, f.name) == default_of(f), (cls.__name__, spec.key)
            checked += 1
    assert checked >= 25


def test_member_health_defaults_to_karmada_when_there_is_a_cluster_to_ask() -> None:
    """The declared default in words (it disagreed with the dataclass default before)."""
    assert "karmada` when `karmada_cluster` is set" in spec_of(Member, "health").default_doc
    data = with_value(Member, "karmada_cluster", "aws")
    assert parse_policy(data).members["m"].health == "karmada"
    assert parse_policy(MINIMAL).members["m"].health == "static"
    data = with_value(Member, "health", "karmada")
    assert "needs karmada_cluster" in errors(data)["members.m.health"]


@pytest.mark.parametrize("cls", list(WHERE), ids=lambda c: c.__name__)
def test_every_section_refuses_a_key_it_does_not_declare_and_names_the_ones_it_does(cls: type) -> None:
    data = with_value(cls, "no_such_field", 1)
    path = ".".join((*WHERE[cls], "no_such_field"))
    assert errors(data)[path] == f"unknown field; expected one of: {', '.join(keys(cls))}"


BOUNDED = [
    (cls, spec.key, spec.maximum)
    for cls in WHERE
    for _, spec in specs(cls)
    if spec.kind in ("number", "integer") and spec.maximum is not None
]


@pytest.mark.parametrize(("cls", "key", "maximum"), BOUNDED, ids=[b[1] for b in BOUNDED])
def test_each_declared_range_is_what_the_loader_enforces(cls: type, key: str, maximum: float) -> None:
    path = ".".join((*WHERE[cls], key))
    assert path in errors(with_value(cls, key, int(maximum) + 1))
    if key != "capacity_gpus":  # a local flavor's capacity may be anything in range
        parse_policy(with_value(cls, key, int(maximum)))


@pytest.mark.parametrize(
    ("cls", "key"), [(c, s.key) for c in WHERE for _, s in specs(c) if s.kind == "choice"]
)
def test_each_declared_choice_is_what_the_loader_enforces(cls: type, key: str) -> None:
    spec = spec_of(cls, key)
    path = ".".join((*WHERE[cls], key))
    assert errors(with_value(cls, key, "nonsense"))[path].startswith(f"expected {' or '.join(spec.choices)}")


def test_every_section_of_the_file_is_declared() -> None:
    assert set(keys(Policy)) >= {"members", "flavors", "burst", "release", "snapshot", "default_request"}
    assert set(section_types().values()) >= set(WHERE)


def test_policy_issues_are_the_shared_issue_type_with_path_line_and_severity() -> None:
    text = textwrap.dedent("""\
        members:
          m: {backend: local}
        flavors:
          f: {member: m, tier: t, gpu_models: [X], price_per_gpu_hour: lots, capacity_gpus: 1}
        """)
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    (issue,) = info.value.errors
    assert type(issue) is Issue and issue.severity == "error"
    assert (issue.path, issue.line) == ("flavors.f.price_per_gpu_hour", 4)
    assert str(issue) == "flavors.f.price_per_gpu_hour: expected a number, got a string ('lots') (line 4)"
    assert issue.to_json() == {
        "message": "expected a number, got a string ('lots')",
        "line": 4,
        "field": "flavors.f.price_per_gpu_hour",
        "severity": "error",
    }


def test_server_validation_passes_the_checkers_issues_through() -> None:
    from mlp_kernel.server.validation import validate

    policy = validate("policy", "members: 3\n", "policy.yaml")
    template = validate("pod_template", "{{ nope }}\n")
    assert policy and template and all(type(i) is Issue or isinstance(i, Issue) for i in policy + template)
    assert policy[0].path == "members" and policy[0].line == 1
    assert "unknown variable 'nope'" in template[0].message and template[0].line == 1


S3_POLICY = {**MINIMAL, "snapshot": {"storage": {"kind": "s3", "bucket": "snaps"}}}
SECRET_POLICY = {
    **MINIMAL,
    "snapshot": {"storage": {"kind": "s3", "bucket": "snaps", "secret_access_key": "abc123SECRET"}},
}


def test_the_storage_check_moved_to_snapshot_still_refuses_a_secret_from_every_loader(tmp_path: Any) -> None:
    from mlp_kernel.server.validation import validate

    text = yaml.safe_dump(SECRET_POLICY)
    (issue,) = [i for i in validate("policy", text, "policy.yaml") if "secret" in i.message]
    assert issue.path == "snapshot.storage.secret_access_key" and "abc123SECRET" not in issue.message
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    code = f"from mlp_kernel.cli import main; raise SystemExit(main(['place', '--policy', {str(path)!r}]))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "snapshot.storage.secret_access_key" in proc.stderr, proc.stderr
    assert "abc123SECRET" not in proc.stderr


def test_placement_imports_nothing_outward_even_loading_every_section() -> None:
    """Before, loading a policy with s3 storage imported mlp_kernel.snapshot (a package cycle)."""
    code = (
        "import sys, json, mlp_kernel.placement.decider, mlp_kernel.placement.policy_doc, "
        "mlp_kernel.placement.adapters\n"
        "from mlp_kernel.placement import parse_policy\n"
        f"parse_policy(json.loads({json.dumps(json.dumps(S3_POLICY))}))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[:2] in (['mlp_kernel', 'snapshot'], "
        "['mlp_kernel', 'backends'], ['mlp_kernel', 'gateway'], ['mlp_kernel', 'server']))\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize(
    ("text", "value"),
    [("4", 4.0), ("500m", 0.5), ("16Gi", 16 * 2**30), ("1e3", 1000.0), ("+2", 2.0), (8, 8.0), (".5", 0.5)],
)
def test_parse_quantity_reads_the_api_servers_grammar(text: Any, value: float) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["lots", "-1", "1.5.5", True, float("nan"), "9" * 400, "1e99", "", "16 Gi"])
def test_parse_quantity_refuses_anything_else(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_the_policy_and_the_place_flags_accept_the_same_quantities() -> None:
    from mlp_kernel.cli.place import UsageError, build_request

    for text in ("1e3", "lots"):
        data = with_value(GpuRequest, "cpu", text)
        args = type("Args", (), {"gpu": None, "tier": None, "count": None, "cpu": text, "memory": None,
                                 "burstable": None, "budget": None, "deadline": None, "data_class": None,
                                 "waited": None})()  # fmt: skip
        try:
            parse_policy(data)
            policy_ok = True
        except PolicyError:
            policy_ok = False
        try:
            build_request(parse_policy(MINIMAL), args, NOW)  # type: ignore[arg-type]
            flag_ok = True
        except UsageError:
            flag_ok = False
        assert policy_ok == flag_ok == (text == "1e3"), text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+2h", NOW + timedelta(hours=2)),
        ("2026-12-01T18:00", NOW.replace(month=12, day=1, hour=18)),
        ("2026-12-01T18:00Z", NOW.replace(month=12, day=1, hour=18)),
        ("none", None),
    ],
)
def test_parse_deadline_one_rule(text: str, expected: Any) -> None:
    assert parse_deadline(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("tomorrow", "not an ISO 8601 time"),
        ("+0", "after now"),
        ("+31d", "at most 30 d ahead"),
        ("2026-11-28T11:59", "is in the past"),
        ("9999-12-31T23:59", "is too far ahead"),
        ("+nan", "invalid duration"),
    ],
)
def test_magic_and_cli_refuse_the_same_deadlines_with_the_same_words(text: str, words: str) -> None:
    from mlp_kernel.gateway.magic import MagicError, parse_magics

    with pytest.raises(ValueError, match=words):
        parse_deadline(text, NOW)
    with pytest.raises(MagicError, match=words):
        parse_magics([f"%gpu deadline={text}"], parse_policy(MINIMAL), NOW)
    policy = os.path.join(ROOT, "kernelspecs", "gpu-auto", "policy.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "mlp_kernel.cli", "place", "--policy", policy, "--now", NOW.isoformat(),
         "--deadline", text],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2 and words in proc.stderr and "--deadline" in proc.stderr, proc.stderr
