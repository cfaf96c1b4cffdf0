"""Start one real member cluster on loopback: etcd, kube-apiserver, controller-manager, scheduler, Kueue.

The binaries come from ``build.py``'s cache. Everything listens on 127.0.0.1 with ports picked free at start;
each process logs to ``<root>/logs/<name>.log`` (quoted when start-up fails) and runs in its own session, so
``stop()`` can end it and whatever it started. What differs from a production install, and why:

- Authentication: static bearer tokens (``--token-auth-file``) per component, one CA and one serving
  certificate for 127.0.0.1 (``pki.py``); Kueue runs as its real service account user under the RBAC of
  its module's ``config/components/rbac`` (``kueue-`` prefix, namespace ``kueue-system``).
- Kueue's webhooks and CRD conversion reach the manager at ``https://127.0.0.1:<port>`` (``clientConfig.url``
  with our CA) instead of through ``kueue-webhook-service``: without kube-proxy a Service is not reachable,
  and Kueue's internal certificate management (which patches the service-based configurations) is off.
  Only the webhooks of the kinds this project uses are installed (plain pods and Kueue's own kinds); the
  manager's other integrations are off, so their paths would not be served.
- Kueue v0.17 reads its metrics and visibility certificates from fixed paths (``/etc/kueue/metrics/certs``,
  ``/visibility``) when its own certificate management is off: Kueue runs in a private mount namespace with
  this plane's certificate bound onto those paths (``unshare``; the tests run as root, as on CI), so
  concurrent test runs, each with its own CA, do not overwrite each other's.
- The visibility API (an aggregated API the manager serves) is reached through an ``ExternalName`` Service
  for ``localhost`` whose port the APIService names; the API server runs with the aggregation layer's
  request-header flags and a front-proxy client certificate, as kubeadm configures it.
- ``--endpoint-reconciler-type=none``: the ``kubernetes`` Service cannot point at a loopback address.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import ctypes
import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from tests.ports import free_port

from . import build
from .pki import Pki
from .rest import ApiError, Rest

YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are megabytes: C, not Python

#: Kueue webhooks installed: plain pods and Kueue's own kinds (the manager serves only enabled integrations)
KUEUE_WEBHOOK_KINDS = {"pods", "workloads", "clusterqueues", "localqueues", "resourceflavors", "cohorts"}
#: where Kueue v0.17 looks for its metrics certificate when its internal certificate management is off
METRICS_CERT_DIR = "/etc/kueue/metrics/certs"
#: where its visibility server looks for its certificate then (pkg/visibility/server.go)
VISIBILITY_CERT_DIR = "/visibility"
#: CRDs whose versions Kueue converts (its config/components/crd/kustomization.yaml enables these patches)
KUEUE_CONVERTED = {"localqueues", "clusterqueues", "cohorts", "workloads", "multikueueclusters"}


try:  # resolved here, not between fork and exec (no dlopen in a child forked from a threaded process)
    _PRCTL: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _PRCTL = None


def _die_with_parent() -> None:
    """In the child: be killed when the test process dies, even by SIGKILL (a timed-out CI step), so no
    control plane outlives its tests (Linux ``PR_SET_PDEATHSIG``)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1


class StartError(RuntimeError):
    pass


