"""The Kubernetes backend behind a member's ingress, on the real control plane (issue 14 §1).

As deployed: the product's ``KubernetesBackend`` launches on a member with ``transport: ingress``; the real
API server takes the pod (with its bridge as a native sidecar), its Secret with the bridge token, and the
Service and HTTPRoute owned by it; real Kueue admits it, the real scheduler binds it, the process kubelet runs
the kernel and the bridge inside the pod's own network namespace (test-only annotation
``test.mlp.io/netns``), kube-controller-manager's EndpointSlice controller lists the pod behind the Service,
and ``routes.RouteController`` (a Gateway API controller reduced to this) turns the HTTPRoute into a
location of Debian's nginx, which terminates TLS and verifies the gateway's client certificate in the edge's
namespace. The gateway's side (this process) has a route to nginx's TLS port only (tests/transport/deploy.py).
Nothing here stands in for mlp-kernel's own code.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlp_kernel.backends.base import LaunchError, Phase
from mlp_kernel.backends.kubernetes import ingress
from mlp_kernel.cli import bridge as bridge_cli
from mlp_kernel.placement.policy import Policy
from tests.backend_kubernetes.conftest import make_backend
from tests.backend_kubernetes.e2e import KEY, launch_all, spec
from tests.backend_kubernetes.policies import KERNELSPEC, members_policy
from tests.cluster.members import RealMembers
from tests.cluster.test_dry_run import SAMPLES, _service_account_client, install_gateway_api
from tests.kubeapi.controllers.kubelet import NETNS_ANNOTATION
from tests.transport.deploy import BRIDGE_PORT, INGRESS_PORT, Gateway, Member, is_root, reachable
from tests.transport.routes import RouteController

GATEWAY = "mlp-kernels"
NS = "jupyter"


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Member]:
    if not is_root():
        pytest.fail("the ingress tests build network namespaces: run them as root (CI does)")
    m = Member(tmp_path / "edge")
    try:
        yield m.network_up()
    finally:
        m.down()


@pytest.fixture
def member_setup(kube_members: RealMembers) -> RealMembers:
    private = kube_members.members["private"]
    install_gateway_api(private)
    private.apply(yaml.safe_load(bridge_cli.render(NS)))  # what the admin applies once per member
    return kube_members


def kernelspec_in(edge: Member, tmp_path: Path) -> Path:
    """The shipped kernelspec, its pod template asking the test kubelet for the pod's network namespace."""
    spec_dir = tmp_path / "gpu-ingress"
    shutil.copytree(KERNELSPEC, spec_dir)
    template = spec_dir / "pod-template.yaml.j2"
    text = template.read_text()
    marker = "metadata:\n  name: {{ kernel_pod_name }}\n"
    assert marker in text
    template.write_text(
        text.replace(marker, f"{marker}  annotations:\n    {NETNS_ANNOTATION}: {edge.pod_ns}\n")
    )
    return spec_dir


def ingress_policy(edge: Member) -> Policy:
    policy = members_policy()
    private = dataclasses.replace(
        policy.members["private"],
        transport="ingress",
        ingress_url=f"wss://{edge.edge_ip}:{INGRESS_PORT}",
        ingress_parent=f"{NS}/{GATEWAY}",
    )
    return dataclasses.replace(policy, members={**policy.members, "private": private})


def ingress_backend(
    members: RealMembers, edge: Member, tmp_path: Path, client_cert: bool = True, **options: Any
) -> Any:
    cert = {
        "ingress_client_cert": str(edge.root / "gateway.pem"),
        "ingress_client_key": str(edge.root / "gateway-key.pem"),
    }
    backend = make_backend(
        members, ingress_policy(edge), plain_clients=False, ingress_ca=str(edge.root / "ca.pem"),
        **(cert if client_cert else {}), **options,
    )  # fmt: skip
    backend.kernelspec_dir = kernelspec_in(edge, tmp_path)
    return backend


