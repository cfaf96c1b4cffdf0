"""Who may save: admin users, admin groups, and where groups come from (docs/rest-api.md)."""

from __future__ import annotations

from typing import Any

import pytest
from jupyter_server.auth.identity import User

from mlp_kernel.server.admin import GROUPS_ENV, AdminRule, load_callable


def groups_of(user: Any) -> list[str]:
    return {"carol": ["gpu-admins"], "dave": ["students"]}.get(user.username, [])


def rule(users: tuple[str, ...] = (), groups: tuple[str, ...] = (), callable_: Any = None) -> AdminRule:
    return AdminRule(frozenset(users), frozenset(groups), load_callable(callable_))


def test_listed_user_is_admin_and_others_are_not() -> None:
    r = rule(users=("alice",))
    assert r.is_admin(User(username="alice"))
    assert not r.is_admin(User(username="bob"))
    assert "admin_users" in r.why_not(User(username="bob"))


def test_nobody_is_admin_when_nothing_is_configured() -> None:
    r = rule()
    assert not r.is_admin(User(username="alice"))
    assert "no mlp-kernel admins are configured" in r.why_not(User(username="alice"))


def test_groups_from_a_configured_import_string() -> None:
    r = rule(groups=("gpu-admins",), callable_="tests.server.test_admin_rule:groups_of")
    assert r.is_admin(User(username="carol"))
    assert not r.is_admin(User(username="dave"))


def test_groups_from_the_identity_when_it_carries_them() -> None:
    user = User(username="erin")
    user.groups = ["gpu-admins"]  # type: ignore[attr-defined]
    assert rule(groups=("gpu-admins",)).is_admin(user)


def test_groups_from_the_environment_for_single_user_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "frank")
    monkeypatch.setenv(GROUPS_ENV, "staff, gpu-admins")
    assert rule(groups=("gpu-admins",)).is_admin(User(username="frank"))
    monkeypatch.setenv(GROUPS_ENV, "staff")
    assert not rule(groups=("gpu-admins",)).is_admin(User(username="frank"))


def test_the_owners_groups_in_the_environment_are_not_everyones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_USER", "frank")
    monkeypatch.setenv(GROUPS_ENV, "gpu-admins")
    assert not rule(groups=("gpu-admins",)).is_admin(User(username="mallory"))
    monkeypatch.delenv("JUPYTERHUB_USER")  # no hub: the variable names nobody's groups
    assert not rule(groups=("gpu-admins",)).is_admin(User(username="frank"))


def test_a_malformed_groups_setting_is_an_error_not_silence() -> None:
    with pytest.raises(ValueError, match="package.module:function"):
        load_callable("tests.server.test_admin_rule.groups_of")
