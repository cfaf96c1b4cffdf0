"""A kernel behind the member's ingress: the bridge sidecar, and the Service and route that reach it.

Why here and not in the admin's template: like the kernel ports, what the transport relies on is not the
template's to decide (docs/design.md, "Kernels behind an ingress"). For a member with
``transport: ingress`` ``objects.py`` adds the sidecar this module describes (a native sidecar: an
initContainer with ``restartPolicy: Always``, the kernel's own image, the script from the ConfigMap
``mlp-kernel bridge`` prints) and the pod label the Service selects; the backend creates the Service and the
HTTPRoute (or Ingress) after the pod, owned by it, so they are deleted with it. All objects are built as
data: the pod name is the only varying value, and it is a DNS label the backend chose.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from ...placement.policy import Member
from . import names

BRIDGE_PORT = 8765
BRIDGE_TOKEN_KEY = "bridge-token"  # the key of the kernel's Secret that holds the bridge token
BRIDGE_CONFIGMAP = "mlp-kernel-bridge"  # what `mlp-kernel bridge` prints (mlp_kernel/cli/bridge.py)
BRIDGE_DIR = "/opt/mlp-bridge"
BRIDGE_VOLUME = "mlp-bridge"
BRIDGE_CONTAINER = "mlp-bridge"
POD_LABEL = "mlp.io/pod"  # the Service's selector: one pod, whatever other pods share its kernel id
WEBSOCKET_PROTOCOL = "kubernetes.io/ws"  # Gateway API's backend protocol for WebSocket
#: ingress-nginx closes a connection idle for 60 s by default; the tunnel pings every 20 s, 3600 s is margin
NGINX_ANNOTATIONS = {
    "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
    "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
    "nginx.ingress.kubernetes.io/proxy-buffer-size": "64k",
}


def uses_ingress(member: Member) -> bool:
    return member.transport == "ingress"


def kernel_path(member: Member, pod_name: str) -> str:
    """The kernel's path on the ingress (``<url path>/kernels/<pod>/``): the route's prefix."""
    base = urlsplit(member.ingress_url or "").path.rstrip("/")
    return f"{base}/kernels/{pod_name}/"


def kernel_url(member: Member, pod_name: str) -> str:
    """The tunnel's URL for the kernel (channels are appended to it)."""
    parts = urlsplit(member.ingress_url or "")
    return f"{parts.scheme}://{parts.netloc}{kernel_path(member, pod_name)}"


def bridge_sidecar(image: str, connection_dir: str, connection_file: str, volume: str) -> dict[str, Any]:
    """The bridge as a native sidecar; ``volume`` is the kernel's connection Secret (connection file and
    bridge token): the token is read from the mounted file, never from the pod spec or the environment."""
    return {
        "name": BRIDGE_CONTAINER,
        "image": image,
        "restartPolicy": "Always",
        "command": [
            "python",
            f"{BRIDGE_DIR}/bridge.py",
            "--connection-file",
            connection_file,
            "--token-file",
            f"{connection_dir}/{BRIDGE_TOKEN_KEY}",
            "--listen",
            f"0.0.0.0:{BRIDGE_PORT}",
        ],
        "ports": [{"name": "bridge", "containerPort": BRIDGE_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": BRIDGE_PORT}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "volumeMounts": [
            {"name": BRIDGE_VOLUME, "mountPath": BRIDGE_DIR, "readOnly": True},
            {"name": volume, "mountPath": connection_dir, "readOnly": True},
        ],
    }


def bridge_volume() -> dict[str, Any]:
    return {"name": BRIDGE_VOLUME, "configMap": {"name": BRIDGE_CONFIGMAP, "defaultMode": 0o444}}


def _labels(pod: dict[str, Any]) -> dict[str, str]:
    labels = dict(pod["metadata"].get("labels") or {})
    labels.pop(names.QUEUE_NAME, None)  # Kueue's queue label is for the pod only
    return {**labels, names.COMPONENT: "ingress"}


def _host(member: Member) -> str | None:
    """The ingress URL's host when it is a DNS name (routes and Ingress rules take names, not addresses)."""
    host = urlsplit(member.ingress_url or "").hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host or None
    return None


def route_objects(member: Member, pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The Service (the bridge port of this one pod) and the HTTPRoute or Ingress for ``pod``, unowned
    (the backend adds the ownerReference once the pod's uid is known)."""
    meta = pod["metadata"]
    name, ns = meta["name"], meta["namespace"]
    labels = _labels(pod)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "selector": {POD_LABEL: name},
            "ports": [
                {
                    "name": "bridge",
                    "port": BRIDGE_PORT,
                    "targetPort": BRIDGE_PORT,
                    "protocol": "TCP",
                    "appProtocol": WEBSOCKET_PROTOCOL,
                }
            ],
        },
    }
    path = kernel_path(member, name)
    host = _host(member)
    parent = member.ingress_parent or ""
    if member.ingress_kind == "ingress":
        rule: dict[str, Any] = {
            "http": {
                "paths": [
                    {
                        "path": path,
                        "pathType": "Prefix",
                        "backend": {"service": {"name": name, "port": {"number": BRIDGE_PORT}}},
                    }
                ]
            }
        }
        if host:
            rule = {"host": host, **rule}
        route: dict[str, Any] = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": NGINX_ANNOTATIONS},
            "spec": {"ingressClassName": parent, "rules": [rule]},
        }
    else:
        gateway_ns, _, gateway = parent.rpartition("/")
        parent_ref = {"name": gateway, **({"namespace": gateway_ns} if gateway_ns else {})}
        route = {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {
                "parentRefs": [parent_ref],
                **({"hostnames": [host]} if host else {}),
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": path}}],
                        "backendRefs": [{"name": name, "port": BRIDGE_PORT}],
                    }
                ],
            },
        }
    return [service, route]


__all__ = ["BRIDGE_PORT", "BRIDGE_TOKEN_KEY", "POD_LABEL", "kernel_url", "route_objects", "uses_ingress"]
