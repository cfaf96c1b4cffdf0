"""Who is an admin of mlp-kernel: the rule the server enforces before any save or rollback.

A save needs both:

1. jupyter_server's own authorizer allows ``write`` on resource ``mlp_kernel`` (JupyterHub scopes or any
   custom ``Authorizer`` keep working), and
2. the user is an mlp-kernel admin: ``User.username`` is in ``MlpKernelExtension.admin_users``, or one of the
   user's groups is in ``MlpKernelExtension.admin_groups``.

jupyter_server's ``User`` has no groups, so groups come from, in order: the configurable
``MlpKernelExtension.user_groups`` callable (``user -> list[str]``, or an import string ``"pkg.mod:func"``);
a ``groups`` attribute on the identity's user object (identity providers that carry one, such as a
JupyterHub-aware provider); the ``MLP_KERNEL_USER_GROUPS`` environment variable (comma-separated, for a
single-user server whose spawner knows its owner's groups). With no admin configured, nobody may save.

The environment variable describes the server's *owner*, so it applies only to the identity whose name is
the server's own user (``JUPYTERHUB_USER``): a single-user server can be reached by other identities too
(JupyterHub admins, users a server is shared with, any identity of a custom provider), and before this
rule every one of them inherited the owner's groups, so setting the variable made everybody an admin.

The admin's **team** (``team_of``, the ``team`` of an admin change's audit record and its Prometheus label)
is found as the kernels' is (``identity.server_team``): the server owner's ``MLP_KERNEL_TEAM``, which the
hub's spawn hook sets from the owner's ``team-`` group, for the owner (``JUPYTERHUB_USER``; without a hub the
server serves one user, and its kernels carry that team whoever starts them); for any other identity, its one
group named ``team_group_prefix`` + team (the hub's groups, as ``groups_of`` finds them). Several team groups
name no team: a change is never billed to a team picked at random.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..identity import server_team

GROUPS_ENV = "MLP_KERNEL_USER_GROUPS"
TEAM_GROUP_PREFIX = (
    "team-"  # as docs/samples/jupyterhub/jupyterhub_config.py's spawn hook reads the hub's groups
)


def load_callable(spec: Any) -> Callable[[Any], Iterable[str]] | None:
    """A callable from a callable or a ``"pkg.module:function"`` string (``None``/empty means none)."""
    if not spec:
        return None
    if callable(spec):
        return spec
    module, _, attr = str(spec).partition(":")
    if not attr:
        raise ValueError(f"user_groups {spec!r}: expected 'package.module:function'")
    func = getattr(importlib.import_module(module), attr)
    if not callable(func):
        raise ValueError(f"user_groups {spec!r} is not callable")
    return func


@dataclass(frozen=True)
class AdminRule:
    admin_users: frozenset[str]
    admin_groups: frozenset[str]
    user_groups: Callable[[Any], Iterable[str]] | None = None
    team_group_prefix: str = TEAM_GROUP_PREFIX

    def groups_of(self, user: Any) -> set[str]:
        if self.user_groups is not None:
            return {str(g) for g in (self.user_groups(user) or ())}
        groups = getattr(user, "groups", None)
        if groups:
            return {str(g) for g in groups}
        if getattr(user, "username", None) != os.environ.get("JUPYTERHUB_USER"):
            return set()  # the variable names the owner's groups, not those of whoever is asking
        env = os.environ.get(GROUPS_ENV, "")
        return {g.strip() for g in env.split(",") if g.strip()}

    def team_of(self, user: Any) -> str:
        """The team an admin change by ``user`` is counted for ("" when none, or several, are known)."""
        if user is None:
            return ""
        owner = os.environ.get("JUPYTERHUB_USER")
        if (owner is None or getattr(user, "username", None) == owner) and server_team():
            return server_team()
        prefix = self.team_group_prefix
        teams = {g[len(prefix) :] for g in self.groups_of(user) if prefix and g.startswith(prefix)}
        return teams.pop() if len(teams) == 1 else ""

    def is_admin(self, user: Any) -> bool:
        if user is None:
            return False
        if getattr(user, "username", None) in self.admin_users:
            return True
        return bool(self.admin_groups and self.groups_of(user) & self.admin_groups)

    def why_not(self, user: Any) -> str:
        name = getattr(user, "username", "?")
        if not self.admin_users and not self.admin_groups:
            return (
                "no mlp-kernel admins are configured; set MlpKernelExtension.admin_users or "
                "MlpKernelExtension.admin_groups in the server config"
            )
        return (
            f"user {name!r} is not in MlpKernelExtension.admin_users and none of its groups is in "
            "MlpKernelExtension.admin_groups"
        )
