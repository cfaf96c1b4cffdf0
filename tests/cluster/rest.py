"""A small JSON client for the real kube-apiserver: fixtures and the process kubelet (not the product).

The product talks to the API through the official ``kubernetes`` client; test plumbing (starting members, the
kubelet, assertions) needs raw objects, any kind by ``apiVersion`` + ``kind``, status subresources and
watches, which is shorter to say over urllib3 (the ``kubernetes`` client's own HTTP library) than through
generated models. Kinds are resolved through the server's discovery documents, so CRDs work once established.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import urllib3

Obj = dict[str, Any]


class ApiError(Exception):
    def __init__(self, status: int, body: Any):
        self.status = status
        self.body = body if isinstance(body, dict) else {"message": str(body)}
        self.reason = self.body.get("reason", "")
        super().__init__(f"{status} {self.reason}: {self.body.get('message', body)}")


class Rest:
    def __init__(self, url: str, token: str, ca_file: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.http = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED", ca_certs=ca_file, maxsize=16, timeout=urllib3.Timeout(10, timeout)
        )
        self.watch_http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=ca_file, maxsize=4)
        self._kinds: dict[tuple[str, str], tuple[str, bool]] = {}
        self._lock = threading.Lock()

    # -- plain requests ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        url = self.url + path + (("?" + urlencode(query)) if query else "")
        headers = dict(self.headers)
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        for attempt in range(50):  # 429 while a CRD's storage (re)initializes, as clients retry upstream
            resp = self.http.request(method, url, body=data, headers=headers, retries=False)
            if resp.status != 429 or attempt == 49:
                break
            time.sleep(min(float(resp.headers.get("Retry-After") or 0.2), 0.5))
        text = resp.data.decode("utf-8", "replace")
        try:
            payload = json.loads(text) if text else None
        except ValueError:
            payload = text
        if resp.status >= 400:
            raise ApiError(resp.status, payload)
        return payload

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query or None)

    # -- kinds -----------------------------------------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """``(base path, namespaced)`` of a kind, e.g. ``("/api/v1", ...)`` + plural, from discovery."""
        key = (api_version, kind)
        with self._lock:
            if key in self._kinds:
                return self._kinds[key]
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        for res in self.get(base)["resources"]:
            if "/" not in res["name"]:
                self._kinds[(api_version, res["kind"])] = (f"{base}/{res['name']}", bool(res["namespaced"]))
        if key not in self._kinds:
            raise ApiError(404, {"reason": "NotFound", "message": f"no kind {kind} in {api_version}"})
        return self._kinds[key]

    def path(self, api_version: str, kind: str, name: str | None = None, namespace: str | None = None) -> str:
        base, namespaced = self.resource(api_version, kind)
        prefix, plural = base.rsplit("/", 1)
        path = f"{prefix}/namespaces/{namespace}/{plural}" if namespaced and namespace else base
        return f"{path}/{name}" if name else path

    # -- objects ---------------------------------------------------------------------------------------

    def create(self, obj: Obj, **query: Any) -> Obj:
        m = obj["metadata"]
        return self.request(
            "POST",
            self.path(obj["apiVersion"], obj["kind"], None, m.get("namespace")),
            obj,
            query=query or None,
        )

    def apply(self, obj: Obj, manager: str = "mlp-kernel-tests", **query: Any) -> Obj:
        """Server-side apply (create or update), forcing field ownership like ``kubectl apply
        --server-side``."""
        m = obj["metadata"]
        q = {"fieldManager": manager, "force": "true", **query}
        return self.request(
            "PATCH",
            self.path(obj["apiVersion"], obj["kind"], m["name"], m.get("namespace")),
            obj,
            query=q,
            content_type="application/apply-patch+yaml",
        )

    def find(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return self.get(self.path(api_version, kind, name, namespace))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str | None = None, **query: Any) -> list[Obj]:
        items = self.get(self.path(api_version, kind, None, namespace), **query)["items"]
        for item in items:  # list items carry no apiVersion/kind; tests compare whole objects
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, **query: Any
    ) -> None:
        try:
            self.request("DELETE", self.path(api_version, kind, name, namespace), query=query or None)
        except ApiError as exc:
            if exc.status != 404:
                raise

    def merge_patch(
        self, api_version: str, kind: str, name: str, patch: Obj, namespace: str | None = None, sub: str = ""
    ) -> Obj:
        path = self.path(api_version, kind, name, namespace) + (f"/{sub}" if sub else "")
        return self.request("PATCH", path, patch, content_type="application/merge-patch+json")

    # -- watch -----------------------------------------------------------------------------------------

    def watch(self, path: str, resource_version: str, stop: threading.Event, **query: Any) -> Iterator[Obj]:
        """Watch events after ``resource_version`` until ``stop`` is set or the server ends the stream."""
        q = urlencode(
            {
                "watch": "true",
                "resourceVersion": resource_version,
                "timeoutSeconds": 30,
                "allowWatchBookmarks": "true",
                **query,
            }
        )
        resp = self.watch_http.request(
            "GET",
            f"{self.url}{path}?{q}",
            headers=self.headers,
            preload_content=False,
            retries=False,
            timeout=urllib3.Timeout(10, 2.0),
        )
        try:
            if resp.status >= 400:
                raise ApiError(resp.status, resp.data.decode("utf-8", "replace"))
            buffer = b""
            while not stop.is_set():
                try:
                    chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
                except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
                    continue
                if not chunk:
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            resp.close()  # never back into the pool: the rest of the stream would be read as the next reply
