"""What ``render_kernel_objects`` and ``ingress.route_objects`` make for a member behind an ingress.

Offline checks of the objects' shape; tests/cluster/test_ingress_real.py sends them to a real API server and
runs a kernel through them."""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys

import yaml

from mlp_kernel.backends.kubernetes import ingress
from mlp_kernel.backends.kubernetes.objects import redact_secret, render_kernel_objects
from mlp_kernel.cli import bridge as bridge_cli
from tests.backend_kubernetes.policies import KERNELSPEC, members_policy

TOKEN = "bridge-token-for-the-objects-test-0123456789"


def ingress_policy(kind: str = "httproute", url: str = "wss://kernels.gpu.example.com"):  # type: ignore[no-untyped-def]
    policy = members_policy()
    member = dataclasses.replace(
        policy.members["private"],
        transport="ingress",
        ingress_url=url,
        ingress_kind=kind,
        ingress_parent="gateways/mlp-kernels" if kind == "httproute" else "nginx",
    )
    return dataclasses.replace(policy, members={**policy.members, "private": member}), member


def render(kind: str = "httproute", url: str = "wss://kernels.gpu.example.com") -> tuple[dict, dict, object]:
    policy, member = ingress_policy(kind, url)
    secret, pod = render_kernel_objects(
        KERNELSPEC, policy, member, "silver", "alice", kernel_id="k-1", key="hmac-key-0123456789",
        bridge_token=TOKEN,
    )  # fmt: skip
    return secret, pod, member


def test_the_pod_gets_the_bridge_sidecar_and_no_kernel_ports() -> None:
    secret, pod, _ = render()
    kernel = pod["spec"]["containers"][0]
    assert not any(p["containerPort"] in range(50000, 50005) for p in kernel.get("ports") or [])
    (sidecar,) = [c for c in pod["spec"]["initContainers"] if c["name"] == ingress.BRIDGE_CONTAINER]
    assert sidecar["restartPolicy"] == "Always" and sidecar["image"] == kernel["image"]
    assert [p["containerPort"] for p in sidecar["ports"]] == [8765]
    assert "/var/run/mlp-kernel/bridge-token" in sidecar["command"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[ingress.BRIDGE_VOLUME]["configMap"]["name"] == bridge_cli.NAME
    assert pod["metadata"]["labels"][ingress.POD_LABEL] == "mlpk-k-1-1"
    info = json.loads(base64.b64decode(secret["data"]["connection.json"]))
    assert info["ip"] == "127.0.0.1"  # the kernel binds loopback: only the bridge reaches it
    assert base64.b64decode(secret["data"][ingress.BRIDGE_TOKEN_KEY]).decode() == TOKEN
    assert TOKEN not in json.dumps(pod)
    shown = json.dumps(redact_secret(secret))
    assert TOKEN not in shown and base64.b64encode(TOKEN.encode()).decode() not in shown


def test_the_direct_mode_is_unchanged() -> None:
    secret, pod = render_kernel_objects(
        KERNELSPEC, members_policy(), "private", "silver", "alice", kernel_id="k-1"
    )
    assert "initContainers" not in pod["spec"] and ingress.BRIDGE_TOKEN_KEY not in secret["data"]
    assert json.loads(base64.b64decode(secret["data"]["connection.json"]))["ip"] == "0.0.0.0"
    assert {p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]} >= set(range(50000, 50005))


def test_service_and_httproute_reach_this_pod_only() -> None:
    _, pod, member = render(url="wss://kernels.gpu.example.com/mlp")
    service, route = ingress.route_objects(member, pod)  # type: ignore[arg-type]
    assert service["spec"]["selector"] == {ingress.POD_LABEL: "mlpk-k-1-1"}
    assert service["spec"]["ports"][0]["port"] == 8765
    assert service["spec"]["ports"][0]["appProtocol"] == "kubernetes.io/ws"
    assert route["kind"] == "HTTPRoute"
    assert route["spec"]["parentRefs"] == [{"name": "mlp-kernels", "namespace": "gateways"}]
    assert route["spec"]["hostnames"] == ["kernels.gpu.example.com"]
    rule = route["spec"]["rules"][0]
    assert rule["matches"][0]["path"] == {"type": "PathPrefix", "value": "/mlp/kernels/mlpk-k-1-1/"}
    assert rule["backendRefs"] == [{"name": "mlpk-k-1-1", "port": 8765}]
    assert ingress.kernel_url(member, "mlpk-k-1-1") == "wss://kernels.gpu.example.com/mlp/kernels/mlpk-k-1-1/"  # type: ignore[arg-type]
    assert "kueue.x-k8s.io/queue-name" not in route["metadata"]["labels"]


def test_an_ingress_for_ingress_nginx_and_no_host_for_an_address() -> None:
    _, pod, member = render(kind="ingress", url="wss://10.1.2.3:8443")
    _, route = ingress.route_objects(member, pod)  # type: ignore[arg-type]
    assert route["kind"] == "Ingress" and route["spec"]["ingressClassName"] == "nginx"
    (rule,) = route["spec"]["rules"]
    assert "host" not in rule  # an Ingress rule's host is a DNS name, never an address
    assert rule["http"]["paths"][0]["path"] == "/kernels/mlpk-k-1-1/"


def test_render_prints_the_ingress_objects_and_never_the_token(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "spec"
    spec.mkdir()
    for f in ("kernel.json", "pod-template.yaml.j2"):
        (spec / f).write_text((KERNELSPEC / f).read_text())
    from tests.backend_kubernetes.policies import TEST_MEMBERS_POLICY

    raw = yaml.safe_load(TEST_MEMBERS_POLICY)
    raw["members"]["private"].update(
        transport="ingress", ingress_url="wss://kernels.gpu.example.com", ingress_parent="jupyter/mlp-kernels"
    )
    (spec / "policy.yaml").write_text(yaml.safe_dump(raw))
    out = subprocess.run(
        [sys.executable, "-m", "mlp_kernel.cli", "render", "--kernelspec", str(spec), "--member", "private",
         "--flavor", "silver", "--user", "alice", "--kernel-id", "k-1"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    docs = list(yaml.safe_load_all(out))
    kinds = [d["kind"] for d in docs]
    assert kinds == ["Secret", "Pod", "Service", "HTTPRoute"], kinds
    assert docs[0]["stringData"][ingress.BRIDGE_TOKEN_KEY] == "<redacted>"
