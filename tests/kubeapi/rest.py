"""REST semantics of the Kubernetes API over the store: routing, verbs, versions, patches, list and watch.

``KubeRest.dispatch`` turns a parsed ``Request`` into a response. Extension routes (pod logs, the Karmada
cluster proxy, the Kueue visibility API) are registered by controllers with ``add_route`` and are tried
before the generic resource handling, exactly like aggregated APIs sit in front of a real apiserver.
"""

from __future__ import annotations

import base64
import copy
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from . import discovery
from .errors import (
    ApiError,
    bad_request,
    gone,
    method_not_allowed,
    not_found,
    success_status,
    unsupported_media_type,
)
from .patch import json_patch, merge_patch, strategic_merge_patch
from .resources import Registry, ResourceType
from .responses import DropConnection, JsonResponse, Request, StreamResponse
from .schema import default_and_prune, validate_custom_object
from .selectors import parse_field_selector, parse_label_selector
from .store import Obj, Store, Watcher

#: fn(request, target) -> response; target carries namespace, name and the path after the subresource.
Route = Callable[[Request, "Target"], Any]


@dataclass
class Target:
    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None
    subpath: str
    watch_prefix: bool = False


def parse_path(path: str) -> Target | None:
    parts = [p for p in path.split("/") if p != ""]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    watch_prefix = False
    if rest and rest[0] == "watch":
        watch_prefix, rest = True, rest[1:]
    if not rest:
        return Target(group, version, "", None, None, None, "", watch_prefix)
    namespace = None
    if (
        rest[0] == "namespaces"
        and len(rest) >= 3
        and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
    ):
        namespace, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    subpath = "/" + "/".join(rest[3:]) if len(rest) > 3 else ""
    if path.endswith("/") and len(rest) > 3:
        subpath += "/"
    return Target(group, version, plural, namespace, name, sub, subpath, watch_prefix)


def _truthy(value: str | None) -> bool:
    return value in ("true", "1", "True")


