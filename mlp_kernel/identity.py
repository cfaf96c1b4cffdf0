"""Who the kernels of a server belong to: decided by the server's own environment, never by a client.

The user name ends up in pod labels, the pod template's ``kernel_username``, the snapshot directory and the
bucket prefix, so it must not be something a client can choose. ``KERNEL_USERNAME`` / ``KERNEL_TEAM`` in a
kernel's environment are exactly that: a kernel gateway copies every ``KERNEL_*`` variable from the ``env``
of a ``POST /api/kernels`` body into the kernel's environment. The server's own environment is set by whoever
started the server (JupyterHub's spawner sets ``JUPYTERHUB_USER`` for a single-user server), so that is
where the user comes from; without a hub it is the OS account the server runs as, looked up by uid (the
``USER`` variable is as easy to set as any other). docs/admin-guide.md, "Which limits are enforced where".
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TEAM_ENV = "MLP_KERNEL_TEAM"


def os_user() -> str:
    """The name of the account this process runs as (by uid; "" when the uid has no passwd entry)."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, AttributeError):
        return ""


def server_user(environ: Mapping[str, str] | None = None) -> str:
    """The server's own user: ``JUPYTERHUB_USER`` of the server process, else its OS account."""
    environ = os.environ if environ is None else environ
    return environ.get("JUPYTERHUB_USER") or os_user()


def server_team(environ: Mapping[str, str] | None = None) -> str:
    """The server user's team, as the spawner set it in ``MLP_KERNEL_TEAM`` ("" when unknown)."""
    environ = os.environ if environ is None else environ
    return environ.get(TEAM_ENV, "")
