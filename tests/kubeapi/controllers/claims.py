"""PersistentVolumeClaim volumes of the test kubelet: one host directory per claim, shared by every pod.

A real claim outlives the pods that mount it, and several pods (ReadWriteMany) see the same files: the test
kubelet therefore keeps one directory per claim, ``<root>/claims/<namespace>/<name>_<uid8>`` (a claim deleted
and created again under the same name starts empty, as a freshly provisioned volume would), created when the
first pod mounts it and removed once the claim is gone and no running pod mounts it (reclaim policy
``Delete``).

Like every volume, the mount is emulated by rewriting ``mountPath`` in command, args, env and workingDir
(see ``container_setup``). That is not enough when a path reaches the process another way: the gateway sends
the snapshot directory inside an execute_request, so the kernel opens the in-pod path itself. The test
kubelet cannot give a process its own filesystem view, so a claim mounted at a path under its **view root**
(``<root>/view``; build such a path with ``view_path("/home/jovyan/...")``) is also made visible at that very
path: a symlink to the claim's directory that exists while a pod mounting it runs. Tests use a view path as
the in-pod path wherever the process must find it by itself; a pod that does not mount the claim does not see
it (unless another pod mounting it runs on the same member at the same time).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

from ..store import Obj, Store
from .container_setup import ContainerConfigError


class ClaimVolumes:
    """Host directories of a member's claims, and the view-root links of the pods that mount them."""

    def __init__(self, store: Store, root: Path) -> None:
        self.store = store
        self.root = root / "claims"
        self.view = root / "view"
        #: link path -> (target, uids of the running pods that mount it there)
        self._links: dict[Path, tuple[Path, set[str]]] = {}
        #: pod uid -> claim directories it mounts (kept until the pod's process is gone)
        self._in_use: dict[str, set[Path]] = {}
        self._lock = threading.Lock()

    def view_path(self, in_pod_path: str) -> str:
        """An in-pod path that running pods mounting a claim there can also open as is (see module doc)."""
        return str(self.view / in_pod_path.lstrip("/"))

    def directory(self, namespace: str, name: str) -> Path:
        """The host directory of claim ``namespace/name`` (created when a pod first mounts the claim)."""
        claim = self.store.find(self._claims_type(), namespace, name)
        if claim is None:
            raise KeyError(f"persistentvolumeclaim {namespace}/{name} does not exist")
        return self._directory(claim)

    def mount(self, pod: Obj, volume: dict[str, Any], mount: dict[str, Any]) -> Path:
        """The host directory for one volumeMount of a claim volume, created (with ``subPath``) and linked.

        Raises ``ContainerConfigError`` (FailedMount, pod stays ContainerCreating) when the claim is missing,
        being deleted or not Bound, as the real kubelet does for a pod bound to a node without the scheduler.
        """
        ns, uid = pod["metadata"]["namespace"], pod["metadata"]["uid"]
        name = volume["persistentVolumeClaim"].get("claimName", "")
        claim = self.store.find(self._claims_type(), ns, name)
        problem = (
            f'failed to fetch PVC from API server: persistentvolumeclaims "{name}" not found'
            if claim is None
            else "PVC is being deleted"
            if claim["metadata"].get("deletionTimestamp")
            else "PVC is not bound"
            if (claim.get("status") or {}).get("phase") != "Bound"
            else ""
        )
        if claim is None or problem:
            raise ContainerConfigError(
                "FailedMount",
                f"Unable to attach or mount volumes: unmounted volumes=[{volume['name']}], unattached "
                f"volumes=[], failed to process volumes=[{volume['name']}]: error processing PVC "
                f"{ns}/{name}: {problem}",
                waiting="ContainerCreating",
            )
        base = self._directory(claim)
        sub = str(mount.get("subPath") or "").lstrip("/")
        host = base / sub if sub else base
        host.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._in_use.setdefault(uid, set()).add(base)
        path = Path(mount["mountPath"])
        if path.is_relative_to(self.view) and path != self.view:
            self._link(uid, path, host, volume["name"])
        return host

    def release(self, uid: str) -> None:
        """The pod's process is gone: drop its links (the last user removes a link) and its claims in use."""
        with self._lock:
            self._in_use.pop(uid, None)
            for path, (target, users) in list(self._links.items()):
                users.discard(uid)
                if not users:
                    del self._links[path]
                    if path.is_symlink() and Path(os.readlink(path)) == target:
                        path.unlink()

    def prune(self) -> None:
        """Remove the directories of claims that no longer exist and that no running pod mounts."""
        if not self.root.is_dir():
            return
        claims, _ = self.store.list(self._claims_type())
        live = {self._directory(c) for c in claims}
        with self._lock:
            used = set().union(*self._in_use.values()) if self._in_use else set()
        for ns_dir in self.root.iterdir():
            for directory in ns_dir.iterdir():
                if directory not in live and directory not in used:
                    shutil.rmtree(directory, ignore_errors=True)

    def _link(self, uid: str, path: Path, target: Path, volume: str) -> None:
        with self._lock:
            current = self._links.get(path)
            if current is not None and current[0] == target:
                current[1].add(uid)
                return
            if current is not None or path.exists() or path.is_symlink():
                raise ContainerConfigError(
                    "FailedMount",
                    f'MountVolume.SetUp failed for volume "{volume}" : test kubelet: {path} is already '
                    "used by another volume of a running pod; give each claim its own view path",
                    waiting="ContainerCreating",
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(target, target_is_directory=True)
            self._links[path] = (target, {uid})

    def _directory(self, claim: Obj) -> Path:
        m = claim["metadata"]
        return self.root / m["namespace"] / f"{m['name']}_{m['uid'][:8]}"

    def _claims_type(self) -> Any:
        return self.store.registry.get("", "persistentvolumeclaims")
