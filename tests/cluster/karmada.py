"""A real Karmada control plane on loopback, with the real members joined to it in Push mode.

What Karmada's ``hack/local-up-karmada.sh`` installs, cut to what GPU (auto) reads from Karmada: the
``Cluster`` objects (their ``Ready`` condition) and the cluster proxy path
(``/apis/cluster.karmada.io/v1alpha1/clusters/<name>/proxy/...``). So:

- an etcd and a kube-apiserver for Karmada (``plane.Plane``'s own pieces; the members' ``Pki``, so one
  kubeconfig user reaches all three), with Karmada's CRDs from the module's ``charts/karmada/_crds/bases``
  (without the kustomize patches that point two CRDs' conversion at ``karmada-webhook``, which is not run);
- ``karmada-aggregated-apiserver``: ``Cluster`` is not a CRD but an aggregated API with its own storage (the
  same etcd, as upstream), registered by the APIService ``v1alpha1.cluster.karmada.io``. It is reached like
  Kueue's visibility API: an ``ExternalName`` Service for ``localhost`` and the port in the APIService, with
  ``insecureSkipTLSVerify`` because the aggregator checks the certificate against the Service's DNS name,
  which our loopback certificate does not carry;
- ``karmada-controller-manager`` with only the ``cluster`` and ``clusterStatus`` controllers (Ready, the
  ``not-ready`` taint, the resource summary), polling members every second and turning NotReady after 2 s of
  failures instead of 30 s, so a test sees the change quickly;
- ``join()`` does what ``karmadactl join`` does (``pkg/util/credential.go``): in the member, namespace
  ``karmada-cluster`` with the service accounts ``karmada-<cluster>`` (cluster-admin, for the status
  controller) and ``karmada-impersonator`` (whose token the proxy sends while impersonating the caller), and
  their token Secrets; in Karmada, Secrets ``<cluster>`` (token + caBundle) and ``<cluster>-impersonator``
  and the ``Cluster`` (``syncMode: Push``). The impersonator's right to impersonate is granted here directly
  (upstream, Karmada's ``unifiedAuth`` controller pushes it through a Work, which needs the execution
  controller this plane does not run).

``Cable`` is a TCP forwarder in front of a member: ``cut()`` makes the member unreachable for Karmada (as if
its API server went away) without stopping the member that other tests share.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from pathlib import Path

import kubernetes
import yaml

from . import build
from .pki import Pki
from .plane import Plane, free_port, kubeconfig_doc
from .rest import Obj, Rest

YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are megabytes: C, not Python

CLUSTER_API = "cluster.karmada.io/v1alpha1"
KARMADA_NAMESPACE = "karmada-cluster"  # karmadactl's default --cluster-namespace
IMPERSONATOR = "karmada-impersonator"


class KarmadaPlane(Plane):
    """Karmada's API (kube-apiserver + aggregated apiserver) and controller-manager."""

    def __init__(self, root: Path, pki: Pki):
        super().__init__("karmada", root, pki)
        self.aggregated_port = free_port()
        self.kubeconfig_path: Path | None = None

    # Plane.start runs etcd, kube-apiserver, then these two: Karmada's own components instead of the
    # members' controllers, and no Kueue
    def _start_controllers(self) -> None:
        self._install_crds()
        self._start_aggregated_apiserver()
        self._start_controller_manager()

    def _install_kueue(self) -> None:
        pass

    def _install_crds(self) -> None:
        t0 = time.monotonic()
        for path in sorted((build.KARMADA.directory / "crds").rglob("*.yaml")):
            self.rest.apply(yaml.load(path.read_text(), Loader=YAML_LOADER))
        for ns in ("karmada-system", KARMADA_NAMESPACE):
            self.rest.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        self.timings["crds"] = time.monotonic() - t0

    def _start_aggregated_apiserver(self) -> None:
        t0 = time.monotonic()
        admin = str(self.kubeconfig("admin"))
        self._spawn(
            "karmada-aggregated-apiserver",
            [
                str(build.KARMADA.binary("karmada-aggregated-apiserver")),
                f"--kubeconfig={admin}",
                f"--authentication-kubeconfig={admin}",
                f"--authorization-kubeconfig={admin}",
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.aggregated_port}",
                f"--tls-cert-file={self.pki.cert}",
                f"--tls-private-key-file={self.pki.key}",
                f"--cert-dir={self.root / 'aggregated-certs'}",
                "--audit-log-path=-",
                "--audit-log-maxage=0",
                "--audit-log-maxbackup=0",
                "--v=1",
            ],
        )
        self.rest.apply(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "karmada-aggregated-apiserver", "namespace": "karmada-system"},
                "spec": {"type": "ExternalName", "externalName": "localhost"},
            }
        )
        self.rest.apply(
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": "v1alpha1.cluster.karmada.io"},
                "spec": {
                    "group": "cluster.karmada.io",
                    "version": "v1alpha1",
                    "groupPriorityMinimum": 2000,
                    "versionPriority": 10,
                    "insecureSkipTLSVerify": True,
                    "service": {
                        "name": "karmada-aggregated-apiserver",
                        "namespace": "karmada-system",
                        "port": self.aggregated_port,
                    },
                },
            }
        )

        def available() -> bool:
            api = self.rest.find("apiregistration.k8s.io/v1", "APIService", "v1alpha1.cluster.karmada.io")
            conds = (api or {}).get("status", {}).get("conditions") or []
            return any(c["type"] == "Available" and c["status"] == "True" for c in conds)

        self._wait(
            "waiting for the cluster.karmada.io APIService to be Available",
            "karmada-aggregated-apiserver",
            available,
            90,
        )
        self.timings["karmada-aggregated-apiserver"] = time.monotonic() - t0

    def _start_controller_manager(self) -> None:
        t0 = time.monotonic()
        health = free_port()
        self._spawn(
            "karmada-controller-manager",
            [
                str(build.KARMADA.binary("karmada-controller-manager")),
                f"--kubeconfig={self.kubeconfig('admin')}",
                "--controllers=cluster,clusterStatus",
                "--leader-elect=false",
                "--metrics-bind-address=0",
                f"--health-probe-bind-address=127.0.0.1:{health}",
                "--cluster-status-update-frequency=1s",
                "--cluster-failure-threshold=2s",
                "--cluster-success-threshold=1s",
                "--v=2",
            ],
        )

        def healthy() -> bool:
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=1) as resp:
                return resp.status == 200

        self._wait(
            "waiting for karmada-controller-manager /healthz", "karmada-controller-manager", healthy, 60
        )
        self.timings["karmada-controller-manager"] = time.monotonic() - t0

    # -- members -----------------------------------------------------------------------------------------

    def join(self, name: str, member: Rest, endpoint: str, labels: dict[str, str] | None = None) -> Obj:
        """Register a member as ``karmadactl join`` does (Push mode); returns the ``Cluster``."""
        token, ca = _service_account_token(member, f"karmada-{name}", "cluster-admin")
        impersonator, _ = _service_account_token(member, IMPERSONATOR, _impersonate_role(member))
        secrets = {name: {"token": token, "caBundle": ca}, f"{name}-impersonator": {"token": impersonator}}
        for secret, data in secrets.items():
            self.rest.apply(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": secret, "namespace": KARMADA_NAMESPACE},
                    "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
                }
            )
        return self.rest.apply(
            {
                "apiVersion": CLUSTER_API,
                "kind": "Cluster",
                "metadata": {"name": name, "labels": labels or {}},
                "spec": {
                    "syncMode": "Push",
                    "apiEndpoint": endpoint,
                    "secretRef": {"namespace": KARMADA_NAMESPACE, "name": name},
                    "impersonatorSecretRef": {"namespace": KARMADA_NAMESPACE, "name": f"{name}-impersonator"},
                },
            }
        )

    def cluster(self, name: str) -> Obj | None:
        return self.rest.find(CLUSTER_API, "Cluster", name)

    def ready(self, name: str) -> str | None:
        """The status of the Cluster's Ready condition (``True``/``False``/``Unknown``), None without one."""
        conds = ((self.cluster(name) or {}).get("status") or {}).get("conditions") or []
        return next((c["status"] for c in conds if c["type"] == "Ready"), None)

    def proxy_path(self, name: str) -> str:
        return f"/apis/{CLUSTER_API}/clusters/{name}/proxy"

    def write_kubeconfig(self, path: Path, members: dict[str, Plane]) -> Path:
        """One kubeconfig with a context per member and ``karmada`` (all as ``admin``)."""
        path.write_text(yaml.safe_dump(kubeconfig_doc({**members, "karmada": self})))
        path.chmod(0o600)
        return path

    def api_client(self, context: str = "karmada") -> kubernetes.client.ApiClient:
        """An official client for Karmada's API (or a member's, by context) from ``kubeconfig_path``."""
        return kubernetes.config.new_client_from_config(
            config_file=str(self.kubeconfig_path), context=context
        )


