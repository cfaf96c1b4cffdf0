"""A test identity provider: the user named by the ``X-Mlp-Test-User`` header, once the token checks out.

Real deployments get the username from JupyterHub or a Kubeflow ``kubeflow-userid`` identity provider; tests
need two distinct users (an admin and a non-admin) on one server, which the default token identity (a random
anonymous user per login) cannot give. Authentication itself stays jupyter_server's: no valid token or
cookie, no user. ``X-Mlp-Test-Groups`` (comma-separated) gives the user a ``groups`` attribute, as identity
providers that know groups (a JupyterHub-aware one) do.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User

HEADER = "X-Mlp-Test-User"
GROUPS_HEADER = "X-Mlp-Test-Groups"


class HeaderIdentityProvider(IdentityProvider):
    async def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        user = await super().get_user(handler)  # type: ignore[misc]
        name = handler.request.headers.get(HEADER) or handler.get_cookie("mlp_test_user")
        if user is None or not name:
            return user
        found = User(username=name, name=name, display_name=name)
        groups = handler.request.headers.get(GROUPS_HEADER)
        if groups:
            found.groups = [g.strip() for g in groups.split(",") if g.strip()]  # type: ignore[attr-defined]
        return found
