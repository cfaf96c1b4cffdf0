"""The object store: resourceVersions, optimistic concurrency, finalizers, owner GC and watch fan-out.

This is the etcd + generic-registry half of an apiserver. Objects are plain dicts stored at their storage
version; every write bumps one global resourceVersion and is appended to a bounded history so watches can
resume from a resourceVersion (410 Gone when it has been compacted away). Controllers inside the process
use the same methods as HTTP handlers, so their writes are seen by watches exactly like a client's.
"""

from __future__ import annotations

import copy
import datetime as dt
import queue
import random
import string
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from .errors import ApiError, already_exists, bad_request, conflict, gone, invalid, not_found
from .resources import Registry, ResourceType
from .selectors import Matcher

Obj = dict[str, Any]
ObjKey = tuple[str, str]  # (namespace or "", name)


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def meta(obj: Obj) -> dict[str, Any]:
    return obj.setdefault("metadata", {})


class Event(NamedTuple):
    """One committed change: ``type`` is ADDED, MODIFIED or DELETED; ``old`` is None for ADDED."""

    type: str
    rtype: ResourceType
    old: Obj | None
    new: Obj
    rv: int


class Watcher:
    """One watch stream's filter and queue; the store pushes (type, object) pairs, None means closed."""

    def __init__(self, rtype: ResourceType, namespace: str | None, labels: Matcher, fields: Matcher):
        self.rtype = rtype
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.queue: queue.Queue[tuple[str, Obj] | None] = queue.Queue()
        self.last_rv = 0

    def matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        m = obj.get("metadata", {})
        if self.namespace and m.get("namespace") != self.namespace:
            return False
        return self.labels(m.get("labels") or {}) and self.fields(obj)

    def offer(self, event: Event) -> None:
        was, now = self.matches(event.old), self.matches(event.new)
        if event.type == "DELETED":
            kind = "DELETED" if was or now else None
        elif was and now:
            kind = "MODIFIED"
        elif now:
            kind = "ADDED"
        elif was:
            kind = "DELETED"
        else:
            kind = None
        self.last_rv = event.rv
        if kind:
            self.queue.put((kind, copy.deepcopy(event.new)))

    def close(self) -> None:
        self.queue.put(None)


def _random_suffix(n: int = 5) -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=n))


