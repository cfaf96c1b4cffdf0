"""A member as deployed behind its ingress, on one machine: network namespaces, a real nginx, a real kernel.

Three network namespaces stand for the three places of a deployment:

- this process's own namespace is the notebook server's cluster (the gateway);
- ``edge`` is the member's ingress: Debian's nginx terminating TLS (a test CA), verifying the gateway's client
  certificate (mTLS), upgrading WebSockets and routing ``/kernels/<id>/`` to the kernel's pod;
- ``pod`` is the kernel's pod: a real ipykernel bound to its loopback only, and ``mlp_kernel/transport/
  bridge.py`` on the pod address, as the sidecar would run it.

The gateway's namespace has a route to the ingress's address only, and the edge does not forward packets, so
the only way from the gateway to the kernel is the TLS port of nginx. Needs root (``ip netns``) and nginx;
either missing is a failure, not a skip (docs/admin-guide.md says how CI installs nginx).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
import zmq
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from jupyter_client.asynchronous import AsyncKernelClient

from mlp_kernel.backends.base import KERNEL_ARGS, RemoteKernel
from mlp_kernel.cli import bridge as bridge_configmap
from mlp_kernel.gateway.pump import Pump
from mlp_kernel.gateway.relay import RemoteLink
from mlp_kernel.gateway.wire import Session, Signer
from mlp_kernel.transport.tunnel import IngressTarget, Tunnel
from tests.ports import free_port

BRIDGE_PORT = 8765
INGRESS_PORT = 8443
KERNEL_PORTS = {"shell": 50000, "iopub": 50001, "stdin": 50002, "control": 50003, "hb": 50004}
KEY = "k3y-for-the-transport-tests"

NGINX_CONF = """\
user root;
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {root}/nginx-access.log;
    client_body_temp_path {root}/tmp-body;
    proxy_temp_path {root}/tmp-proxy;
    fastcgi_temp_path {root}/tmp-fastcgi;
    uwsgi_temp_path {root}/tmp-uwsgi;
    scgi_temp_path {root}/tmp-scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen {edge_ip}:{ingress_port} ssl;
        ssl_certificate {root}/ingress.pem;
        ssl_certificate_key {root}/ingress-key.pem;
        ssl_client_certificate {root}/ca.pem;
        ssl_verify_client on;
{locations}
    }}
}}
"""
#: one kernel's route: what an ingress controller makes of an HTTPRoute (or Ingress) to the kernel's Service
LOCATION = """\
        location {path} {{
            proxy_pass http://{upstream};{extra}
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_buffering off;
            proxy_buffer_size 64k;  # an upgraded connection is copied through this one buffer
            proxy_buffers 4 64k;
            proxy_busy_buffers_size 128k;
        }}