async def wait_gone(private: Any, kinds: list[tuple[str, str]], name: str, timeout: float = 60) -> list[str]:
    """The kinds still there after ``timeout`` (the garbage collector deletes what the pod owned)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [k for v, k in kinds if private.find(v, k, name, NS) is not None]
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.5)


async def run_cell(kc: Any, code: str) -> tuple[dict[str, Any], str]:
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    reply = await kc.execute_interactive(code, output_hook=hook, timeout=120)
    return reply["content"], "".join(out)


async def test_a_kernel_behind_the_ingress_runs_and_its_objects_go_with_its_pod(
    member_setup: RealMembers, edge: Member, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    private = member_setup.members["private"]
    # As deployed: the gateway's own ServiceAccount, with only what the RBAC sample grants it
    for doc in yaml.safe_load_all((SAMPLES / "rbac/kernel-launcher.yaml").read_text()):
        private.apply(doc)
    as_gateway = _service_account_client(private, NS, "mlp-kernel-gateway")
    routes = RouteController(edge, private.rest, NS, GATEWAY).start()
    backend = ingress_backend(member_setup, edge, tmp_path, api_clients={"private": as_gateway})
    try:
        events = await launch_all(backend, spec())
        assert events[-1].phase == Phase.CONNECTED, [e.message for e in events]
        remote = events[-1].remote
        name = remote.handle["pod"]
        assert remote.ip == "127.0.0.1" and remote.handle["transport"] == "ingress"
        assert "curve_publickey" in remote.handle  # CurveZMQ end to end, through the TLS-terminating ingress

        pod = private.get("v1", "Pod", name, NS)
        assert pod["status"]["podIP"] == edge.pod_ip  # the pod's own network, not this machine's loopback
        (sidecar,) = pod["spec"]["initContainers"]
        assert sidecar["restartPolicy"] == "Always" and sidecar["name"] == ingress.BRIDGE_CONTAINER
        assert not pod["spec"]["containers"][0].get("ports"), "the kernel's ports left the pod spec"
        owner = {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": pod["metadata"]["uid"]}
        service = private.get("v1", "Service", name, NS)
        route = private.get("gateway.networking.k8s.io/v1", "HTTPRoute", name, NS)
        for obj in (service, route):
            assert [{k: r[k] for k in owner} for r in obj["metadata"]["ownerReferences"]] == [owner]
        assert service["spec"]["selector"] == {ingress.POD_LABEL: name}
        assert routes.routes == {f"/kernels/{name}/": f"{edge.pod_ip}:{BRIDGE_PORT}"}

        # The only way in is the ingress: neither the bridge nor a kernel port answers on the pod address.
        assert not reachable(edge.pod_ip, BRIDGE_PORT, timeout=1, speaks="http")
        assert not reachable(edge.pod_ip, backend.ports["hb"], timeout=1, speaks="zmtp")

        gateway = Gateway(remote, tmp_path, key=KEY)
        kc = gateway.client()
        try:
            await kc.wait_for_ready(timeout=60)
            reply, out = await run_cell(kc, "print(6 * 7)")
            assert reply["status"] == "ok" and out.strip() == "42"
            reply, out = await run_cell(
                kc, "import sys; sys.stdout.write('x' * 1_000_000); sys.stdout.flush()"
            )
            assert reply["status"] == "ok" and out == "x" * 1_000_000  # 1 MB streamed through nginx
        finally:
            kc.stop_channels()
            await gateway.close()

        # The bridge token is in the Secret only: not in the pod spec, no log of the path shows it.
        secret = private.get("v1", "Secret", f"{name}-conn", NS)
        token = base64.b64decode(secret["data"][ingress.BRIDGE_TOKEN_KEY]).decode()
        assert len(token) >= 32 and token not in json.dumps(pod)
        logs = [p for p in [*private.kubelet.root.rglob("*.log"), *edge.root.glob("*.log")] if p.is_file()]
        assert any(p.name == f"{ingress.BRIDGE_CONTAINER}.log" for p in logs), "the bridge ran as a sidecar"
        leaked = [str(p) for p in logs if token in p.read_text(errors="replace")]
        assert not leaked and token not in caplog.text, leaked

        await backend.release(remote)
        assert backend._tunnels == {}
        left = await wait_gone(
            private, [("v1", "Pod"), ("v1", "Service"), ("gateway.networking.k8s.io/v1", "HTTPRoute")], name
        )
        assert not left, f"still there after the pod's release: {left}"
    finally:
        backend.close()
        routes.stop()
    assert not routes.errors, routes.errors


async def test_a_wrong_bridge_token_is_refused_with_a_clear_error(
    member_setup: RealMembers, edge: Member, tmp_path: Path
) -> None:
    """An ingress that replaces the Authorization header (here: nginx told to) reaches a bridge that refuses
    it: the launch fails at once with what happened and what to do, and nothing is left behind."""
    private = member_setup.members["private"]
    rewrite = (
        '\n            proxy_set_header Authorization "Bearer a-token-that-is-not-the-kernels-0123456789";'
    )
    routes = RouteController(edge, private.rest, NS, GATEWAY, extra=rewrite).start()
    backend = ingress_backend(member_setup, edge, tmp_path)
    launch = spec()
    try:
        started = time.monotonic()
        with pytest.raises(LaunchError) as err:
            await launch_all(backend, launch)
        message = str(err.value)
        assert "refused this notebook server" in message and "401" in message, message
        assert "Authorization header" in message and "ask your admin" in message
        assert time.monotonic() - started < 50  # not the 60 s connect timeout: a refusal is final
        assert backend._tunnels == {}
        pods = [
            p
            for p in private.list("v1", "Pod", NS)
            if p["metadata"]["labels"].get("mlp.io/kernel-id") == launch.kernel_id
        ]
        assert all(p["metadata"].get("deletionTimestamp") for p in pods)
    finally:
        backend.close()
        routes.stop()


async def test_a_gateway_without_its_client_certificate_is_refused_by_the_ingress(
    member_setup: RealMembers, edge: Member, tmp_path: Path
) -> None:
    private = member_setup.members["private"]
    routes = RouteController(edge, private.rest, NS, GATEWAY).start()
    backend = ingress_backend(member_setup, edge, tmp_path, client_cert=False)
    try:
        with pytest.raises(LaunchError, match="client certificate is missing") as err:
            await launch_all(backend, spec())
        assert "400" in str(err.value) and "ingress_client_cert" in str(err.value)
    finally:
        backend.close()
        routes.stop()