class Store:
    """Thread-safe in-memory object store for one test apiserver."""

    def __init__(self, registry: Registry, history: int = 20000):
        self.registry = registry
        self.lock = threading.RLock()
        self._rv = 0
        self._objects: dict[tuple[str, str], dict[ObjKey, Obj]] = {}
        self._uids: dict[str, tuple[ResourceType, ObjKey]] = {}
        self._history: deque[Event] = deque(maxlen=history)
        self._floor = 0
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[Event], None]] = []
        self._orphaning: set[str] = set()
        #: create-time admission (mutating webhooks): fn(rtype, obj) may change obj or raise ApiError.
        self.admission: list[Callable[[ResourceType, Obj], None]] = []
        #: write-time validation: fn(rtype, new, old) raises ApiError (old is None on create).
        self.validators: list[Callable[[ResourceType, Obj, Obj | None], None]] = []
        #: pod removal policy hook: fn(obj) -> True when a terminating pod may be removed now.
        self.pod_removable: Callable[[Obj], bool] = _default_pod_removable

    # -- plumbing -------------------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._rv

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` (under the store lock: it must only enqueue) for every committed change."""
        with self.lock:
            self._listeners.append(listener)

    def _bucket(self, rtype: ResourceType) -> dict[ObjKey, Obj]:
        return self._objects.setdefault(rtype.key, {})

    def _commit(self, etype: str, rtype: ResourceType, old: Obj | None, new: Obj) -> None:
        event = Event(etype, rtype, old, new, self._rv)
        if len(self._history) == self._history.maxlen:
            self._floor = self._history[0].rv
        self._history.append(event)
        for watcher in list(self._watchers):
            if watcher.rtype.key == rtype.key:
                watcher.offer(event)
        for listener in self._listeners:
            listener(event)

    def _bump(self, obj: Obj) -> None:
        self._rv += 1
        meta(obj)["resourceVersion"] = str(self._rv)

    def _key(self, rtype: ResourceType, namespace: str | None, name: str) -> ObjKey:
        return ((namespace or "") if rtype.namespaced else "", name)

    def _existing(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self._bucket(rtype).get(self._key(rtype, namespace, name))
        if obj is None:
            raise not_found(rtype.plural, name, rtype.group)
        return obj

    # -- reads ---------------------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        with self.lock:
            return copy.deepcopy(self._existing(rtype, namespace, name))

    def find(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj | None:
        with self.lock:
            obj = self._bucket(rtype).get(self._key(rtype, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None = None,
        labels: Matcher | None = None,
        fields: Matcher | None = None,
    ) -> tuple[list[Obj], int]:
        with self.lock:
            items = [
                copy.deepcopy(obj)
                for (ns, _), obj in sorted(self._bucket(rtype).items())
                if (not namespace or ns == namespace)
                and (labels is None or labels(obj["metadata"].get("labels") or {}))
                and (fields is None or fields(obj))
            ]
            return items, self._rv

    def by_uid(self, uid: str) -> tuple[ResourceType, Obj] | None:
        with self.lock:
            found = self._uids.get(uid)
            if found is None:
                return None
            rtype, key = found
            return rtype, copy.deepcopy(self._bucket(rtype)[key])

    # -- writes --------------------------------------------------------------------------------------

    def create(
        self, rtype: ResourceType, obj: Obj, namespace: str | None = None, dry_run: bool = False
    ) -> Obj:
        obj = copy.deepcopy(obj)
        m = meta(obj)
        with self.lock:
            if rtype.namespaced:
                if namespace and m.get("namespace") and m["namespace"] != namespace:
                    raise bad_request(
                        "the namespace of the provided object does not match the namespace sent "
                        "on the request"
                    )
                namespace = namespace or m.get("namespace") or "default"
                m["namespace"] = namespace
                ns_type = self.registry.get("", "namespaces")
                ns_obj = self._bucket(ns_type).get(("", namespace))
                if ns_obj is None:
                    raise not_found("namespaces", namespace)
                if ns_obj["metadata"].get("deletionTimestamp"):
                    raise ApiError(
                        403,
                        "Forbidden",
                        f'{rtype.plural} "{m.get("name") or m.get("generateName")}" '
                        f"is forbidden: unable to create new content in namespace {namespace} because "
                        f"it is being terminated",
                    )
            else:
                m.pop("namespace", None)
            if not m.get("name"):
                if m.get("generateName"):
                    m["name"] = m["generateName"] + _random_suffix()
                else:
                    raise invalid(
                        rtype.kind,
                        "",
                        [
                            (
                                "metadata.name",
                                "FieldValueRequired",
                                "Required value: name or generateName is required",
                            )
                        ],
                        rtype.group,
                    )
            key = self._key(rtype, namespace, m["name"])
            if key in self._bucket(rtype):
                raise already_exists(rtype.plural, m["name"], rtype.group)
            obj["apiVersion"] = rtype.api_version()
            obj["kind"] = rtype.kind
            for hook in self.admission:
                hook(rtype, obj)
            for validator in self.validators:
                validator(rtype, obj, None)
            if dry_run:
                return obj
            m["uid"] = str(uuid.uuid4())
            m["creationTimestamp"] = now_iso()
            m["generation"] = 1
            for transient in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
                m.pop(transient, None)
            self._bump(obj)
            self._bucket(rtype)[key] = obj
            self._uids[m["uid"]] = (rtype, key)
            self._commit("ADDED", rtype, None, copy.deepcopy(obj))
            return copy.deepcopy(obj)

    def update(
        self,
        rtype: ResourceType,
        obj: Obj,
        namespace: str | None,
        name: str,
        subresource: str | None = None,
        check_version: bool = True,
        dry_run: bool = False,
    ) -> Obj:
        with self.lock:
            old = self._existing(rtype, namespace, name)
            m = meta(obj)
            if m.get("name") and m["name"] != name:
                raise bad_request(
                    f"the name of the object ({m['name']}) does not match the name on the URL ({name})"
                )
            sent_rv = m.get("resourceVersion")
            if check_version and sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise conflict(rtype.plural, name, rtype.group)
            if m.get("uid") and m["uid"] != old["metadata"]["uid"]:
                raise conflict(
                    rtype.plural,
                    name,
                    rtype.group,
                    "Precondition failed: UID in precondition: "
                    f"{m['uid']}, UID in object meta: {old['metadata']['uid']}",
                )
            if subresource == "status":
                new = copy.deepcopy(old)
                if "status" in obj:
                    new["status"] = copy.deepcopy(obj["status"])
                else:
                    new.pop("status", None)
            else:
                new = copy.deepcopy(obj)
                if rtype.has_status:
                    if "status" in old:
                        new["status"] = copy.deepcopy(old["status"])
                    else:
                        new.pop("status", None)
                nm = meta(new)
                for fixed in (
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "namespace",
                ):
                    if fixed in old["metadata"]:
                        nm[fixed] = old["metadata"][fixed]
                    else:
                        nm.pop(fixed, None)
                nm["name"] = name
            new["apiVersion"] = rtype.api_version()
            new["kind"] = rtype.kind
            return self._write(rtype, old, new, dry_run)

    def mutate(
        self, rtype: ResourceType, namespace: str | None, name: str, fn: Callable[[Obj], bool | None]
    ) -> Obj | None:
        """Read-modify-write for controllers: ``fn`` edits a copy in place (return False to skip).

        Returns the stored object, or None when it does not exist (anymore).
        """
        with self.lock:
            old = self._bucket(rtype).get(self._key(rtype, namespace, name))
            if old is None:
                return None
            new = copy.deepcopy(old)
            if fn(new) is False:
                return copy.deepcopy(old)
            return self._write(rtype, old, new, dry_run=False, validate=False)

    def _write(self, rtype: ResourceType, old: Obj, new: Obj, dry_run: bool, validate: bool = True) -> Obj:
        nm = meta(new)
        if old["metadata"].get("deletionTimestamp"):
            added = set(nm.get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
            if added:
                raise invalid(
                    rtype.kind,
                    nm["name"],
                    [
                        (
                            "metadata.finalizers",
                            "FieldValueForbidden",
                            "Forbidden: no new finalizers can be added if the object is being deleted",
                        )
                    ],
                    rtype.group,
                )
        if validate:
            for validator in self.validators:
                validator(rtype, new, old)
        nm["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old:
            return copy.deepcopy(old)
        if _spec_of(new) != _spec_of(old):
            nm["generation"] = int(old["metadata"].get("generation") or 1) + 1
        if dry_run:
            return new
        self._bump(new)
        key = self._key(rtype, nm.get("namespace"), nm["name"])
        self._bucket(rtype)[key] = new
        self._commit("MODIFIED", rtype, copy.deepcopy(old), copy.deepcopy(new))
        if nm.get("deletionTimestamp"):
            self._maybe_remove(rtype, key)
        return copy.deepcopy(self._bucket(rtype).get(key, new))

    def delete(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        grace: int | None = None,
        propagation: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        with self.lock:
            old = self._existing(rtype, namespace, name)
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise conflict(
                    rtype.plural,
                    name,
                    rtype.group,
                    f"Precondition failed: UID in precondition: "
                    f"{pre['uid']}, UID in object meta: {old['metadata']['uid']}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise conflict(rtype.plural, name, rtype.group)
            if dry_run:
                return copy.deepcopy(old)
            key = self._key(rtype, namespace, name)
            if propagation == "Orphan":
                self._orphaning.add(old["metadata"]["uid"])
            is_pod = rtype.key == ("", "pods")
            if grace is None and is_pod:
                grace = int(old.get("spec", {}).get("terminationGracePeriodSeconds", 30))
            running = (
                is_pod
                and bool(old.get("spec", {}).get("nodeName"))
                and old.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            )
            if (
                old["metadata"].get("finalizers")
                or (running and grace != 0)
                or rtype.key == ("", "namespaces")
            ):
                new = copy.deepcopy(old)
                nm = meta(new)
                if not nm.get("deletionTimestamp"):
                    nm["deletionTimestamp"] = now_iso()
                    nm["deletionGracePeriodSeconds"] = grace or 0
                elif grace == 0:
                    nm["deletionGracePeriodSeconds"] = 0
                if is_pod and grace == 0:
                    new.setdefault("status", {})["phase"] = (
                        new.get("status", {}).get("phase") if not running else "Failed"
                    )
                if new != old:
                    self._bump(new)
                    self._bucket(rtype)[key] = new
                    self._commit("MODIFIED", rtype, copy.deepcopy(old), copy.deepcopy(new))
                if rtype.key == ("", "namespaces"):
                    self._terminate_namespace(name)
                self._maybe_remove(rtype, key)
                return copy.deepcopy(self._bucket(rtype).get(key, new))
            return self._remove(rtype, key)

    def _maybe_remove(self, rtype: ResourceType, key: ObjKey) -> None:
        obj = self._bucket(rtype).get(key)
        if obj is None or not obj["metadata"].get("deletionTimestamp") or obj["metadata"].get("finalizers"):
            return
        if rtype.key == ("", "pods") and not self.pod_removable(obj):
            return
        if rtype.key == ("", "namespaces") and self._namespace_has_content(key[1]):
            return
        self._remove(rtype, key)

    def _remove(self, rtype: ResourceType, key: ObjKey) -> Obj:
        obj = self._bucket(rtype).pop(key)
        uid = obj["metadata"]["uid"]
        self._uids.pop(uid, None)
        old = copy.deepcopy(obj)
        self._bump(obj)
        self._commit("DELETED", rtype, old, copy.deepcopy(obj))
        self._collect_dependents(uid)
        if rtype.namespaced:
            ns_type = self.registry.get("", "namespaces")
            self._maybe_remove(ns_type, ("", key[0]))
        return copy.deepcopy(obj)

    # -- garbage collection and namespaces -----------------------------------------------------------

    def _collect_dependents(self, owner_uid: str) -> None:
        orphan = owner_uid in self._orphaning
        self._orphaning.discard(owner_uid)
        for rtype_key, bucket in list(self._objects.items()):
            for key, obj in list(bucket.items()):
                refs = obj["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == owner_uid for r in refs):
                    continue
                rtype = self.registry.get(*rtype_key)
                remaining = [r for r in refs if r.get("uid") != owner_uid]
                if orphan or any(r.get("uid") in self._uids for r in remaining):

                    def strip(o: Obj, keep: list[dict[str, Any]] = remaining) -> None:
                        o["metadata"]["ownerReferences"] = keep

                    self.mutate(rtype, key[0], key[1], strip)
                elif key in bucket:
                    self.delete(rtype, key[0], key[1])

    def _namespace_has_content(self, namespace: str) -> bool:
        return any(ns == namespace for bucket in self._objects.values() for (ns, _) in bucket)

    def _terminate_namespace(self, namespace: str) -> None:
        ns_type = self.registry.get("", "namespaces")

        def terminating(o: Obj) -> None:
            o.setdefault("status", {})["phase"] = "Terminating"

        self.mutate(ns_type, None, namespace, terminating)
        for rtype_key, bucket in list(self._objects.items()):
            rtype = self.registry.get(*rtype_key)
            for key in [k for k in bucket if k[0] == namespace]:
                if key in bucket:
                    self.delete(rtype, key[0], key[1])

    # -- watches -------------------------------------------------------------------------------------

    def watch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        labels: Matcher,
        fields: Matcher,
        resource_version: str | None,
    ) -> Watcher:
        watcher = Watcher(rtype, namespace, labels, fields)
        with self.lock:
            if resource_version in (None, "", "0"):
                items, _ = self.list(rtype, namespace, labels, fields)
                for item in items:
                    watcher.queue.put(("ADDED", item))
            else:
                try:
                    since = int(resource_version)
                except ValueError:
                    raise bad_request(f"invalid resource version: {resource_version!r}") from None
                if since < self._floor:
                    raise gone(f"too old resource version: {since} ({self._floor})")
                for event in self._history:
                    if event.rv > since and event.rtype.key == rtype.key:
                        watcher.offer(event)
            watcher.last_rv = self._rv
            self._watchers.add(watcher)
        return watcher

    def stop_watch(self, watcher: Watcher) -> None:
        with self.lock:
            self._watchers.discard(watcher)

    def close_watches(self, predicate: Callable[[Watcher], bool] = lambda w: True) -> int:
        with self.lock:
            closing = [w for w in self._watchers if predicate(w)]
            for watcher in closing:
                self._watchers.discard(watcher)
                watcher.close()
            return len(closing)

    def compact(self) -> None:
        """Forget all history (tests use it to force 410 Gone on resumed watches)."""
        with self.lock:
            self._history.clear()
            self._floor = self._rv

    def all_objects(self) -> Iterable[tuple[ResourceType, Obj]]:
        with self.lock:
            for rtype_key, bucket in self._objects.items():
                rtype = self.registry.get(*rtype_key)
                for obj in bucket.values():
                    yield rtype, copy.deepcopy(obj)


def _spec_of(obj: Obj) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _default_pod_removable(obj: Obj) -> bool:
    status = obj.get("status") or {}
    return (
        not obj.get("spec", {}).get("nodeName")
        or status.get("phase") in ("Succeeded", "Failed")
        or obj["metadata"].get("deletionGracePeriodSeconds") == 0
    )
