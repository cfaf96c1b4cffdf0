"""Any policy, however wrong, is a ``PolicyError`` listing problems, never another exception (hypothesis).

Admins hand-edit policies and the admin page sends whatever is typed; the loader is the boundary. Values are
drawn from everything YAML can produce (NaN, infinity, 400-digit integers, dates, nested lists and mappings)
and placed at every field of a valid policy, so a type the checker forgot shows up as a traceback here.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlp_kernel.placement import PolicyError, parse_policy

from ..hostile_values import scalars
from .conftest import KERNELSPEC

BASE = yaml.safe_load(open(f"{KERNELSPEC}/platform-policy.yaml", encoding="utf-8"))

SCALARS = st.one_of(scalars("15m", "2Gi", ".inf", "0"), st.dates(), st.datetimes())
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths(v, prefix + (i,))
    return out


PATHS = paths(BASE)


def replaced(base: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``base`` with ``value`` at ``path``."""
    doc = copy.deepcopy(base)  # (a YAML round trip in pure Python took ~0.3 s per example of the dump fuzz)
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


def check(doc: Any) -> None:
    try:
        policy = parse_policy(doc)
    except PolicyError as exc:
        assert exc.errors and all(str(e) for e in exc.errors)
        return
    for f in policy.flavors.values():
        assert math.isfinite(f.price_per_gpu_hour)
    assert 0 < policy.idle_timeout_s <= 30 * 86400 and 0 < policy.launch_timeout_s <= 30 * 86400


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), VALUES)
def test_any_value_at_any_field_is_a_policy_or_a_policy_error(path: tuple[Any, ...], value: Any) -> None:
    check(replaced(BASE, path, value))


@settings(max_examples=200, deadline=None)
@given(VALUES)
def test_any_document_is_a_policy_or_a_policy_error(value: Any) -> None:
    check(value)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abc:-[]{}&*!|>'\"\n #0123456789.", max_size=200))
def test_any_text_is_a_policy_or_a_policy_error(text: str) -> None:
    check(text)


def test_dates_and_times_are_type_errors_not_crashes() -> None:
    for value in (dt.date(2026, 1, 1), dt.datetime(2026, 1, 1)):
        check(replaced(BASE, ("idle_timeout",), value))
