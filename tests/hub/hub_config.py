"""The test hub's configuration: the admin sample (docs/samples/jupyterhub) plus what only a test hub needs.

tests/hub/conftest.py starts ``jupyterhub -f`` this file with ``MLP_HUB_DIR`` (a temporary directory: the
hub's database and cookie secret, the users' homes and Jupyter directories, the shared read-only kernelspec
path), ``MLP_HUB_PORT`` / ``MLP_HUB_API_PORT`` / ``MLP_PROXY_API_PORT`` (free ports, so two runs never meet)
``MLP_HUB_SERVICE_TOKEN`` (the test's own API token) and ``MLP_HUB_PROXY`` (configurable-http-proxy).

- Authentication: NativeAuthenticator (jupyterhub-nativeauthenticator, PyPI): each user signs up with a
  password of their own, stored bcrypt-hashed in the hub's database, so bob cannot log in as alice. The
  alternatives here were worse: PAM needs OS accounts and root-owned passwords on the test machine, and
  JupyterHub's DummyAuthenticator and SharedPasswordAuthenticator let anyone with the one password log in as
  any user, which would make "bob cannot reach alice's kernel" a statement about nothing.
- Spawner: SimpleLocalProcessSpawner, single-user servers as local processes of this (CPU-only)
  machine, each with ``JUPYTERHUB_USER`` in its environment; homes and Jupyter directories per user under
  ``MLP_HUB_DIR``.
- Groups: ``team-vision`` (alice), ``team-nlp`` (bob); carol is in both, which the sample's hook refuses.
"""

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASE = Path(os.environ["MLP_HUB_DIR"])
VENV_BIN = Path(sys.executable).parent

load_subconfig(str(REPO / "docs" / "samples" / "jupyterhub" / "jupyterhub_config.py"))  # noqa: F821
c = get_config()  # noqa: F821

c.JupyterHub.bind_url = f"http://127.0.0.1:{os.environ['MLP_HUB_PORT']}/"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{os.environ['MLP_HUB_API_PORT']}"
c.JupyterHub.db_url = f"sqlite:///{BASE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(BASE / "jupyterhub_cookie_secret")
c.JupyterHub.cleanup_servers = True  # stopping the hub stops the single-user servers (and their kernels)
c.ConfigurableHTTPProxy.command = [os.environ["MLP_HUB_PROXY"]]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['MLP_PROXY_API_PORT']}"

c.JupyterHub.authenticator_class = "native"
c.NativeAuthenticator.open_signup = False
c.Authenticator.allowed_users = {"alice", "bob", "carol"}  # pre-authorised: their sign-up needs no admin
c.JupyterHub.load_groups = {
    "team-vision": {"users": ["alice", "carol"]},
    "team-nlp": {"users": ["bob", "carol"]},
}
# The test's own client: creates API tokens for the users and spawns carol's server (a service, not a user).
c.JupyterHub.services = [{"name": "mlp-test", "api_token": os.environ["MLP_HUB_SERVICE_TOKEN"]}]
c.JupyterHub.load_roles = [
    {
        "name": "mlp-test",
        "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users"],
        "services": ["mlp-test"],
    }
]

c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = str(BASE / "home" / "{username}")
c.Spawner.cmd = [str(VENV_BIN / "jupyterhub-singleuser")]
c.Spawner.args = ["--ServerApp.allow_root=True"]  # the tests run as root (the real plane's tests need it)
c.Spawner.start_timeout = 120  # two shared cores under a loaded suite
c.Spawner.http_timeout = 120


def _user_dir(kind: str):
    return lambda spawner: str(BASE / "users" / spawner.user.name / kind)


c.Spawner.environment = {
    # The GPU (auto) kernelspec, as a single-user image would have it, on a path shared by every user.
    "JUPYTER_PATH": str(BASE / "jupyter"),
    "JUPYTER_CONFIG_DIR": _user_dir("config"),
    "JUPYTER_DATA_DIR": _user_dir("data"),
    "JUPYTER_RUNTIME_DIR": _user_dir("runtime"),
    "IPYTHONDIR": _user_dir("ipython"),
    "JUPYTER_PLATFORM_DIRS": "1",
}


def _filled(template: str):
    return lambda spawner: template.replace("{username}", spawner.user.name)


# More variables from the test (MLP_HUB_USER_ENV), e.g. each user's own kubeconfig on the real control plane.
for _name, _template in json.loads(os.environ.get("MLP_HUB_USER_ENV") or "{}").items():
    c.Spawner.environment[_name] = _filled(_template)
