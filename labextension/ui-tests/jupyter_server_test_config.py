"""The Jupyter server of the browser tests: Galata's test configuration plus what mlp-kernel needs.

Each Playwright worker starts one (the ``jupyterServer`` fixture of ``tests/fixtures.ts``) with temporary
``JUPYTER_CONFIG_DIR``/``DATA``/``RUNTIME`` directories and ``JUPYTER_PATH`` under ``MLP_UI_TESTS_DIR`` (the
worker's own), on the port ``MLP_UI_TESTS_PORT`` with the token ``MLP_UI_TESTS_TOKEN``. This file fills
that ``JUPYTER_PATH`` before the server looks at it: a copy of the shipped gpu-auto kernelspec (local backend,
a 25 s idle timeout, so a release can be watched), the README's ``GPU (demo)`` kernelspec (the same files
on the demo policy: private and AWS members, so a paid placement can be watched; found by its provisioner,
with no setting) and the built lab extension (``mlp_kernel/labextension``,
from ``jlpm build:prod`` in ``labextension/``), so the tests see exactly what a ``pip install`` ships. Two
users are told apart by the ``mlp_test_user`` cookie, read by the test identity provider
(tests/server/header_identity.py): ``alice`` is an mlp-kernel admin, ``bob`` is not.

With ``MLP_UI_TESTS_GIT=1`` (the servers of project ``git`` in playwright.config.js: tests/admin-git.spec.ts)
the admin page's saves go through Git: a bare repository ``git/remote.git`` under ``MLP_UI_TESTS_DIR`` (the
Git server) holds ``kernels/gpu-auto``, the server's clone ``git/clone`` is the deployed checkout, and the
installed gpu-auto kernelspec is a symlink into it (docs/admin-guide.md, section 10c4, "The checkout").

Galata's settings (no XSRF check, its helper extension) make this server unfit for anything but tests.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from jupyterlab.galata import configure_jupyter_server

REPO = Path(__file__).resolve().parents[2]
BUILT_EXTENSION = REPO / "mlp_kernel" / "labextension"
IDLE_TIMEOUT = "25s"
ADMIN = "alice"

base = Path(os.environ["MLP_UI_TESTS_DIR"])
jupyter_path = Path(os.environ["JUPYTER_PATH"])
if not (BUILT_EXTENSION / "package.json").is_file():
    sys.exit(
        f"The lab extension is not built ({BUILT_EXTENSION}): run `cd labextension && jlpm install && "
        "jlpm build:prod` (jlpm is in the virtualenv's bin)."
    )
for d in (base / "root", base / "history", jupyter_path / "labextensions", jupyter_path / "kernels"):
    d.mkdir(parents=True, exist_ok=True)

spec_dir = jupyter_path / "kernels" / "gpu-auto"
shutil.rmtree(spec_dir, ignore_errors=True)
shutil.copytree(REPO / "kernelspecs" / "gpu-auto", spec_dir)
spec = json.loads((spec_dir / "kernel.json").read_text())
spec["metadata"]["kernel_provisioner"]["config"].update(
    {"idle_timeout": IDLE_TIMEOUT, "backend": "local", "log_level": "INFO"}
)
(spec_dir / "kernel.json").write_text(json.dumps(spec, indent=2))


def variant(
    name: str, display_name: str, policy: str, policy_text: str | None = None, **config: object
) -> None:
    """A copy of the gpu-auto kernelspec above as ``name``, with its own policy (written when given as text)
    and provisioner config on top of the copy's."""
    target = jupyter_path / "kernels" / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(spec_dir, target)
    if policy_text is not None:
        (target / policy).write_text(policy_text)
    variant_spec = json.loads((spec_dir / "kernel.json").read_text())
    variant_spec["display_name"] = display_name
    variant_spec["metadata"]["kernel_provisioner"]["config"].update({"policy": policy, **config})
    (target / "kernel.json").write_text(json.dumps(variant_spec, indent=2))


