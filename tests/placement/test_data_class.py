"""The data class the admin sets (``data_classes.defaults``) and the user may only make stricter.

Checked where it is enforced: the pure rule, placement deciding with the class the gateway's request state
gives (a queued private-only notebook never bursts), and the gateway's request state refusing ``%gpu
data=public`` with a message that names the admin's class and why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlp_kernel.gateway.config import GatewayConfig
from mlp_kernel.gateway.errors import GpuMagicError
from mlp_kernel.gateway.magic import parse_magics
from mlp_kernel.gateway.requests import RequestState
from mlp_kernel.placement import PolicyError, parse_policy
from mlp_kernel.placement.data_class import DataClassRefused, Notebook, admin_data_class, effective_data_class

POLICY = """
version: 1
tiers: [silver]
data_classes:
  known: [public, internal, sensitive, secret]
  keep_private: [sensitive, secret]
  defaults:
    - {team: vision, class: internal}
    - {team: finance, class: sensitive}
    - {namespace: kubeflow-clinic, class: secret}
    - {path: "clinical/*", class: sensitive}
members:
  private: {backend: local}
flavors:
  silver: {member: private, tier: silver, gpu_models: [V100], capacity_gpus: 1, price_per_gpu_hour: 0}
"""


def test_the_admins_class_and_the_stricter_only_rule() -> None:
    p = parse_policy(POLICY)
    assert admin_data_class(p, Notebook(team="other")) is None
    assert effective_data_class(p, Notebook(team="other"), "public") == "public"  # nothing set: the user's
    assert effective_data_class(p, Notebook(team="finance"), None) == "sensitive"  # unasked: the admin's
    assert effective_data_class(p, Notebook(team="finance"), "secret") == "secret"  # stricter: accepted
    assert effective_data_class(p, Notebook(team="vision"), "public") == "public"  # may leave either way
    # a private-only class wins over one that may leave, whatever the order
    assert admin_data_class(p, Notebook(team="vision", path="clinical/a.ipynb")).data_class == "sensitive"
    assert effective_data_class(p, Notebook(namespace="kubeflow-clinic"), None) == "secret"
    with pytest.raises(DataClassRefused) as err:
        effective_data_class(p, Notebook(team="finance"), "public")
    message = str(err.value)
    assert "'sensitive' for team 'finance'" in message and "must stay private" in message
    assert "only be made stricter" in message
    with pytest.raises(DataClassRefused, match="for notebooks under 'clinical/\\*'"):
        effective_data_class(p, Notebook(path="clinical/trial.ipynb"), "internal")


@pytest.mark.parametrize(
    "entry, message",
    [
        ("{team: a, path: b, class: sensitive}", "exactly one of team, namespace, path"),
        ("{class: sensitive}", "exactly one of team, namespace, path"),
        ("{team: a, class: typo}", "'typo' is not declared"),
        ("{team: a}", "required"),
        ("{user: a, class: public}", "unknown field"),
    ],
)
def test_bad_defaults_are_refused_at_load(entry: str, message: str) -> None:
    text = POLICY.replace("    - {team: vision, class: internal}", f"    - {entry}")
    with pytest.raises(PolicyError) as err:
        parse_policy(text)
    assert message in str(err.value) and "data_classes.defaults[0]" in str(err.value)


def _requests(tmp_path: Path, team: str, notebook: str = "") -> RequestState:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return RequestState(
        GatewayConfig(kernel_id="k", policy=str(path), user="alice", team=team, notebook=notebook)
    )


def test_the_gateway_refuses_a_weaker_class_and_asks_with_the_admins(tmp_path: Path) -> None:
    requests = _requests(tmp_path, "finance")
    assert requests.current().data_class == "sensitive"
    cmd = parse_magics(["%gpu data=public"], requests.policy_view())
    with pytest.raises(GpuMagicError) as err:
        requests.admit(cmd.request)
    assert "admin set its data class to 'sensitive' for team 'finance'" in str(err.value)
    requests.admit(parse_magics(["%gpu data=secret"], requests.policy_view()).request)
    requests.update({"data_class": "secret"})
    assert requests.current().data_class == "secret"
    # even if an override got past admit (a kernelspec default, an older state), the request stays private
    requests.update({"data_class": "public"})
    assert requests.current().data_class == "sensitive"
    assert not requests.policy_view().may_leave_private(requests.current().data_class)

    other = _requests(tmp_path, "", notebook="clinical/trial.ipynb")
    assert other.current().data_class == "sensitive"
    free = _requests(tmp_path, "")
    free.admit(parse_magics(["%gpu data=public"], free.policy_view()).request)
    assert free.current().data_class is None
