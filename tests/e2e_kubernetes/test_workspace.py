"""The user's files on a private member's kernel pod, end to end (issue 14 §2): the pod mounts the user's
workspace claim where the notebook server mounts it, starts in the notebook's directory, reads the file next
to the notebook, and what it writes there is on the user's volume for the notebook server to see; the status
snapshot and ``%gpu status`` say so (the claim, read-write, the notebook's directory).

A real gateway and Kubernetes backend; the claim is the user's ReadWriteMany home (bound by the test API here,
by the real PV binder to our local-path provisioner's volume in tests/cluster/test_e2e_real.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager

from tests.backend_kubernetes.conftest import free_ports
from tests.backend_kubernetes.test_workspace_volumes import PRIVATE_LINE
from tests.gateway.conftest import Kernel, make_kernelspec, shutdown_all, text_of

from .conftest import E2E_POLICY, create_claim, kernel_pods

WORKSPACE_POLICY = E2E_POLICY.replace(
    PRIVATE_LINE,
    PRIVATE_LINE.replace(
        "kubeconfig_context: private}", 'kubeconfig_context: private, workspace_claim: "home-{username}"}'
    ),
)
NOTEBOOK = "/home/jovyan/project/analysis.ipynb"  # as the notebook server names it (JPY_SESSION_NAME)


async def test_the_kernel_pod_works_in_the_notebooks_directory_on_the_users_workspace(
    tmp_path: Path, runtime_dir: Path, kube_members: Any
) -> None:
    assert "workspace_claim" in WORKSPACE_POLICY
    private = kube_members.private
    create_claim(private, "home-alice")
    folder = Path(private.kubelet.claims.directory("jupyter", "home-alice")) / "project"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data.csv").write_text("a,b\n1,2\n")
    options = {
        "kubeconfig": kube_members.kubeconfig_path,
        "ports": free_ports(),
        "tick_s": 0.2,
        "queue_refresh_s": 0.5,
        "timeouts": {"queued_s": 180, "scheduling_s": 60, "pulling_s": 60, "connecting_s": 60},
    }
    make_kernelspec(tmp_path, "gpu-auto-ws", WORKSPACE_POLICY, kubernetes=options, user="alice")
    km = AsyncKernelManager(
        kernel_name="gpu-auto-ws",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")]),
    )
    await km.start_kernel(env={**os.environ, "JPY_SESSION_NAME": NOTEBOOK})
    kc = km.client()
    kc.start_channels()
    k = Kernel(km, kc, runtime_dir)
    try:
        await kc.wait_for_ready(timeout=60)
        code = "import os\nprint(os.getcwd())\nprint(open('data.csv').read().split()[1])\n"
        code += "open('result.txt', 'w').write('from the GPU')"
        reply, outputs = await k.run(code, timeout=120)
        assert reply["content"]["status"] == "ok", text_of(outputs)
        cwd, row = [m["content"]["text"] for m in outputs if m["msg_type"] == "stream"][0].split()
        assert Path(cwd).resolve() == folder.resolve() and row == "1,2"
        assert (folder / "result.txt").read_text() == "from the GPU"
        pod = kernel_pods(private, k.kernel_id)[0]
        kernel = pod["spec"]["containers"][0]
        assert kernel["workingDir"] == "/home/jovyan/project"
        claims = [v for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
        assert [v["persistentVolumeClaim"]["claimName"] for v in claims] == ["home-alice"]
        # and the user is told so: the snapshot's files part (the panel's Files section) and %gpu status
        line = "the notebook's directory /home/jovyan/project (volume claim home-alice, read-write)"
        assert k.status_file()["files"] == {
            "mode": "volume", "message": line, "working_dir": "/home/jovyan/project",
            "workspace_claim": "home-alice", "workspace_path": "/home/jovyan", "read_only": False,
        }  # fmt: skip
        reply, outputs = await k.run("%gpu status")
        assert f"\nFiles: {line}" in text_of(outputs), text_of(outputs)
    finally:
        await shutdown_all([k])
