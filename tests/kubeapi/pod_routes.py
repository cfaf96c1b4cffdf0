"""The pod subresources a scheduler or a drain tool POSTs: ``binding`` and ``eviction``.

Kept apart from the generic REST code because they are pod-specific actions, not object writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .conditions import set_condition
from .errors import ApiError, bad_request, conflict, success_status
from .responses import JsonResponse, Request

if TYPE_CHECKING:
    from .rest import Target
    from .server import KubeApiServer


def install(server: KubeApiServer) -> None:
    pods = server.registry.get("", "pods")

    def binding(req: Request, target: Target) -> JsonResponse:
        if req.method != "POST":
            raise ApiError(405, "MethodNotAllowed", "binding supports only POST")
        body = req.json() or {}
        node = (body.get("target") or {}).get("name")
        if not node:
            raise bad_request("binding target.name (the node) is required")
        name = target.name or ""

        def bind(pod: dict[str, Any]) -> None:
            if pod["spec"].get("nodeName"):
                raise conflict(
                    "pods", name, why=f'pod {name} is already assigned to node "{pod["spec"]["nodeName"]}"'
                )
            pod["spec"]["nodeName"] = node
            set_condition(pod.setdefault("status", {}), "PodScheduled", "True", "", "")

        if server.store.mutate(pods, target.namespace, name, bind) is None:
            raise ApiError(404, "NotFound", f'pods "{name}" not found')
        return JsonResponse(201, success_status())

    def eviction(req: Request, target: Target) -> JsonResponse:
        if req.method != "POST":
            raise ApiError(405, "MethodNotAllowed", "eviction supports only POST")
        server.store.delete(pods, target.namespace, target.name or "")
        return JsonResponse(201, success_status())

    server.rest.add_route("", "pods", "binding", binding)
    server.rest.add_route("", "pods", "eviction", eviction)
