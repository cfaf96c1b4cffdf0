"""Discovery documents (/api, /apis, /apis/{group}/{version}, /version, health) built from the registry.

The ``kubernetes`` client needs none of these for typed calls, but ``kubectl``-like tools and the
``dynamic`` client do, and a product that probes ``/apis`` to learn whether Kueue v1beta2 is served must
see the same answer a real cluster gives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .resources import Registry
from .responses import JsonResponse, TextResponse

if TYPE_CHECKING:
    from .rest import KubeRest


def static_route(rest: KubeRest, path: str) -> Any:
    path = path.rstrip("/") or "/"
    if path in ("/healthz", "/readyz", "/livez"):
        return TextResponse(200, "ok")
    if path == "/version":
        return JsonResponse(200, rest.version_info)
    if path == "/api":
        return JsonResponse(
            200,
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": rest.server_address}
                ],
            },
        )
    if path == "/apis":
        return JsonResponse(
            200,
            {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    _group(name, versions) for name, versions in sorted(rest.registry.groups().items())
                ],
            },
        )
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "apis":
        versions = rest.registry.groups().get(parts[1])
        if versions is None:
            return None
        return JsonResponse(200, {"kind": "APIGroup", "apiVersion": "v1", **_group(parts[1], versions)})
    return None


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    resources: list[dict[str, Any]] = []
    for rtype in sorted(registry.all(), key=lambda r: r.plural):
        if rtype.group != group or version not in rtype.versions:
            continue
        if not rtype.virtual:
            entry: dict[str, Any] = {
                "name": rtype.plural,
                "singularName": rtype.singular,
                "namespaced": rtype.namespaced,
                "kind": rtype.kind,
                "verbs": list(rtype.verbs),
            }
            if rtype.short_names:
                entry["shortNames"] = list(rtype.short_names)
            resources.append(entry)
        for sub in rtype.subresources:
            verbs = ["get", "patch", "update"] if sub == "status" else ["get", "create"]
            resources.append(
                {
                    "name": f"{rtype.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rtype.namespaced,
                    "kind": rtype.kind,
                    "verbs": verbs,
                }
            )
    if not resources:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
