"""Any value at any field of a Kueue dump gives a state or one ``StateError``, never another exception.

The dump adapter is the boundary for hand-edited files; this puts everything YAML can produce (NaN, infinity,
400-digit integers, dates, lists where mappings belong and the reverse) at every field of the sample dump.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlp_kernel.placement import decide, load_policy
from mlp_kernel.placement.adapters import StateError, state_from_dumps

from .conftest import KERNELSPEC, NOW, dump
from .test_policy_fuzz import VALUES, paths, replaced

BASE = yaml.safe_load(Path(dump("private-v1beta2.yaml")).read_text())
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
POLICY = load_policy(f"{KERNELSPEC}/platform-policy.yaml")
PATHS = paths(BASE)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.sampled_from(PATHS), VALUES)
def test_any_value_at_any_field_is_a_state_or_a_state_error(
    tmp_path: Path, path: tuple[Any, ...], value: Any
) -> None:
    file = tmp_path / "private.yaml"
    file.write_text(yaml.dump(replaced(BASE, path, value), Dumper=DUMPER))  # C: the dump is ~200 KB
    try:
        state = state_from_dumps(POLICY, {"private": [file]}, now=NOW)
    except StateError as exc:
        assert file.name in str(exc) and "\n" not in str(exc)
        return
    for member in state.members.values():
        for f in member.flavors.values():
            assert f.nominal_gpus >= 0 and f.used_gpus >= 0 and f.pending >= 0
    decide(POLICY, state, POLICY.default_request, NOW)


def test_the_sample_dump_is_a_state() -> None:
    assert state_from_dumps(POLICY, {"private": [dump("private-v1beta2.yaml")]}, now=NOW)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 10**400, -1, "lots", True, [], {}])
def test_nominal_quota_that_is_not_a_count_is_an_error(tmp_path: Path, value: Any) -> None:
    cq = next(i for i, item in enumerate(BASE["items"]) if item["kind"] == "ClusterQueue")
    path = ("items", cq, "spec", "resourceGroups", 0, "flavors", 0, "resources", 2, "nominalQuota")
    file = tmp_path / "private.yaml"
    file.write_text(yaml.safe_dump(replaced(BASE, path, value)))
    with pytest.raises(StateError, match="nominalQuota"):
        state_from_dumps(POLICY, {"private": [file]}, now=NOW)