class Plane:
    """One member's control plane. ``start()`` returns when Kueue's webhooks answer."""

    def __init__(self, name: str, root: Path, pki: Pki):
        self.name = name
        self.root = root
        self.pki = pki
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.webhook_port = free_port()
        self.timings: dict[str, float] = {}
        (root / "logs").mkdir(parents=True, exist_ok=True)
        self.rest = Rest(self.url, pki.tokens["admin"], str(pki.ca))

    # -- processes -----------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = open(self.root / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - the child holds it
        self.procs[name] = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            env={**os.environ, **(env or {})},
            cwd=self.root,
        )
        log.close()

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            text = (self.root / "logs" / f"{name}.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _wait(self, what: str, proc: str, check: Any, timeout: float) -> None:
        end = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < end:
            p = self.procs.get(proc)
            if p is not None and p.poll() is not None:
                raise StartError(
                    f"{self.name}: {proc} exited with {p.returncode} while {what}:\n{self.log_tail(proc)}"
                )
            try:
                if check():
                    return
            except Exception as exc:  # noqa: BLE001 - remembered for the error below
                last = exc
            time.sleep(0.1)
        raise StartError(
            f"{self.name}: timed out after {timeout:.0f} s {what} (last: {last}):\n{self.log_tail(proc)}"
        )

    def kubeconfig(self, user: str) -> Path:
        path = self.root / f"{user}.kubeconfig"
        if not path.exists():
            path.write_text(yaml.safe_dump(kubeconfig_doc({self.name: self}, user)))
            path.chmod(0o600)
        return path

    # -- start ---------------------------------------------------------------------------------------

    def start(self) -> Plane:
        t0 = time.monotonic()
        try:
            self._start_etcd()
            self._start_apiserver()
            self._start_controllers()
            self._install_kueue()
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - t0
        return self

    def _start_etcd(self) -> None:
        t0 = time.monotonic()
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._spawn(
            "etcd",
            [
                str(build.ETCD.binary("etcd")),
                "--name",
                self.name,
                "--data-dir",
                str(self.root / "etcd"),
                "--listen-client-urls",
                self.etcd_url,
                "--advertise-client-urls",
                self.etcd_url,
                "--listen-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{peer}",
                "--initial-cluster",
                f"{self.name}=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
        )

        def healthy() -> bool:
            with socket.create_connection(("127.0.0.1", client), timeout=0.5):
                return True

        self._wait("waiting for etcd", "etcd", healthy, 30)
        self.timings["etcd"] = time.monotonic() - t0

    def _start_apiserver(self) -> None:
        t0 = time.monotonic()
        p = self.pki
        self._spawn(
            "kube-apiserver",
            [
                str(build.KUBERNETES.binary("kube-apiserver")),
                "--etcd-servers",
                self.etcd_url,
                "--bind-address",
                "127.0.0.1",
                "--advertise-address",
                "127.0.0.1",
                "--secure-port",
                str(self.port),
                "--tls-cert-file",
                str(p.cert),
                "--tls-private-key-file",
                str(p.key),
                "--client-ca-file",
                str(p.ca),
                "--token-auth-file",
                str(p.token_file),
                "--service-account-issuer",
                "https://kubernetes.default.svc.cluster.local",
                "--service-account-key-file",
                str(p.sa_pub),
                "--service-account-signing-key-file",
                str(p.sa_key),
                "--service-cluster-ip-range",
                "10.96.0.0/24",
                "--authorization-mode",
                "Node,RBAC",
                "--endpoint-reconciler-type",
                "none",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--cert-dir",
                str(self.root / "apiserver-certs"),
                # the aggregation layer, for Kueue's visibility API
                "--requestheader-client-ca-file",
                str(p.ca),
                "--requestheader-allowed-names",
                "front-proxy-client",
                "--requestheader-username-headers",
                "X-Remote-User",
                "--requestheader-group-headers",
                "X-Remote-Group",
                "--requestheader-extra-headers-prefix",
                "X-Remote-Extra-",
                "--proxy-client-cert-file",
                str(p.proxy_cert),
                "--proxy-client-key-file",
                str(p.proxy_key),
                "--v",
                "1",
            ],
        )

        def ready() -> bool:
            return self.rest.request("GET", "/readyz") == "ok"

        self._wait("waiting for kube-apiserver /readyz", "kube-apiserver", ready, 90)
        self.timings["kube-apiserver"] = time.monotonic() - t0

    def _start_controllers(self) -> None:
        t0 = time.monotonic()
        p = self.pki
        self._spawn(
            "kube-controller-manager",
            [
                str(build.KUBERNETES.binary("kube-controller-manager")),
                "--kubeconfig",
                str(self.kubeconfig("controller-manager")),
                "--leader-elect=false",
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                str(free_port()),
                "--service-account-private-key-file",
                str(p.sa_key),
                "--root-ca-file",
                str(p.ca),
                "--use-service-account-credentials=true",
                "--cert-dir",
                str(self.root / "kcm-certs"),
                "--concurrent-gc-syncs",
                "5",
                "--v",
                "1",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(build.KUBERNETES.binary("kube-scheduler")),
                "--kubeconfig",
                str(self.kubeconfig("scheduler")),
                "--leader-elect=false",
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                str(free_port()),
                "--cert-dir",
                str(self.root / "scheduler-certs"),
                "--v",
                "1",
            ],
        )

        def default_sa() -> bool:  # the serviceaccount controller runs: pods can be created in `default`
            return self.rest.find("v1", "ServiceAccount", "default", "default") is not None

        self._wait(
            "waiting for the controller-manager (default service account)",
            "kube-controller-manager",
            default_sa,
            60,
        )
        self.timings["controllers"] = time.monotonic() - t0

    # -- Kueue -----------------------------------------------------------------------------------------

    def _install_kueue(self) -> None:
        t0 = time.monotonic()
        config = build.KUEUE.directory / "config"
        ca = base64.b64encode(self.pki.ca.read_bytes()).decode()
        hook = f"https://127.0.0.1:{self.webhook_port}"
        for path in sorted((config / "crd" / "bases").glob("*.yaml")):
            crd = yaml.load(path.read_text(), Loader=YAML_LOADER)
            if crd["spec"]["names"]["plural"] in KUEUE_CONVERTED:
                crd["spec"]["conversion"] = {
                    "strategy": "Webhook",
                    "webhook": {
                        "conversionReviewVersions": ["v1"],
                        "clientConfig": {"url": f"{hook}/convert", "caBundle": ca},
                    },
                }
            self.rest.apply(crd)
        self.rest.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kueue-system"}})
        for obj in _kueue_rbac(config / "rbac"):
            self.rest.apply(obj)

        def established() -> bool:
            crds = self.rest.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
            ours = [c for c in crds if c["spec"]["group"] == "kueue.x-k8s.io"]
            return bool(ours) and all(
                any(
                    c["type"] == "Established" and c["status"] == "True"
                    for c in x.get("status", {}).get("conditions", [])
                )
                for x in ours
            )

        self._wait("waiting for Kueue's CRDs to be established", "kube-apiserver", established, 30)
        certs = self.root / "kueue-certs"
        certs.mkdir(exist_ok=True)
        (certs / "tls.crt").write_bytes(self.pki.cert.read_bytes())
        (certs / "tls.key").write_bytes(self.pki.key.read_bytes())
        # With its own certificate management off, Kueue v0.17 reads the metrics server's certificate from a
        # fixed path (cmd/kueue/main.go) even when metrics are off, and its visibility server reads its own
        # from another fixed path, /visibility. Kueue runs in a mount namespace of its own where this plane's
        # pair is bound onto those paths, so planes of concurrent test runs (each with its own CA) never
        # overwrite each other's certificates, and nothing is left in /etc.
        fixed = {}
        for directory in (METRICS_CERT_DIR, VISIBILITY_CERT_DIR):
            own = self.root / "kueue-fixed-certs" / directory.strip("/").replace("/", "-")
            _install_pair(own, self.pki)
            fixed[directory] = own
        self.visibility_port = free_port()
        health = free_port()
        cfg = self.root / "kueue-config.yaml"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "config.kueue.x-k8s.io/v1beta2",
                    "kind": "Configuration",
                    "namespace": "kueue-system",
                    "health": {"healthProbeBindAddress": f"127.0.0.1:{health}"},
                    "metrics": {"bindAddress": "0"},
                    "webhook": {"port": self.webhook_port, "host": "127.0.0.1", "certDir": str(certs)},
                    "leaderElection": {"leaderElect": False},
                    "internalCertManagement": {"enable": False},
                    "manageJobsWithoutQueueName": False,
                    "integrations": {"frameworks": ["pod"]},
                    "visibilityServer": {"bindAddress": "127.0.0.1", "bindPort": self.visibility_port},
                }
            )
        )
        # before the manager starts: its visibility server reads the request-header configuration at start-up
        for obj in _kueue_visibility(config / "visibility", self.visibility_port):
            self.rest.apply(obj)
        self._spawn(
            "kueue",
            _in_own_mounts(fixed)
            + [
                str(build.KUEUE.binary("kueue")),
                f"--config={cfg}",
                f"--kubeconfig={self.kubeconfig('kueue')}",
                f"--visibility-server-port={self.visibility_port}",
                "--zap-log-level=2",
            ],
        )

        def kueue_ready() -> bool:
            with socket.create_connection(("127.0.0.1", self.webhook_port), timeout=0.5):
                pass
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz", timeout=1) as resp:
                return resp.status == 200

        self._wait("waiting for Kueue's webhook server and /readyz", "kueue", kueue_ready, 60)
        for obj in _kueue_webhooks(config / "webhook" / "manifests.yaml", hook, ca):
            self.rest.apply(obj)

        def visibility_available() -> bool:
            api = self.rest.find(
                "apiregistration.k8s.io/v1", "APIService", "v1beta2.visibility.kueue.x-k8s.io"
            )
            conds = (api or {}).get("status", {}).get("conditions") or []
            return any(c["type"] == "Available" and c["status"] == "True" for c in conds)

        self._wait(
            "waiting for Kueue's visibility API (APIService Available)", "kueue", visibility_available, 60
        )
        self.timings["kueue"] = time.monotonic() - t0

    # -- stop ------------------------------------------------------------------------------------------

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            try:  # the API server drains its watches for 10+ s on SIGTERM; the plane's data is thrown away
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs.clear()


