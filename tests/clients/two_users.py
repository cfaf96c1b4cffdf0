"""A jupyter_server identity provider that authenticates two users by token, as a multi-user server or a
kernel gateway behind an authenticating proxy does (``test_identity.py``). Test-only: tokens in the source."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User

USERS = {"alice-token": "alice", "bob-token": "bob"}


class TwoUsers(IdentityProvider):  # type: ignore[misc]
    async def get_user_token(self, handler: Any) -> User | None:
        name = USERS.get(self.get_token(handler) or "")
        return User(username=name) if name else None

    def is_token_authenticated(self, handler: Any) -> bool:  # API calls with the header skip the XSRF check
        return True
