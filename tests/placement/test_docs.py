"""docs/policy.md is generated from the fields the loader accepts, and docs/placement.md names every rule."""

from __future__ import annotations

import os
import re

import pytest

from mlp_kernel.placement import policy_doc, schema

from .conftest import ROOT

POLICY_DOC = os.path.join(ROOT, "docs", "policy.md")
PLACEMENT_DOC = os.path.join(ROOT, "docs", "placement.md")


def test_docs_policy_md_tables_are_generated_from_the_declarations() -> None:
    text = open(POLICY_DOC, encoding="utf-8").read()
    assert policy_doc.render(text) == text, (
        "docs/policy.md is stale: python -m mlp_kernel.placement.policy_doc --write"
    )


@pytest.mark.parametrize("section", sorted(policy_doc.section_types()))
def test_every_accepted_field_has_a_row_in_docs_policy_md(section: str) -> None:
    text = open(POLICY_DOC, encoding="utf-8").read()
    documented = set(re.findall(r"^\| `([a-z_]+)`", text, flags=re.MULTILINE))
    missing = [f for f in schema.keys(policy_doc.section_types()[section]) if f not in documented]
    assert not missing, f"fields without a row in docs/policy.md: {missing}"


def test_every_rule_name_is_documented() -> None:
    text = open(PLACEMENT_DOC, encoding="utf-8").read()
    for rule in ("candidates", "member_health", "private_first", "expected_wait", "burst", "public_only"):
        assert f"**`{rule}`**" in text, rule