PRIVATE_BRONZE = (
    "  private: {backend: local, public: false, display_name: private cluster}\n"
    "flavors:\n"
    "  bronze: {member: private, tier: bronze, gpu_models: [RTX], price_per_gpu_hour: 0, capacity_gpus: 1}\n"
)
# The README's demo kernelspec (private cluster and AWS).
variant("gpu-demo", "GPU (demo)", "demo-policy.yaml")
# A pool of one GPU, so a second notebook queues behind the first (the local backend honours capacities).
variant(
    "gpu-queue",
    "GPU (queue)",
    "queue-policy.yaml",
    "version: 1\ntiers: [bronze]\nmembers:\n"
    + PRIVATE_BRONZE
    + "burst: {enabled: false}\nidle_timeout: 10m\ndefault_request: {gpu_count: 1}\n",
)
# A kernel that takes ~8 s to start (an interpreter behind a sleep), so the Starting state can be seen.
slow_python = base / "slow-python"
slow_python.write_text(f'#!/bin/sh\nsleep 8\nexec {sys.executable} "$@"\n')
slow_python.chmod(0o755)
variant("gpu-slow", "GPU (slow start)", "policy.yaml", local_python=str(slow_python))
# One private GPU and a public member with a 3 s burst threshold: a second notebook queues, then bursts.
variant(
    "gpu-burst",
    "GPU (burst)",
    "burst-policy.yaml",
    "version: 1\ntiers: [bronze, gold]\nmembers:\n  aws: {backend: local, public: true, display_name: AWS}\n"
    + PRIVATE_BRONZE
    + "  gold: {member: aws, tier: gold, gpu_models: [A100], price_per_gpu_hour: 4.10, capacity_gpus: 8}\n"
    "burst: {enabled: true, threshold: 3s, deadline_horizon: 2h}\nidle_timeout: 10m\n"
    "default_request: {gpu_count: 1, burstable: true, budget: flex}\n",
    reevaluate_s=0.5,
)
# A kernel that cannot start (its interpreter does not exist): the error state.
variant("gpu-broken", "GPU (broken)", "policy.yaml", local_python=str(base / "no-such-python"))
GIT_MODE = os.environ.get("MLP_UI_TESTS_GIT") == "1"


def git(*args: str) -> None:
    seed_identity = ("-c", "user.name=Platform Team", "-c", "user.email=platform@example.com")
    subprocess.run(["git", *seed_identity, *args], check=True, capture_output=True, timeout=60)


if GIT_MODE:  # the gpu-auto kernelspec (as configured above) committed on main, then served from a clone
    repos = base / "git"
    shutil.rmtree(repos, ignore_errors=True)
    seed, remote, clone = repos / "seed", repos / "remote.git", repos / "clone"
    git("init", "-q", "--bare", "-b", "main", str(remote))
    git("init", "-q", "-b", "main", str(seed))
    shutil.copytree(spec_dir, seed / "kernels" / "gpu-auto")
    git("-C", str(seed), "add", ".")
    git("-C", str(seed), "commit", "-q", "-m", "GPU (auto) as shipped")
    git("-C", str(seed), "push", "-q", str(remote), "main")
    git("clone", "-q", str(remote), str(clone))
    shutil.rmtree(spec_dir)
    spec_dir.symlink_to(clone / "kernels" / "gpu-auto", target_is_directory=True)

link = jupyter_path / "labextensions" / "mlp-kernel"
if not link.is_symlink():
    link.symlink_to(BUILT_EXTENSION)

# The test identity provider lives in the repository's tests package.
sys.path.insert(0, str(REPO))

configure_jupyter_server(c)  # noqa: F821 (c is the config object Jupyter's config loader provides)
c.ServerApp.ip = "127.0.0.1"  # noqa: F821
c.ServerApp.port = int(os.environ["MLP_UI_TESTS_PORT"])  # noqa: F821
c.ServerApp.allow_root = True  # noqa: F821
# Galata turns authentication off; the test identity provider (like real ones) names a user only once the
# token checks out, so the server keeps one and the tests send it (playwright.config.js).
c.IdentityProvider.token = os.environ["MLP_UI_TESTS_TOKEN"]  # noqa: F821
c.ServerApp.jpserver_extensions = {"mlp_kernel": True}  # noqa: F821
c.ServerApp.identity_provider_class = "tests.server.header_identity.HeaderIdentityProvider"  # noqa: F821
c.MlpKernelExtension.admin_users = [ADMIN]  # noqa: F821
c.MlpKernelExtension.history_dir = str(base / "history")  # noqa: F821
c.LabApp.news_url = ""  # noqa: F821
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"  # noqa: F821
if GIT_MODE:
    c.MlpKernelExtension.git_repo = str(clone)  # noqa: F821
    c.MlpKernelExtension.git_branch = "main"  # noqa: F821
    c.MlpKernelExtension.git_remote = "origin"  # noqa: F821
    c.MlpKernelExtension.git_email_domain = "example.com"  # noqa: F821
