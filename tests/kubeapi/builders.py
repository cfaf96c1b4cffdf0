"""Small builders for the manifests tests create over and over (a pod that runs Python code, a queued pod)."""

from __future__ import annotations

from typing import Any

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def python_pod(
    name: str,
    code: str = "import time; time.sleep(300)",
    *,
    queue: str | None = None,
    gpus: int = 0,
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    env: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    image: str = "python:3.11",
    volume_mounts: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    grace: int | None = None,
    priority_class: str | None = None,
) -> dict[str, Any]:
    """A Pod whose only container runs ``python -c code``.

    The test kubelet maps ``python`` to the interpreter running the tests.
    """
    all_labels = dict(labels or {})
    if queue:
        all_labels[QUEUE_LABEL] = queue
    if priority_class:
        all_labels["kueue.x-k8s.io/priority-class"] = priority_class
    container: dict[str, Any] = {"name": "main", "image": image, "command": ["python", "-c"], "args": [code]}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    if env:
        container["env"] = env
    if volume_mounts:
        container["volumeMounts"] = volume_mounts
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    if volumes:
        spec["volumes"] = volumes
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": all_labels}, "spec": spec}
