"""The test hub with KubeSpawner on the real control plane: hub_config.py, then the KubeSpawner sample.

tests/cluster/test_hub_kubespawner_real.py starts ``jupyterhub -f`` this file (``run_hub(config=...)``) with
the variables hub_config.py reads, plus ``KUBECONFIG`` (a token of the sample's ``jupyterhub/hub``
ServiceAccount: KubeSpawner outside a pod falls back from in-cluster config to the kubeconfig) and
``MLP_HUB_REPO`` (the checkout the single-user servers import mlp_kernel from). What the sample
(docs/samples/jupyterhub/kubespawner_config.py) says is used as it is; only what the test plane cannot
honour is changed here:

- the image: the process kubelet (tests/cluster/kubelet.py) ignores it and runs the container's command as
  a local process, so the command is this venv's ``jupyterhub-singleuser`` by path, with what a single-user
  image would have in its environment (the GPU (auto) kernelspec on a shared ``JUPYTER_PATH``, from
  hub_config.py; ``PYTHONPATH`` for this checkout);
- the port: every pod's IP is 127.0.0.1 on that kubelet, so two servers on KubeSpawner's fixed 8888 would
  collide; each user's server gets the port the test picked for it (``MLP_HUB_SERVER_PORTS``, JSON);
- the notebook directory: the home under ``MLP_HUB_DIR`` that the test writes notebooks into (a real
  deployment mounts a volume at the image's home instead; PVCs stay off, as in the sample).
"""

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BASE = Path(os.environ["MLP_HUB_DIR"])
VENV_BIN = Path(sys.executable).parent

load_subconfig(str(HERE / "hub_config.py"))  # noqa: F821
load_subconfig(str(REPO / "docs" / "samples" / "jupyterhub" / "kubespawner_config.py"))  # noqa: F821
c = get_config()  # noqa: F821

c.KubeSpawner.cmd = [str(VENV_BIN / "jupyterhub-singleuser")]
c.KubeSpawner.environment = {
    **c.Spawner.environment,
    "PYTHONPATH": os.environ.get("MLP_HUB_REPO", str(REPO)),
    "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
}
c.Spawner.notebook_dir = str(BASE / "home" / "{username}")
c.KubeSpawner.ip = "127.0.0.1"  # the pods share the host's network here: not on every interface
# The hub's API answers a spawn request at once (202) instead of waiting up to 10 s for the server: the test
# starts bob's server that way and goes on with alice's login; it waits for the pods itself.
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}


_sample_hook = c.Spawner.pre_spawn_hook
_ports = json.loads(os.environ["MLP_HUB_SERVER_PORTS"])  # user -> port, picked by the test


def _own_port(spawner):
    """The sample's hook, then the user's own port (all pods are 127.0.0.1 on the process kubelet)."""
    _sample_hook(spawner)
    spawner.port = _ports[spawner.user.name]


c.Spawner.pre_spawn_hook = _own_port
