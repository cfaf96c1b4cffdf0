"""``KubeApiServer``: one test apiserver (store, REST, faults, controllers) on 127.0.0.1, in a thread.

A private member, a public member and a Karmada control plane are three instances of this class, each with
the controllers it needs. Start-up is fast (well under half a second once the CRD YAML has been parsed
in the process; parsing happens once).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import core, pod_routes
from .errors import ApiError
from .faults import Faults
from .handlers import ApiHTTPServer
from .resources import BUILTINS, KARMADA_CLUSTER, Registry, ResourceType, resource_from_crd
from .rest import KubeRest
from .schema import load_crds
from .store import Obj, Store

YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are megabytes: C, not Python

if TYPE_CHECKING:
    import kubernetes.client

    from .controllers.base import Controller

VERSION_INFO = {
    "major": "1",
    "minor": "34",
    "gitVersion": "v1.34.0-mlp-test",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-08-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


class KubeApiServer:
    """A Kubernetes API on ``127.0.0.1:<port>``; ``start()`` / ``stop()`` or use as a context manager."""

    def __init__(
        self,
        name: str = "test",
        *,
        crd_dir: str | Path | None = None,
        namespaces: Iterable[str] = ("default", "kube-system", "kube-public", "kube-node-lease"),
        extra_types: Iterable[ResourceType] = (),
    ):
        self.name = name
        self.registry = Registry(BUILTINS)
        self.registry.add(KARMADA_CLUSTER)
        for rtype in extra_types:
            self.registry.add(rtype)
        self.store = Store(self.registry)
        self.store.admission.append(core.apply_defaults)
        self.store.validators.append(core.validate)
        self.rest = KubeRest(self.store, self.registry, dict(VERSION_INFO))
        self.faults = Faults()
        self.rest.watch_fault = self.faults.watch_drop
        pod_routes.install(self)
        self.controllers: list[Controller] = []
        self.requests: deque[tuple[str, str]] = deque(maxlen=5000)
        self.kubeconfig_path: str | None = None
        self.context: str = name
        self._http: ApiHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._installing = False
        self.store.subscribe(self._on_crd_change)
        self.crd_dir = Path(crd_dir) if crd_dir else None
        if self.crd_dir is not None and self.crd_dir.is_dir():
            for crd in load_crds(str(self.crd_dir)):
                self.install_crd(crd)
        for ns in namespaces:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> KubeApiServer:
        self._http = ApiHTTPServer(("127.0.0.1", 0), self)
        self.rest.server_address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"kubeapi-{self.name}",
            daemon=True,
        )
        self._thread.start()
        for controller in self.controllers:
            controller.start()
        return self

    def stop(self) -> None:
        for controller in reversed(self.controllers):
            controller.stop()
        self.rest.stopping.set()
        self.store.close_watches()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_controller(self, controller: Controller) -> Controller:
        self.controllers.append(controller)
        if self._http is not None:
            controller.start()
        return controller

    def controller(self, name: str) -> Any:
        return next(c for c in self.controllers if c.name == name)

    @property
    def port(self) -> int:
        assert self._http is not None, "server not started"
        return int(self._http.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def record_request(self, method: str, path: str) -> None:
        self.requests.append((method, path))

    def api_client(self) -> kubernetes.client.ApiClient:
        """A ``kubernetes`` ApiClient for this server (from the generated kubeconfig when there is one)."""
        from kubernetes import client, config

        if self.kubeconfig_path:
            return config.new_client_from_config(config_file=self.kubeconfig_path, context=self.context)
        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    # -- CRDs ----------------------------------------------------------------------------------------

    def install_crd(self, crd: Obj) -> ResourceType:
        rtype = resource_from_crd(crd)
        self.registry.add(rtype)
        crd_type = self.registry.get("apiextensions.k8s.io", "customresourcedefinitions")
        if self.store.find(crd_type, None, crd["metadata"]["name"]) is None:
            # The stored copy elides the (megabyte-sized) schemas: deep-copying them on every read would make
            # start-up slow, and clients read CRDs only to learn what is installed. rtype.schemas validates.
            spec = dict(crd["spec"])
            spec["versions"] = [
                {
                    **v,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                            "description": "schema elided by the test apiserver (it validates with it)",
                        }
                    },
                }
                for v in crd["spec"]["versions"]
            ]
            stored = {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {
                    "name": crd["metadata"]["name"],
                    "annotations": dict(crd["metadata"].get("annotations") or {}),
                },
                "spec": spec,
                "status": {
                    "conditions": [
                        {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}
                    ],
                    "acceptedNames": crd["spec"]["names"],
                    "storedVersions": [rtype.storage_version],
                },
            }
            self._installing = True
            try:
                self.store.create(crd_type, stored)
            finally:
                self._installing = False
        return rtype

    def _on_crd_change(self, event: Any) -> None:
        """CRDs created or deleted through the API start or stop being served, as on a real cluster."""
        if event.rtype.key != ("apiextensions.k8s.io", "customresourcedefinitions") or self._installing:
            return
        if event.type == "ADDED":
            self.registry.add(resource_from_crd(event.new))
        elif event.type == "DELETED":
            spec = event.new["spec"]
            self.registry.remove(spec["group"], spec["names"]["plural"])

    # -- in-process convenience (tests and fixtures; no HTTP) -----------------------------------------

    def rtype(self, api_version: str, kind: str) -> ResourceType:
        rtype = self.registry.by_kind(api_version, kind)
        if rtype is None:
            raise KeyError(f"{kind} ({api_version}) is not served by the test apiserver {self.name!r}")
        return rtype

    def create(self, obj: Obj, validate: bool = True) -> Obj:
        """Create ``obj`` as if POSTed (defaults, CRD schema validation, admission)."""
        rtype = self.rtype(obj["apiVersion"], obj["kind"])
        version = obj["apiVersion"].rpartition("/")[2]
        stored = self.rest.into_storage(rtype, _copy(obj), version) if validate else _copy(obj)
        return self.store.create(rtype, stored, obj.get("metadata", {}).get("namespace"))

    def apply(self, obj: Obj) -> Obj:
        """Create ``obj``, or replace the existing object of that name (like ``kubectl apply``)."""
        rtype = self.rtype(obj["apiVersion"], obj["kind"])
        m = obj.get("metadata", {})
        existing = self.store.find(rtype, m.get("namespace"), m["name"])
        if existing is None:
            return self.create(obj)
        version = obj["apiVersion"].rpartition("/")[2]
        incoming = self.rest.into_storage(rtype, _copy(obj), version)
        incoming["metadata"] = {
            **existing["metadata"],
            **{k: v for k, v in incoming["metadata"].items() if k in ("labels", "annotations")},
        }
        return self.store.update(rtype, incoming, m.get("namespace"), m["name"])

    def apply_yaml(self, text_or_path: str | Path) -> list[Obj]:
        """Apply every document of a YAML string or file."""
        text = (
            Path(text_or_path).read_text()
            if isinstance(text_or_path, Path)
            or (isinstance(text_or_path, str) and "\n" not in text_or_path and Path(text_or_path).exists())
            else str(text_or_path)
        )
        return [self.apply(doc) for doc in yaml.load_all(text, Loader=YAML_LOADER) if doc]

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj:
        return self.store.get(self.rtype(api_version, kind), namespace, name)

    def find(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        return self.store.find(self.rtype(api_version, kind), namespace, name)

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[Obj]:
        return self.store.list(self.rtype(api_version, kind), namespace)[0]

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, grace: int | None = None
    ) -> Obj | None:
        try:
            return self.store.delete(self.rtype(api_version, kind), namespace, name, grace)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def wait_for(self, predicate: Any, timeout: float = 30.0, interval: float = 0.05, what: str = "") -> Any:
        """Poll ``predicate()`` until it returns a truthy value; TimeoutError says what was awaited."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"test apiserver {self.name!r}: timed out after {timeout}s waiting for "
                    f"{what or predicate}"
                )
            time.sleep(interval)


def _copy(obj: Obj) -> Obj:
    import copy

    return copy.deepcopy(obj)
