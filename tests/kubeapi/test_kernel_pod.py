"""End to end: a queued pod running a real ipykernel from a connection file in a Secret answers execute.

This is the shape the Kubernetes backend relies on: Secret volume at /etc/kernel, Kueue gate, admission,
scheduling, the kubelet running ``python -m ipykernel_launcher -f /etc/kernel/connection.json``.
"""

from __future__ import annotations

import json

from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file
from kubernetes import client

from tests.backend_kubernetes.conftest import free_ports


def test_queued_ipykernel_pod_executes_code(kube_members, tmp_path):
    private = kube_members.private
    core = client.CoreV1Api(private.api_client())
    # Ports below the ephemeral range (free_ports): one picked by binding port 0 can become the local end of
    # an outgoing connection before the pod's kernel binds it, and the kernel then dies at start.
    ports = {f"{name}_port": port for name, port in free_ports().items()}
    path, info = write_connection_file(str(tmp_path / "conn.json"), ip="127.0.0.1", **ports)
    core.create_namespaced_secret(
        "jupyter",
        {
            "metadata": {"name": "kernel-conn"},
            "stringData": {"connection.json": json.dumps(info, default=str)},
        },
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kernel", "labels": {"kueue.x-k8s.io/queue-name": "kernels"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "kernel",
                    "image": "quay.io/jupyter/base-notebook:latest",
                    "command": ["python", "-m", "ipykernel_launcher", "-f", "/etc/kernel/connection.json"],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                    "volumeMounts": [{"name": "conn", "mountPath": "/etc/kernel", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "conn", "secret": {"secretName": "kernel-conn"}}],
        },
    }
    core.create_namespaced_pod("jupyter", pod)
    private.wait_for_pod_phase("jupyter", "kernel", "Running", timeout=60)
    outputs: list[dict] = []
    kc = BlockingKernelClient()
    kc.load_connection_file(path)
    # No heartbeat channel: a heartbeat missed for a second counts as "kernel died" in wait_for_ready, and a
    # kernel still starting under load (Running is when its process started) had not bound its ports yet.
    kc.start_channels(hb=False)
    try:
        kc.wait_for_ready(timeout=90)
        reply = kc.execute_interactive("print(6 * 7)", timeout=60, output_hook=outputs.append)
        assert reply["content"]["status"] == "ok"
        assert any(m["msg_type"] == "stream" and m["content"]["text"].strip() == "42" for m in outputs), (
            outputs
        )
    except Exception as exc:
        pod_now = private.find("v1", "Pod", "kernel", "jupyter")
        log = core.read_namespaced_pod_log("kernel", "jupyter")
        raise AssertionError(
            f"kernel pod did not answer: {exc!r}\nstatus: {pod_now and pod_now.get('status')}\nlog:\n{log}"
        ) from exc
    finally:
        kc.stop_channels()
    core.delete_namespaced_pod("kernel", "jupyter")
    private.wait_for(
        lambda: private.find("v1", "Pod", "kernel", "jupyter") is None, timeout=60, what="kernel pod removal"
    )