#: the manager's own RBAC from config/components/rbac/kustomization.yaml (not the user-facing roles)
KUEUE_RBAC = (
    "role",
    "role_binding",
    "leader_election_role",
    "leader_election_role_binding",
    "manager_secrets_role",
    "manager_secrets_role_binding",
)


def _kueue_rbac(rbac: Path) -> list[dict[str, Any]]:
    """The manager's roles and bindings as Kueue's kustomization names them (prefix ``kueue-``, namespace
    ``kueue-system``)."""
    out = []
    for name in KUEUE_RBAC:
        obj = yaml.safe_load((rbac / f"{name}.yaml").read_text())
        obj["metadata"]["name"] = "kueue-" + obj["metadata"]["name"]
        if obj["metadata"].get("namespace") == "system":
            obj["metadata"]["namespace"] = "kueue-system"
        if "roleRef" in obj:
            obj["roleRef"]["name"] = "kueue-" + obj["roleRef"]["name"]
            for s in obj["subjects"]:
                s["name"], s["namespace"] = "kueue-" + s["name"], "kueue-system"
        out.append(obj)
    return out


def _in_own_mounts(binds: dict[str, Path]) -> list[str]:
    """A command prefix that runs the rest of the command line in a private mount namespace in which each
    ``binds`` target (created if missing) shows the given directory (``unshare`` then ``sh`` exec into the
    command, so it keeps the PID, the session and the parent-death signal)."""
    script = []
    for target, source in binds.items():
        Path(target).mkdir(parents=True, exist_ok=True)
        script.append(f"mount --bind {shlex.quote(str(source))} {shlex.quote(target)}")
    script.append('exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", " && ".join(script), "sh"]


def _install_pair(directory: Path, pki: Pki) -> None:
    """The serving certificate as ``tls.crt``/``tls.key`` in ``directory``, replaced atomically (a running
    Kueue watches these files) and only when different (every member shares them)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, source in (("tls.crt", pki.cert), ("tls.key", pki.key)):
        data, target = source.read_bytes(), directory / name
        if not target.exists() or target.read_bytes() != data:
            tmp = directory / f".{name}.{os.getpid()}"
            tmp.write_bytes(data)
            tmp.chmod(0o600)
            tmp.replace(target)


def _kueue_visibility(visibility: Path, port: int) -> list[dict[str, Any]]:
    """Kueue's visibility API from config/components/visibility, reached without kube-proxy.

    The Service becomes ``type: ExternalName`` for ``localhost`` and each APIService names the server's port:
    for an ExternalName Service the aggregator dials ``<externalName>:<APIService port>`` (apiserver's
    ``proxy.ResolveCluster``). The APIServices keep upstream's ``insecureSkipTLSVerify``. The manager also
    needs ``system:auth-delegator`` to authenticate and authorize the requests the aggregator forwards
    (token and subject access reviews), as every extension API server does.
    """
    out: list[dict[str, Any]] = []
    for name in ("apiservice_v1beta1", "apiservice_v1beta2"):
        api = yaml.safe_load((visibility / f"{name}.yaml").read_text())
        api["spec"]["service"] = {
            "name": "kueue-visibility-server",
            "namespace": "kueue-system",
            "port": port,
        }
        out.append(api)
    service = yaml.safe_load((visibility / "service.yaml").read_text())
    service["metadata"]["name"] = "kueue-visibility-server"
    service["spec"] = {"type": "ExternalName", "externalName": "localhost"}
    reader = yaml.safe_load((visibility / "role_binding.yaml").read_text())
    reader["metadata"]["name"] = "kueue-" + reader["metadata"]["name"]
    for subject in reader["subjects"]:
        subject["name"], subject["namespace"] = "kueue-" + subject["name"], "kueue-system"
    delegator = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "kueue-visibility-server-auth-delegator"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "system:auth-delegator",
        },
        "subjects": reader["subjects"],
    }
    return [service, reader, delegator, *out]


def _kueue_webhooks(manifests: Path, url: str, ca: str) -> list[dict[str, Any]]:
    """Kueue's webhook configurations, limited to the kinds used here and pointed at the manager's port."""
    out = []
    for doc in yaml.safe_load_all(manifests.read_text()):
        if not doc:
            continue
        doc = copy.deepcopy(doc)
        doc["metadata"]["name"] = "kueue-" + doc["metadata"]["name"]
        hooks = []
        for hook in doc["webhooks"]:
            resources = {r for rule in hook.get("rules", []) for r in rule.get("resources", [])}
            if not resources & KUEUE_WEBHOOK_KINDS:
                continue
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": url + path, "caBundle": ca}
            if "pods" in resources:  # config/components/webhook/kustomization.yaml's patch
                hook["namespaceSelector"] = {
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "NotIn",
                            "values": ["kube-system", "kueue-system"],
                        }
                    ]
                }
            hooks.append(hook)
        doc["webhooks"] = hooks
        out.append(doc)
    return out


def kubeconfig_doc(planes: dict[str, Plane], user: str = "admin") -> dict[str, Any]:
    """A kubeconfig with one context per plane (named after it), all authenticating as ``user``."""
    any_plane = next(iter(planes.values()))
    ca = base64.b64encode(any_plane.pki.ca.read_bytes()).decode()
    token = any_plane.pki.tokens[user]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": n, "cluster": {"server": p.url, "certificate-authority-data": ca}}
            for n, p in planes.items()
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": user}} for n in planes],
        "current-context": next(iter(planes)),
    }


def wait_api(rest: Rest, fn: Any, timeout: float = 30.0, what: str = "") -> Any:
    """Poll ``fn()`` (API errors count as not yet) until truthy; fail saying ``what``."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        try:
            value = fn()
            if value:
                return value
        except ApiError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or fn} (last error: {last})")
