"""Who the kernels of a server belong to: decided by the server's own environment, never by a client.

The user name ends up in pod labels, the pod template's ``kernel_username``, the snapshot directory and the
bucket prefix, so it must not be something a client can choose. ``KERNEL_USERNAME`` / ``KERNEL_TEAM`` in a
kernel's environment are exactly that: a kernel gateway copies every ``KERNEL_*`` variable from the ``env``
of a ``POST /api/kernels`` body into the kernel's environment. The server's own environment is set by whoever
started the server (JupyterHub's spawner sets ``JUPYTERHUB_USER`` for a single-user server), so that is
where the user comes from; without a hub it is the OS account the server runs as, looked up by uid (the
``USER`` variable is as easy to set as any other). docs/admin-guide.md, "Which limits are enforced where".

In order: ``JUPYTERHUB_USER`` (a hub's single-user server); where the admin trusts the server's identity
provider (``GpuAutoProvisioner.trust_request_user``: a server, or kernel gateway, that authenticates several
users itself), the user of the authenticated request that starts the kernel (``request_user``: the
``current_user`` of jupyter_server's handler, which it keeps in its ``CallContext`` for the request, never a
field of the request's body); in a Kubeflow notebook pod, the Profile namespace the pod runs in
(``kubeflow_user``); the OS account. Kubeflow's ``kubeflow-userid`` header is not used: it reaches the
server on each request, not the kernel, it names whoever of the Profile's owner and contributors sent that
request (several people share one notebook server), and a process inside the mesh can send it. The namespace
is what the server's ServiceAccount token is bound to, and so what the cluster's RBAC enforces: claiming
another one grants nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TEAM_ENV = "MLP_KERNEL_TEAM"
#: where the kubelet mounts a pod's ServiceAccount credentials (``token``, ``ca.crt``, ``namespace``)
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: another directory holding the same three files, for a runtime that mounts them elsewhere (the test
#: kubelet, which has no mount namespaces, sets it to the pod's own copy); set by whoever starts the server
SERVICE_ACCOUNT_DIR_ENV = "MLP_SERVICE_ACCOUNT_DIR"
#: written by the kubelet into every pod that mounts a ServiceAccount token
NAMESPACE_FILE = f"{SERVICE_ACCOUNT_DIR}/namespace"


def service_account_dir(environ: Mapping[str, str] | None = None) -> str:
    """The directory of this pod's ServiceAccount files: ``SERVICE_ACCOUNT_DIR``, unless overridden."""
    return (os.environ if environ is None else environ).get(SERVICE_ACCOUNT_DIR_ENV) or SERVICE_ACCOUNT_DIR


def server_namespace(path: str | None = None) -> str:
    """The namespace of the pod this server runs in ("" outside a pod, or without a ServiceAccount mount)."""
    try:
        override = os.environ.get(SERVICE_ACCOUNT_DIR_ENV)
        default = os.path.join(override, "namespace") if override else NAMESPACE_FILE
        with open(path or default, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def kubeflow_user(environ: Mapping[str, str], namespace: str) -> str:
    """In a Kubeflow notebook pod (the notebook controller sets ``NB_PREFIX=/notebook/<ns>/<name>``), the
    Profile namespace it runs in; "" elsewhere. Only the mounted namespace is trusted: ``NB_PREFIX`` merely
    says the pod is a Kubeflow notebook, and must agree with it."""
    prefix = environ.get("NB_PREFIX", "")
    return namespace if namespace and prefix.startswith(f"/notebook/{namespace}/") else ""


def os_user() -> str:
    """The name of the account this process runs as (by uid; "" when the uid has no passwd entry)."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, AttributeError):
        return ""


def request_user() -> str:
    """The authenticated user of the jupyter_server request running now ("" outside one, or anonymous)."""
    try:
        from jupyter_server.base.call_context import CallContext
    except ImportError:
        return ""
    handler = CallContext.get(CallContext.JUPYTER_HANDLER)
    user = getattr(handler, "current_user", None)
    return str(getattr(user, "username", "") or "")


def server_user(
    environ: Mapping[str, str] | None = None, namespace: str | None = None, trust_request: bool = False
) -> str:
    """The server's own user: ``JUPYTERHUB_USER`` of the server process, else (``trust_request``) the
    authenticated request's user, else the Kubeflow Profile namespace, else its OS account."""
    environ = os.environ if environ is None else environ
    return (
        environ.get("JUPYTERHUB_USER")
        or (request_user() if trust_request else "")
        or kubeflow_user(environ, server_namespace() if namespace is None else namespace)
        or os_user()
    )


def server_team(environ: Mapping[str, str] | None = None) -> str:
    """The server user's team, as the spawner set it in ``MLP_KERNEL_TEAM`` ("" when unknown)."""
    environ = os.environ if environ is None else environ
    return environ.get(TEAM_ENV, "")
