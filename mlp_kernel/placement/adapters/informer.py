"""One Kueue resource of one API server, listed once and then followed with a watch.

A queued GPU (auto) kernel re-decides every few seconds; listing every Workload for each decision made the API
server's load grow with notebooks x Workloads (issue 15). An informer lists the resource once, then keeps a
watch open from the list's ``resourceVersion``: the API server sends each change once, and a decision reads
memory. When the watch's ``resourceVersion`` is too old (410 Gone, after etcd compaction) it lists again;
after any other error it marks itself not ``synced`` (readers then read the API server directly, so an
unreachable member still shows as not Ready with the API's error) and lists again after a pause. A client
that may list but not watch (RBAC without ``watch``) stays not synced: listing again every few seconds would
cost more than the direct reads it replaces.

Blocking, with one daemon thread per informer: the kubernetes client is blocking, and this is the adapter's
I/O edge. ``on_change(key, old, new)`` is called under ``lock`` for each change (``new`` None on delete) so a
reader holding ``lock`` sees the objects and anything derived from them at one point of the stream.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes import client as k8s

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
OnChange = Callable[[Key, "dict[str, Any] | None", "dict[str, Any] | None"], None]

#: a watch request is renewed this often (client-go: 5-10 min); 200 gateways x 4 kinds at 60 s were 13 req/s
WATCH_TIMEOUT_S = 300
RETRY_PAUSE_S = 2.0


class Informer:
    """``objects`` of one resource kept current by list + watch; see the module docstring."""

    def __init__(
        self,
        api: k8s.ApiClient,
        group: str,
        version: str,
        plural: str,
        kind: str,
        namespace: str | None,
        lock: threading.RLock,
        on_change: OnChange | None = None,
        call: Callable[..., Any] | None = None,
    ) -> None:
        self.api, self.group, self.version, self.plural, self.kind = api, group, version, plural, kind
        self.namespace = namespace
        self._lister = call  # a core-API list (the queue summary's ConfigMap) instead of a custom resource's
        self.lock = lock
        self.on_change = on_change
        self.objects: dict[Key, dict[str, Any]] = {}
        self.synced = False
        self.lists = 0  # how many times it listed (the first, and after 410 Gone or an error)
        self._rv = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch: Any = None

    def start(self) -> None:
        """List now (raising the API's error, e.g. 403) and follow the watch in a daemon thread."""
        self._list()
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.plural}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following; the open watch is shut at once (its thread would otherwise wait for an event)."""
        self._stop.set()
        response = getattr(self._watch, "_resp", None)  # the client's stream has no public way to end it
        if response is not None:
            getattr(response, "shutdown", response.close)()

    def _call(self, **kwargs: Any) -> Any:
        from kubernetes import client as k8s

        if self._lister is not None:
            return self._lister(**kwargs)
        custom = k8s.CustomObjectsApi(self.api)
        if self.namespace is None:
            return custom.list_cluster_custom_object(self.group, self.version, self.plural, **kwargs)
        return custom.list_namespaced_custom_object(
            self.group, self.version, self.namespace, self.plural, **kwargs
        )

    def _list(self) -> None:
        listing = self._call()
        if not isinstance(listing, dict):  # a core API's typed list
            listing = self.api.sanitize_for_serialization(listing)
        fresh = {_key(o): _with_kind(o, self.kind) for o in listing.get("items") or []}
        with self.lock:
            if self._stop.is_set():
                return
            for key in set(self.objects) - set(fresh):
                self._set(key, None)
            for key, obj in fresh.items():
                self._set(key, obj)
            self._rv = str((listing.get("metadata") or {}).get("resourceVersion") or "")
            self.synced = True
            self.lists += 1

    def _set(self, key: Key, obj: dict[str, Any] | None) -> None:
        old = self.objects.pop(key, None)
        if obj is not None:
            self.objects[key] = obj
        if self.on_change is not None:
            self.on_change(key, old, obj)

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.rest import ApiException

        while not self._stop.is_set():
            try:
                self._watch = watch.Watch()
                self._follow(self._watch)
            except ApiException as exc:
                if exc.status in (401, 403):  # may list but not watch: readers read directly from now on
                    with self.lock:
                        self.synced = False
                    return
                if exc.status != 410:  # 410 Gone: our resourceVersion was compacted away; relist at once
                    self._lost()
                self._relist()
            except Exception:  # the connection broke (OSError, urllib3, a bad line): list again after a pause
                if self._stop.is_set():
                    return
                self._lost()
                self._relist()

    def _follow(self, w: Any) -> None:
        kwargs: dict[str, Any] = {"timeout_seconds": WATCH_TIMEOUT_S, "allow_watch_bookmarks": True}
        kwargs["resource_version"] = self._rv
        for event in w.stream(self._call, **kwargs):
            if self._stop.is_set():
                w.stop()
                return
            kind, obj = event.get("type"), event.get("raw_object") or {}
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            with self.lock:
                if self._stop.is_set():  # stopped while this event was on its way: it changes nothing
                    return
                if kind in ("ADDED", "MODIFIED"):
                    self._set(_key(obj), _with_kind(obj, self.kind))
                elif kind == "DELETED":
                    self._set(_key(obj), None)
                if rv:
                    self._rv = str(rv)

    def _lost(self) -> None:
        with self.lock:
            self.synced = False
        self._stop.wait(RETRY_PAUSE_S)

    def _relist(self) -> None:
        if self._stop.is_set():
            return
        try:
            self._list()
        except Exception:
            with self.lock:
                self.synced = False
            self._stop.wait(RETRY_PAUSE_S)


def _key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _with_kind(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    out = dict(obj)
    out.setdefault("kind", kind)
    return out