"""


def sh(*argv: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    ip: str = "", client: bool = False,
) -> x509.Certificate:  # fmt: skip
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, signer = issuer if issuer else (subject, key)
    b = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )  # fmt: skip
    if ip:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), False)
    if issuer is not None:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return b.sign(signer, hashes.SHA256())


def make_pki(root: Path, edge_ip: str) -> None:
    """A test CA, the ingress's serving certificate (for its address) and the gateway's client certificate."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("mlp-kernel transport test CA", ca_key, None)
    (root / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, ip, client in (("ingress", edge_ip, False), ("gateway", "", True)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(f"{name}.member.test", key, (ca.subject, ca_key), ip=ip, client=client)
        (root / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (root / f"{name}-key.pem").write_bytes(_key_pem(key))


@dataclass
class Member:
    """One member behind its ingress, with one kernel in it (see the module doc)."""

    root: Path
    curve: bool = True
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    kernel_id: str = field(default_factory=lambda: "k-" + secrets.token_hex(6))
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = int(self.tag, 16) % 250 + 1
        in_use = sh("ip", "-4", "-o", "addr").stdout  # another member up at once (xdist) keeps its subnets
        while f" 10.231.{n}." in in_use:
            n = n % 250 + 1
        self.edge_ns, self.pod_ns = f"mlpk-edge-{self.tag}", f"mlpk-pod-{self.tag}"
        self.host_ip, self.edge_ip = f"10.231.{n}.1", f"10.231.{n}.2"
        self.edge_pod_ip, self.pod_ip = f"10.232.{n}.1", f"10.232.{n}.2"
        self.curve_public = ""

    # -- bring up -----------------------------------------------------------------------------------------
    def up(self) -> Member:
        self.network_up()
        self._kernel()
        self._bridge()
        self._nginx()
        self._wait_port(self.pod_ns, "127.0.0.1", KERNEL_PORTS["shell"], "kernel", timeout=60)
        return self

    def network_up(self) -> Member:
        """The namespaces, addresses and certificates only: the pod's side is left to a kubelet
        (tests/cluster/test_ingress_real.py), nginx to ``start_nginx``."""
        self.nginx = shutil.which("nginx") or "/usr/sbin/nginx"  # sbin is not on every user's PATH
        if not Path(self.nginx).exists():
            raise RuntimeError("nginx is missing: apt-get install -y nginx (.ci/run installs it)")
        self.root.mkdir(parents=True, exist_ok=True)
        self._network()
        make_pki(self.root, self.edge_ip)
        return self

    def _network(self) -> None:
        t = self.tag
        sh("ip", "netns", "add", self.edge_ns)
        sh("ip", "netns", "add", self.pod_ns)
        sh("ip", "link", "add", f"mh{t}", "type", "veth", "peer", "name", f"me{t}")
        sh("ip", "link", "set", f"me{t}", "netns", self.edge_ns)
        sh("ip", "addr", "add", f"{self.host_ip}/30", "dev", f"mh{t}")
        sh("ip", "link", "set", f"mh{t}", "up")
        sh("ip", "link", "add", f"mp{t}", "type", "veth", "peer", "name", f"mq{t}", ns=self.edge_ns)
        sh("ip", "link", "set", f"mq{t}", "netns", self.pod_ns, ns=self.edge_ns)
        links = [(self.edge_ns, f"me{t}", self.edge_ip), (self.edge_ns, f"mp{t}", self.edge_pod_ip)]
        for ns, dev, addr in [*links, (self.pod_ns, f"mq{t}", self.pod_ip)]:
            sh("ip", "addr", "add", f"{addr}/30", "dev", dev, ns=ns)
            sh("ip", "link", "set", dev, "up", ns=ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        # The ingress is a proxy, not a router: no packet from the gateway is forwarded to the pod network.
        sh("sysctl", "-qw", "net.ipv4.ip_forward=0", ns=self.edge_ns)

    def _spawn(self, name: str, ns: str, argv: list[str]) -> None:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 (the process owns it)
        self.procs[name] = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=log, stderr=log)

    def _kernel(self) -> None:
        self.curve_public = kernel_file(self.root / "kernel.json", KERNEL_PORTS, self.curve)
        (self.root / "bridge-token").write_text(self.token)
        self.start_kernel()

    def start_kernel(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            str(self.root / "kernel.json"),
            *KERNEL_ARGS,
        ]
        self._spawn("kernel", self.pod_ns, argv)

    def _bridge(self) -> None:
        files = [
            "--connection-file",
            str(self.root / "kernel.json"),
            "--token-file",
            str(self.root / "bridge-token"),
        ]
        argv = [
            sys.executable,
            str(self._bridge_script()),
            *files,
            "--listen",
            f"{self.pod_ip}:{BRIDGE_PORT}",
        ]
        self._spawn("bridge", self.pod_ns, argv)
        self._wait_port(self.pod_ns, self.pod_ip, BRIDGE_PORT, "bridge")

    def _bridge_script(self) -> Path:
        """The bridge as a pod gets it: the script from ``mlp-kernel bridge``'s ConfigMap, run on its own."""
        path = self.root / "bridge.py"
        if not path.exists():
            shown = bridge_configmap.render("jupyter")  # what the command prints (test_bridge_configmap.py)
            path.write_text(yaml.safe_load(shown)["data"]["bridge.py"])
        return path

    def restart_bridge(self) -> None:
        self.stop("bridge")
        self._bridge()

    def _nginx(self) -> None:
        self.start_nginx({f"/kernels/{self.kernel_id}/": f"{self.pod_ip}:{BRIDGE_PORT}"})

    def nginx_conf(self, routes: dict[str, str], extra: str = "") -> str:
        """nginx's configuration for ``routes`` (path prefix -> upstream address:port); ``extra`` directives
        go into every location (a test's header rewrite)."""
        locations = "".join(
            LOCATION.format(path=p, upstream=u, extra=extra) for p, u in sorted(routes.items())
        )
        return NGINX_CONF.format(
            root=self.root, edge_ip=self.edge_ip, ingress_port=INGRESS_PORT, locations=locations.rstrip("\n")
        )

    def start_nginx(self, routes: dict[str, str]) -> None:
        for d in ("tmp-body", "tmp-proxy", "tmp-fastcgi", "tmp-uwsgi", "tmp-scgi"):
            (self.root / d).mkdir(exist_ok=True)
        (self.root / "nginx.conf").write_text(self.nginx_conf(routes))
        self._spawn("nginx", self.edge_ns, [self.nginx, "-c", str(self.root / "nginx.conf")])
        self._wait_port(None, self.edge_ip, INGRESS_PORT, "nginx")

    def reload_nginx(self, routes: dict[str, str], extra: str = "") -> None:
        """New routes, as an ingress controller applies them: rewrite the file, SIGHUP the master."""
        (self.root / "nginx.conf").write_text(self.nginx_conf(routes, extra))
        self.procs["nginx"].send_signal(signal.SIGHUP)

    def _wait_port(self, ns: str | None, ip: str, port: int, name: str, timeout: float = 30) -> None:
        probe = f"import socket; socket.create_connection(({ip!r}, {port}), 1).close()"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log(name)}")
            if sh(sys.executable, "-c", probe, ns=ns, check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not listen on {ip}:{port}: {self.log(name)}")

    # -- the gateway's side ---------------------------------------------------------------------------------
    def target(self, token: str | None = None, client_cert: bool = True) -> IngressTarget:
        cert = {"cert_file": str(self.root / "gateway.pem"), "key_file": str(self.root / "gateway-key.pem")}
        return IngressTarget(
            url=f"wss://{self.edge_ip}:{INGRESS_PORT}/kernels/{self.kernel_id}",
            token=self.token if token is None else token,
            ca_file=str(self.root / "ca.pem"),
            **(cert if client_cert else {}),
        )

    def remote(self, ports: dict[str, int]) -> RemoteKernel:
        """The RemoteKernel a backend returns for this kernel: the tunnel's loopback ports."""
        handle = {"curve_publickey": self.curve_public} if self.curve else {}
        channel_ports = {f"{c}_port": p for c, p in ports.items()}
        return RemoteKernel(
            kernel_id=self.kernel_id, ip="127.0.0.1", member="edge", handle=handle, **channel_ports
        )

    def tunnel(self) -> tuple[Tunnel, RemoteKernel]:
        tunnel = Tunnel(self.target())
        return tunnel, self.remote(tunnel.start())

    # -- tear down ------------------------------------------------------------------------------------------
    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def down(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        for ns in (self.pod_ns, self.edge_ns):
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", f"mh{self.tag}", check=False)


def kernel_file(path: Path, ports: dict[str, int], curve: bool) -> str:
    """Write a kernel's connection file (loopback, the tests' key); return its CurveZMQ public key or ""."""
    info: dict[str, object] = {f"{c}_port": p for c, p in ports.items()}
    info.update(ip="127.0.0.1", transport="tcp", key=KEY, signature_scheme="hmac-sha256")
    public = ""
    if curve:
        pub, secret = zmq.curve_keypair()
        public = pub.decode()
        info.update(curve_publickey=public, curve_secretkey=secret.decode())
    path.write_text(json.dumps(info))
    return public


class DirectKernel:
    """A kernel reached directly (the flat-network mode, CurveZMQ on as its default): the baseline."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        ports = dict(zip(KERNEL_PORTS, [free_port() for _ in KERNEL_PORTS], strict=True))
        public = kernel_file(root / "direct-kernel.json", ports, curve=True)
        argv = [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            str(root / "direct-kernel.json"),
            *KERNEL_ARGS,
        ]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        channel_ports = {f"{c}_port": p for c, p in ports.items()}
        self.remote = RemoteKernel(kernel_id="direct", ip="127.0.0.1", handle={"curve_publickey": public},
                                   **channel_ports)  # fmt: skip

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Gateway:
    """The gateway's relay (its I/O thread and a RemoteLink) between a Jupyter client and a RemoteKernel.

    The client sockets are bound on loopback and every request takes the relay's fast path, as the gateway's
    do once a remote kernel is connected; a request the pump hands to the loop is sent on by the link.
    """

    def __init__(self, remote: RemoteKernel, tmp: Path, key: str = KEY) -> None:
        self.ctx: zmq.Context[Any] = zmq.Context()
        client = {name: self.ctx.socket(zmq.ROUTER) for name in ("shell", "control", "stdin")}
        client["iopub"] = self.ctx.socket(zmq.XPUB)
        client["iopub"].xpub_verbose = 1
        info: dict[str, Any] = {"ip": "127.0.0.1", "transport": "tcp", "key": key}
        info["signature_scheme"] = "hmac-sha256"
        for name, sock in client.items():
            info[f"{name}_port"] = sock.bind_to_random_port("tcp://127.0.0.1")
        info["hb_port"] = 0
        self.pump = Pump(self.ctx, client, fast_forward=lambda channel, frames: True)
        self.pump.start()
        self.serving = asyncio.ensure_future(self.pump.serve(self._handed))
        self.link = RemoteLink(self.pump, remote, Session(Signer(key)))
        self.pump.fast = True
        self.connection_file = tmp / "gateway-connection.json"
        self.connection_file.write_text(json.dumps(info))

    def _handed(self, channel: str, frames: list[bytes]) -> None:
        self.link.send(channel, frames)
        self.pump.done(channel)

    def client(self) -> AsyncKernelClient:
        kc = AsyncKernelClient()
        kc.load_connection_file(str(self.connection_file))
        kc.start_channels(hb=False)
        return kc

    async def close(self) -> None:
        await self.link.close()
        self.serving.cancel()
        await asyncio.gather(self.serving, return_exceptions=True)
        self.pump.stop()
        self.ctx.term()


def reachable(ip: str, port: int, timeout: float = 2.0, speaks: str = "tcp") -> bool:
    """Whether this (the gateway's) namespace gets an answer from ``ip:port``: for ``speaks="zmtp"`` the
    ZeroMQ greeting a kernel's socket sends first, for ``"http"`` the bridge's ``/healthz``. A bare TCP
    connect proves nothing where the machine's network accepts every outgoing connection (a sandbox's
    transparent proxy does), so the direct-path checks ask the service itself to answer."""
    try:
        with socket.create_connection((ip, port), timeout) as sock:
            sock.settimeout(timeout)
            if speaks == "tcp":
                return True
            if speaks == "http":
                sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                answer = b"".join(iter(lambda: sock.recv(4096), b""))
                return answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\nok\n")
            sock.sendall(b"\xff" + b"\x00" * 8 + b"\x7f")  # ZMTP 3 signature; the peer sends its own
            return sock.recv(10)[:1] == b"\xff"
    except OSError:
        return False


def is_root() -> bool:
    return os.geteuid() == 0
