"""docs/policy.md documents every field the loader accepts, and docs/placement.md every rule decide emits."""

from __future__ import annotations

import os
import re

import pytest

from mlp_kernel.placement import policy_load

from .conftest import ROOT

POLICY_DOC = os.path.join(ROOT, "docs", "policy.md")
PLACEMENT_DOC = os.path.join(ROOT, "docs", "placement.md")

SECTIONS = {
    "TOP_FIELDS": policy_load.TOP_FIELDS,
    "MEMBER_FIELDS": policy_load.MEMBER_FIELDS,
    "FLAVOR_FIELDS": policy_load.FLAVOR_FIELDS,
    "BURST_FIELDS": policy_load.BURST_FIELDS,
    "DATA_CLASS_FIELDS": policy_load.DATA_CLASS_FIELDS,
    "REQUEST_FIELDS": policy_load.REQUEST_FIELDS,
    "SNAPSHOT_FIELDS": policy_load.SNAPSHOT_FIELDS,
    "RELEASE_FIELDS": policy_load.RELEASE_FIELDS,
}


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_policy_field_has_a_row_in_docs_policy_md(section: str) -> None:
    text = open(POLICY_DOC, encoding="utf-8").read()
    documented = set(re.findall(r"^\| `([a-z_]+)`", text, flags=re.MULTILINE))
    documented |= {
        f for row in re.findall(r"^\| `([a-z_]+)`, `([a-z_]+)`", text, flags=re.MULTILINE) for f in row
    }
    missing = [f for f in SECTIONS[section] if f not in documented]
    assert not missing, f"fields without a row in docs/policy.md: {missing}"


def test_every_rule_name_is_documented() -> None:
    text = open(PLACEMENT_DOC, encoding="utf-8").read()
    for rule in ("candidates", "member_health", "private_first", "expected_wait", "burst", "public_only"):
        assert f"**`{rule}`**" in text, rule
