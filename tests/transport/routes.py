"""A Gateway API controller for the test's nginx: HTTPRoutes on a real API server become nginx locations.

What a Gateway API implementation (Istio, Envoy Gateway, Cilium) does with the product's objects, reduced to
what the ingress transport needs: each HTTPRoute whose parent is the Gateway named here sends its
``PathPrefix`` to the endpoints of its backend Service, as the real EndpointSlice controller (in
kube-controller-manager) lists them from the Service's selector and the pods' readiness and IPs. So the
test's route from the gateway to the kernel exists only if the backend made the right HTTPRoute and Service,
and the pod carries the label the Service selects. The controller polls (0.3 s) and rewrites nginx's
configuration when the routes change; ``extra`` is added to every location (a test's header rewrite).
"""

from __future__ import annotations

import threading
from typing import Any

from tests.cluster.rest import ApiError, Rest

from .deploy import Member

ROUTES = "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"


class RouteController:
    def __init__(self, member: Member, rest: Rest, namespace: str, gateway: str, extra: str = "") -> None:
        self.member, self.rest, self.namespace, self.gateway, self.extra = (
            member,
            rest,
            namespace,
            gateway,
            extra,
        )
        self.routes: dict[str, str] = {}  # path prefix -> address:port, as nginx has them now
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="test-route-controller")

    def start(self) -> RouteController:
        self.member.start_nginx({})
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            try:
                wanted = self.wanted()
            except (ApiError, OSError) as exc:
                self.errors.append(repr(exc))
                continue
            if wanted != self.routes:
                self.routes = wanted
                self.member.reload_nginx(wanted, self.extra)

    def wanted(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for route in self.rest.get(ROUTES.format(ns=self.namespace))["items"]:
            spec = route["spec"]
            if not any(p.get("name") == self.gateway for p in spec.get("parentRefs") or []):
                continue
            for rule in spec.get("rules") or []:
                upstream = self._upstream(rule.get("backendRefs") or [])
                for match in rule.get("matches") or []:
                    path = match.get("path") or {}
                    if upstream and path.get("type") == "PathPrefix":
                        out[path["value"]] = upstream
        return out

    def _upstream(self, refs: list[dict[str, Any]]) -> str | None:
        for ref in refs:
            selector = f"kubernetes.io/service-name={ref['name']}"
            slices = self.rest.get(SLICES.format(ns=self.namespace), labelSelector=selector)["items"]
            for s in slices:
                port = next((p["port"] for p in s.get("ports") or [] if p.get("port")), None)
                for endpoint in s.get("endpoints") or []:
                    if (endpoint.get("conditions") or {}).get("ready") and port:
                        return f"{endpoint['addresses'][0]}:{port}"
        return None