def _impersonate_role(member: Rest) -> str:
    role = "karmada-impersonator"
    member.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["users", "groups", "serviceaccounts"],
                    "verbs": ["impersonate"],
                }
            ],
        }
    )
    return role


def _service_account_token(member: Rest, account: str, cluster_role: str) -> tuple[str, str]:
    """A service account in ``karmada-cluster`` bound to ``cluster_role``, and its legacy token Secret's
    token and ca.crt once the member's token controller has filled it (as ``karmadactl join`` waits)."""
    member.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KARMADA_NAMESPACE}})
    meta = {"name": account, "namespace": KARMADA_NAMESPACE}
    member.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})
    member.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"karmada-controller-manager:{account}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"kind": "ServiceAccount", **meta}],
        }
    )
    member.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {**meta, "annotations": {"kubernetes.io/service-account.name": account}},
        }
    )
    end = time.monotonic() + 30
    while time.monotonic() < end:
        data = (member.find("v1", "Secret", account, KARMADA_NAMESPACE) or {}).get("data") or {}
        if data.get("token") and data.get("ca.crt"):
            return base64.b64decode(data["token"]).decode(), base64.b64decode(data["ca.crt"]).decode()
        time.sleep(0.1)
    raise AssertionError(f"the member's token controller did not fill Secret {KARMADA_NAMESPACE}/{account}")


class Cable:
    """A TCP forwarder from a loopback port to ``target``; ``cut()`` closes it and every open connection,
    ``plug()`` listens on the same port again."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def plug(self) -> Cable:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        for s in [listener, *conns]:
            if s is not None:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def member_port(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("https://").rpartition(":")
    return host, int(port)


def start_karmada(root: Path, pki: Pki, members: dict[str, Plane]) -> KarmadaPlane:
    """Karmada with ``members`` (name -> ``Plane``) joined and labelled ``mlp.io/member=<name>``, and
    ``<root>/kubeconfig`` with a context per member and ``karmada`` (``plane.kubeconfig_path``)."""
    plane = KarmadaPlane(root, pki)
    plane.start()
    t0 = time.monotonic()
    try:
        for name, member in members.items():
            plane.join(name, member.rest, member.url, {"mlp.io/member": name})
    except BaseException:
        plane.stop()
        raise
    plane.timings["join"] = time.monotonic() - t0
    plane.kubeconfig_path = plane.write_kubeconfig(root / "kubeconfig", members)
    return plane