class KubeRest:
    """Verbs over the store for one server; also owns watch streaming and extension routes."""

    def __init__(self, store: Store, registry: Registry, version_info: dict[str, Any]):
        self.store = store
        self.registry = registry
        self.version_info = version_info
        self.routes: dict[tuple[str, str, str | None], Route] = {}
        self.stopping = threading.Event()
        self.bookmark_interval = 1.0
        #: fault hook: fn(stream start time, path) -> None keep, False abort the connection, True end cleanly
        self.watch_fault: Callable[[float, str], bool | None] = lambda started, path: None
        self.server_address = "127.0.0.1:0"

    def add_route(self, group: str, plural: str, subresource: str | None, route: Route) -> None:
        self.routes[(group, plural, subresource)] = route

    # -- entry point ---------------------------------------------------------------------------------

    def dispatch(self, req: Request) -> Any:
        path = req.path
        static = discovery.static_route(self, path)
        if static is not None:
            return static
        target = parse_path(path)
        if target is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not target.plural:
            body = discovery.resource_list(self.registry, target.group, target.version)
            if body is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return JsonResponse(200, body)
        route = self.routes.get((target.group, target.plural, target.subresource))
        if route is not None and (target.subresource is not None or target.name is None):
            return route(req, target)
        rtype = self.registry.lookup(target.group, target.version, target.plural)
        if rtype is None or rtype.virtual:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if target.subresource and target.subresource not in rtype.subresources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if rtype.namespaced and target.namespace is None and (target.name or req.method != "GET"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        ns = target.namespace if rtype.namespaced else None
        handler = {
            "GET": self._get,
            "POST": self._post,
            "PUT": self._put,
            "PATCH": self._patch,
            "DELETE": self._delete,
        }.get(req.method)
        if handler is None:
            raise method_not_allowed(f"method {req.method} is not supported")
        return handler(req, target, rtype, ns)

    # -- versions and validation ---------------------------------------------------------------------

    def out(self, rtype: ResourceType, obj: Obj, version: str) -> Obj:
        return self.registry.convert(rtype, obj, version)

    def into_storage(
        self, rtype: ResourceType, obj: Obj, version: str, subresource: str | None = None
    ) -> Obj:
        if not isinstance(obj, dict):
            raise bad_request("the request body must be a JSON object")
        kind = obj.get("kind")
        if kind and kind != rtype.kind:
            raise bad_request(
                f"the kind {kind!r} of the body does not match the resource {rtype.plural!r} ({rtype.kind})"
            )
        obj["apiVersion"] = rtype.api_version(version)
        obj["kind"] = rtype.kind
        schema = rtype.schemas.get(version)
        if schema is not None:
            obj = default_and_prune(obj, schema, root=True)
            validate_custom_object(obj, schema, rtype.kind, rtype.group)
        return self.registry.convert(rtype, obj, rtype.storage_version)

    # -- verbs ---------------------------------------------------------------------------------------

    def _get(self, req: Request, t: Target, rtype: ResourceType, ns: str | None) -> Any:
        if t.name is None:
            if t.watch_prefix or _truthy(req.query.get("watch")):
                return self._watch(req, t, rtype, ns)
            return self._list(req, t, rtype, ns)
        obj = self.store.get(rtype, ns, t.name)
        return JsonResponse(200, self.out(rtype, obj, t.version))

    def _list(self, req: Request, t: Target, rtype: ResourceType, ns: str | None) -> JsonResponse:
        items, rv = self.store.list(
            rtype,
            ns,
            parse_label_selector(req.query.get("labelSelector")),
            parse_field_selector(req.query.get("fieldSelector")),
        )
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        start = 0
        if req.query.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(req.query["continue"]))
                start, rv = int(token["start"]), int(token["rv"])
            except (ValueError, KeyError, TypeError):
                raise bad_request("continue key is not valid") from None
            meta["resourceVersion"] = str(rv)
        limit = int(req.query.get("limit") or 0)
        if limit > 0:
            end = start + limit
            if end < len(items):
                meta["continue"] = base64.urlsafe_b64encode(
                    json.dumps({"start": end, "rv": rv}).encode()
                ).decode()
                meta["remainingItemCount"] = len(items) - end
            items = items[start:end]
        else:
            items = items[start:]
        return JsonResponse(
            200,
            {
                "kind": rtype.list_kind,
                "apiVersion": rtype.api_version(t.version),
                "metadata": meta,
                "items": [self.out(rtype, item, t.version) for item in items],
            },
        )

    def _post(self, req: Request, t: Target, rtype: ResourceType, ns: str | None) -> Any:
        if t.name is not None:
            raise method_not_allowed(f"POST is not supported on {rtype.plural}/{t.name}")
        body = self._body(req)
        obj = self.into_storage(rtype, body, t.version)
        created = self.store.create(rtype, obj, ns, dry_run=req.query.get("dryRun") == "All")
        return JsonResponse(201, self.out(rtype, created, t.version))

    def _put(self, req: Request, t: Target, rtype: ResourceType, ns: str | None) -> Any:
        if t.name is None:
            raise method_not_allowed("PUT needs a resource name")
        obj = self.into_storage(rtype, self._body(req), t.version, t.subresource)
        updated = self.store.update(
            rtype, obj, ns, t.name, subresource=t.subresource, dry_run=req.query.get("dryRun") == "All"
        )
        return JsonResponse(200, self.out(rtype, updated, t.version))

    def _patch(self, req: Request, t: Target, rtype: ResourceType, ns: str | None) -> Any:
        if t.name is None:
            raise method_not_allowed("PATCH needs a resource name")
        ctype = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
        existing = self.store.find(rtype, ns, t.name)
        if existing is None and ctype == "application/apply-patch+yaml" and t.subresource is None:
            # Server-side apply creates missing objects (field ownership is not tracked here).
            body = yaml.safe_load(req.body.decode() or "{}") or {}
            body.setdefault("metadata", {})["name"] = t.name
            created = self.store.create(rtype, self.into_storage(rtype, body, t.version), ns)
            return JsonResponse(201, self.out(rtype, created, t.version))
        if existing is None:
            raise not_found(rtype.plural, t.name, rtype.group)
        # As the real API server does (GuaranteedUpdate): a patch applies to the latest object, and a conflict
        # with a concurrent writer (the test kubelet's status updates) is retried, not returned as 409. Only a
        # patch that names a resourceVersion itself may conflict.
        for attempt in range(10):
            try:
                return self._patch_once(req, t, rtype, ns, ctype, existing)
            except ApiError as exc:
                pinned = b'"resourceVersion"' in req.body
                if exc.code != 409 or pinned or attempt == 9:
                    raise
                existing = self.store.find(rtype, ns, t.name)
                if existing is None:
                    raise not_found(rtype.plural, t.name, rtype.group) from None
        raise AssertionError("unreachable")

    def _patch_once(
        self, req: Request, t: Target, rtype: ResourceType, ns: str | None, ctype: str, existing: Any
    ) -> Any:
        current = self.out(rtype, existing, t.version)
        try:
            if ctype == "application/json-patch+json":
                patched = json_patch(current, self._body(req, want=list))
            elif ctype == "application/merge-patch+json":
                patched = merge_patch(current, self._body(req))
            elif ctype == "application/strategic-merge-patch+json":
                if rtype.is_crd or rtype.key == ("cluster.karmada.io", "clusters"):
                    raise unsupported_media_type(ctype)
                patched = strategic_merge_patch(current, self._body(req))
            elif ctype == "application/apply-patch+yaml":
                patched = merge_patch(current, yaml.safe_load(req.body.decode() or "{}"))
            else:
                raise unsupported_media_type(ctype)
        except (TypeError, AttributeError) as exc:
            raise bad_request(f"the patch could not be applied: {exc}") from None
        if t.subresource == "status" and isinstance(patched, dict):
            patched.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        obj = self.into_storage(rtype, patched, t.version, t.subresource)
        updated = self.store.update(
            rtype, obj, ns, t.name, subresource=t.subresource, dry_run=req.query.get("dryRun") == "All"
        )
        return JsonResponse(200, self.out(rtype, updated, t.version))

    def _delete(self, req: Request, t: Target, rtype: ResourceType, ns: str | None) -> Any:
        opts = self._body(req, optional=True) or {}
        grace = opts.get("gracePeriodSeconds", req.query.get("gracePeriodSeconds"))
        propagation = opts.get("propagationPolicy") or req.query.get("propagationPolicy")
        if opts.get("orphanDependents") is True:
            propagation = "Orphan"
        dry_run = req.query.get("dryRun") == "All" or "All" in (opts.get("dryRun") or [])
        if t.name is None:
            items, _ = self.store.list(
                rtype,
                ns,
                parse_label_selector(req.query.get("labelSelector")),
                parse_field_selector(req.query.get("fieldSelector")),
            )
            deleted = []
            for item in items:
                try:
                    deleted.append(
                        self.store.delete(
                            rtype,
                            item["metadata"].get("namespace"),
                            item["metadata"]["name"],
                            None if grace is None else int(grace),
                            propagation,
                            dry_run=dry_run,
                        )
                    )
                except ApiError as exc:
                    if exc.code != 404:
                        raise
            return JsonResponse(
                200,
                {
                    "kind": rtype.list_kind,
                    "apiVersion": rtype.api_version(t.version),
                    "metadata": {},
                    "items": [self.out(rtype, d, t.version) for d in deleted],
                },
            )
        obj = self.store.delete(
            rtype,
            ns,
            t.name,
            None if grace is None else int(grace),
            propagation,
            opts.get("preconditions"),
            dry_run=dry_run,
        )
        removed = self.store.find(rtype, ns, t.name) is None
        if removed and not (rtype.is_crd or rtype.key in (("", "pods"), ("", "persistentvolumeclaims"))):
            # Like the apiserver: an immediately deleted object is answered with a Success Status, except
            # for kinds whose registry returns the deleted object (pods, claims, custom resources).
            return JsonResponse(
                200,
                success_status(
                    {
                        "name": t.name,
                        "group": rtype.group,
                        "kind": rtype.plural,
                        "uid": obj["metadata"]["uid"],
                    }
                ),
            )
        return JsonResponse(200, self.out(rtype, obj, t.version))

    def _body(self, req: Request, optional: bool = False, want: type = dict) -> Any:
        if not req.body:
            if optional:
                return None
            raise bad_request("the request body is empty")
        try:
            body = req.json()
        except ValueError as exc:
            raise bad_request(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(body, want):
            raise bad_request(f"the request body must be a JSON {'array' if want is list else 'object'}")
        return body

    # -- watch ---------------------------------------------------------------------------------------

    def _watch(self, req: Request, t: Target, rtype: ResourceType, ns: str | None) -> StreamResponse:
        labels = parse_label_selector(req.query.get("labelSelector"))
        fields = parse_field_selector(req.query.get("fieldSelector"))
        rv = req.query.get("resourceVersion")
        bookmarks = _truthy(req.query.get("allowWatchBookmarks"))
        initial_end = _truthy(req.query.get("sendInitialEvents"))
        timeout = float(req.query["timeoutSeconds"]) if req.query.get("timeoutSeconds") else None
        try:
            watcher = self.store.watch(rtype, ns, labels, fields, rv)
        except ApiError as exc:
            if exc.code != 410:
                raise
            # A real apiserver answers an expired resourceVersion with a 200 stream holding one ERROR event.
            return StreamResponse(iter([_line({"type": "ERROR", "object": gone(exc.message).status()})]))
        return StreamResponse(self._stream(watcher, t, rtype, req.path, bookmarks, initial_end, timeout))

    def _stream(
        self,
        watcher: Watcher,
        t: Target,
        rtype: ResourceType,
        path: str,
        bookmarks: bool,
        initial_end: bool,
        timeout: float | None,
    ) -> Iterator[bytes]:
        deadline = time.monotonic() + timeout if timeout else None
        last_bookmark = time.monotonic()
        initial_pending = initial_end and bookmarks
        started = time.monotonic()
        try:
            while not self.stopping.is_set():
                drop = self.watch_fault(started, path)
                if drop is False:
                    raise DropConnection()
                if drop is True:
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    return
                try:
                    item = watcher.queue.get(timeout=0.1)
                except queue.Empty:
                    item = IDLE
                if item is None:
                    return
                if item is IDLE:
                    if initial_pending:
                        initial_pending = False
                        yield self._bookmark(watcher, rtype, t, initial=True)
                    elif bookmarks and time.monotonic() - last_bookmark >= self.bookmark_interval:
                        last_bookmark = time.monotonic()
                        yield self._bookmark(watcher, rtype, t)
                    else:
                        yield b""
                    continue
                etype, obj = item
                yield _line({"type": etype, "object": self.out(rtype, copy.deepcopy(obj), t.version)})
        finally:
            self.store.stop_watch(watcher)

    def _bookmark(self, watcher: Watcher, rtype: ResourceType, t: Target, initial: bool = False) -> bytes:
        with self.store.lock:
            if not watcher.queue.empty():
                return b""  # an event is waiting; a bookmark now would claim a resourceVersion not yet sent
            rv = self.store.resource_version
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return _line(
            {
                "type": "BOOKMARK",
                "object": {"kind": rtype.kind, "apiVersion": rtype.api_version(t.version), "metadata": meta},
            }
        )


IDLE: tuple[str, dict[str, Any]] = ("IDLE", {})  # sentinel: no event within the poll interval


def _line(event: dict[str, Any]) -> bytes:
    return (json.dumps(event, separators=(",", ":")) + "\n").encode()


def require(store: Store, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
    obj = store.find(rtype, namespace, name)
    if obj is None:
        raise not_found(rtype.plural, name, rtype.group)
    return obj
