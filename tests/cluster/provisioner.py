"""A local-path volume provisioner for the real control plane: PersistentVolumes for claims, as on a cluster.

On a real cluster a claim gets its volume in two steps taken by different components: an external provisioner
(a CSI driver's ``external-provisioner``, or rancher's local-path-provisioner on a single node) creates a
PersistentVolume for a pending claim of its StorageClass, and the controller-manager's PV binder binds the two
(``status.phase: Bound``, ``spec.volumeName``). Only the first step is ours here, and it is the smallest one:

- ``install()`` makes a default StorageClass ``mlp-local-path`` (provisioner ``mlp.io/local-path``,
  ``volumeBindingMode: Immediate``, ``reclaimPolicy: Delete``), so a claim without ``storageClassName`` (the
  product's users name none) is given it by the API server's ``DefaultStorageClass`` admission, and the real
  PV binder marks it ``volume.kubernetes.io/storage-provisioner: mlp.io/local-path``;
- for each such pending claim it creates a ``hostPath`` PersistentVolume ``pvc-<claim uid>`` (a directory
  ``<root>/pvc-<uid>``) pre-bound to the claim by ``claimRef``, with the claim's access modes, size and volume
  mode; binding it is left to the real controller-manager;
- a volume of ours that the binder marks ``Released`` (its claim deleted) is reclaimed as ``Delete`` says:
  its directory removed, then the PersistentVolume deleted (the binder leaves that to external provisioners).

The process kubelet mounts a claim by following claim -> bound PersistentVolume -> ``hostPath`` through the
API (``tests/cluster/kubelet.py``), so every pod mounting a claim shares one directory, and a claim deleted
and created again is a new, empty volume. It polls rather than watches: claims are few and the loop cheap.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from .rest import ApiError, Obj, Rest

PROVISIONER = "mlp.io/local-path"
STORAGE_CLASS = "mlp-local-path"
ANN_PROVISIONER = "volume.kubernetes.io/storage-provisioner"  # set on a claim by the PV binder
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
POLL_S = 0.3


class LocalPathProvisioner:
    """Creates and reclaims ``hostPath`` PersistentVolumes under ``root`` for claims of ``mlp-local-path``."""

    def __init__(self, rest: Rest, root: Path):
        self.rest = rest
        self.root = root
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="local-path-provisioner")

    def install(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.rest.apply(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": STORAGE_CLASS,
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": PROVISIONER,
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
            }
        )

    def start(self) -> LocalPathProvisioner:
        self.install()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception as exc:  # noqa: BLE001 - the next round tries again, as a controller does
                self.errors.append(repr(exc))
                del self.errors[:-20]
            self._stop.wait(POLL_S)

    def sync(self) -> None:
        for claim in self.rest.list("v1", "PersistentVolumeClaim"):
            m = claim["metadata"]
            if (
                (m.get("annotations") or {}).get(ANN_PROVISIONER) == PROVISIONER
                and not claim["spec"].get("volumeName")
                and (claim.get("status") or {}).get("phase") == "Pending"
                and not m.get("deletionTimestamp")
            ):
                self.provision(claim)
        for volume in self.rest.list("v1", "PersistentVolume"):
            if (
                (volume["metadata"].get("annotations") or {}).get(ANN_PROVISIONED_BY) == PROVISIONER
                and (volume.get("status") or {}).get("phase") == "Released"
                and volume["spec"].get("persistentVolumeReclaimPolicy") == "Delete"
                and not volume["metadata"].get("deletionTimestamp")
            ):
                self.reclaim(volume)

    def provision(self, claim: Obj) -> None:
        m, spec = claim["metadata"], claim["spec"]
        directory = self.root / f"pvc-{m['uid']}"
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o777)  # as local-path-provisioner: any pod's user may write its volume
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"pvc-{m['uid']}", "annotations": {ANN_PROVISIONED_BY: PROVISIONER}},
            "spec": {
                "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                "accessModes": spec["accessModes"],
                "volumeMode": spec.get("volumeMode") or "Filesystem",
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": spec.get("storageClassName") or STORAGE_CLASS,
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": m["namespace"],
                    "name": m["name"],
                    "uid": m["uid"],
                },
                "hostPath": {"path": str(directory), "type": "DirectoryOrCreate"},
            },
        }
        try:
            self.rest.create(volume)
        except ApiError as exc:
            if exc.status != 409:  # created in an earlier round, not bound yet
                raise

    def reclaim(self, volume: Obj) -> None:
        path = Path((volume["spec"].get("hostPath") or {}).get("path") or "")
        if path.is_relative_to(self.root) and path != self.root:
            shutil.rmtree(path, ignore_errors=True)
        self.rest.delete("v1", "PersistentVolume", volume["metadata"]["name"])
