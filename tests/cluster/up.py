"""Run the real control plane by hand and point a "GPU (real Kueue)" kernelspec at it.

    python -m tests.cluster.build     # once: kube-apiserver, controller-manager, scheduler, etcd, Kueue
    python -m tests.cluster.up        # start private + public members; Ctrl-C stops them
    jupyter lab                       # pick "GPU (real Kueue)"

Starts the two members the tests use (private: Bronze and Silver nodes with 4 fake GPUs each; public: a
tainted Gold node with 8), with their Kueue flavors, ClusterQueues and LocalQueue ``jupyter/kernels``; writes
one kubeconfig with contexts ``private`` and ``public``; and installs the kernelspec ``gpu-real`` (user scope)
whose policy names those members. Kernel pods run on this machine through the process kubelet.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir

from tests.backend_kubernetes.policies import KERNELSPEC, TEST_MEMBERS_POLICY
from tests.kubeapi.fixtures import PRIVATE_KUEUE, PRIVATE_NODES, PUBLIC_KUEUE, PUBLIC_NODES

from . import build
from .members import RealMembers

POLICY = TEST_MEMBERS_POLICY + (
    "burst: {enabled: true, threshold: 2m, deadline_horizon: 1h}\nidle_timeout: 10m\n"
)


def install_kernelspec(name: str, kubeconfig: str) -> Path:
    dest = Path(jupyter_data_dir()) / "kernels" / name
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(KERNELSPEC, dest)
    (dest / "real-policy.yaml").write_text(POLICY)
    spec = json.loads((dest / "kernel.json").read_text())
    spec["display_name"] = "GPU (real Kueue)"
    cfg = spec["metadata"]["kernel_provisioner"]["config"]
    cfg["policy"] = "real-policy.yaml"
    cfg["kubernetes"] = {"kubeconfig": kubeconfig}
    (dest / "kernel.json").write_text(json.dumps(spec, indent=1))
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster.up", description=__doc__.split("\n")[0])
    parser.add_argument("--kernelspec", default="gpu-real", help="kernelspec to install (default gpu-real)")
    args = parser.parse_args(argv)
    missing = [c.name for c in build.COMPONENTS if not c.built]
    if missing:
        print(f"not built: {', '.join(missing)}; run: python -m tests.cluster.build", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="mlp-real-cluster-"))
    config = {
        "private_nodes": PRIVATE_NODES,
        "public_nodes": PUBLIC_NODES,
        "private_kueue": PRIVATE_KUEUE,
        "public_kueue": PUBLIC_KUEUE,
    }
    t0 = time.monotonic()
    members = RealMembers(root, config).start()
    spec: Path | None = None
    try:
        members.reset()
        spec = install_kernelspec(args.kernelspec, members.kubeconfig_path)
        print(f"real control plane up in {time.monotonic() - t0:.1f} s")
        for m in members:
            print(f"  {m.name}: {m.url} (logs: {m.plane.root / 'logs'})")
        print(f"kubeconfig: {members.kubeconfig_path}")
        print(f"  kubectl --kubeconfig {members.kubeconfig_path} --context private get pods,workloads -A")
        print(f'kernelspec: {spec} ("GPU (real Kueue)", removed on exit) - Ctrl-C stops everything')
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        members.stop()
        if spec is not None:  # its kubeconfig is gone with the members
            shutil.rmtree(spec, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
