"""Turning a container spec into a process: volumes on disk, environment, argv with mount paths rewritten.

The test kubelet has no images and no mount namespaces, so a container's view of the filesystem is emulated:
Secret / ConfigMap / emptyDir volumes are written under a per-pod directory, a PersistentVolumeClaim is the
claim's own host directory (``claims.py``: shared by every pod that mounts it), and every ``mountPath``
prefix in command, args, env values and workingDir is rewritten to that directory (only at path boundaries,
longest mount first, in one pass so a rewritten path is never rewritten again).
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..selectors import field_value
from ..store import Obj, Store

if TYPE_CHECKING:
    from .claims import ClaimVolumes

VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ContainerConfigError(Exception):
    """A referenced Secret/ConfigMap/claim (or key) is missing: the kubelet retries, the pod stays Pending.

    ``waiting`` is the container's waiting reason meanwhile: ``CreateContainerConfigError`` for what the
    container's configuration references, ``ContainerCreating`` for a volume that cannot be mounted.
    """

    def __init__(self, reason: str, message: str, waiting: str = "CreateContainerConfigError"):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.waiting = waiting


def materialise_volumes(
    store: Store, pod: Obj, container: dict[str, Any], fs: Path, claims: ClaimVolumes | None = None
) -> list[tuple[str, str]]:
    """Write Secret/ConfigMap/emptyDir volumes under ``fs`` and mount claims (``claims``); return
    (mountPath, host path) pairs, longest first."""
    volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    mounts: list[tuple[str, str]] = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            continue
        target = fs / mount["mountPath"].lstrip("/")
        if "persistentVolumeClaim" in volume and claims is not None:
            host = claims.mount(pod, volume, mount)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.is_symlink():  # code that builds paths from MLP_TEST_MOUNT_ROOT finds it too
                target.symlink_to(host, target_is_directory=True)
            mounts.append((mount["mountPath"].rstrip("/") or "/", str(host)))
            continue
        target.mkdir(parents=True, exist_ok=True)
        for kind, plural, key in (
            ("secret", "secrets", "secretName"),
            ("configMap", "configmaps", "name"),
        ):
            if kind not in volume:
                continue
            src = volume[kind]
            obj = store.find(store.registry.get("", plural), pod["metadata"]["namespace"], src.get(key, ""))
            if obj is None:
                if src.get("optional"):
                    continue
                raise ContainerConfigError(
                    "FailedMount",
                    f"MountVolume.SetUp failed for volume "
                    f'"{volume["name"]}" : {plural[:-1]} "{src.get(key)}" not found',
                )
            data = decoded(obj, kind)
            items = src.get("items") or [{"key": k, "path": k} for k in data]
            mode = src.get("defaultMode", 0o644)
            for item in items:
                if item["key"] not in data:
                    raise ContainerConfigError(
                        "FailedMount",
                        f"MountVolume.SetUp failed for volume "
                        f'"{volume["name"]}" : key "{item["key"]}" not found',
                    )
                path = target / item["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data[item["key"]])
                os.chmod(path, item.get("mode", mode) | 0o600)
        mounts.append((mount["mountPath"].rstrip("/") or "/", str(target)))
    return sorted(mounts, key=lambda m: -len(m[0]))


def environment(store: Store, pod: Obj, container: dict[str, Any], base: dict[str, str]) -> dict[str, str]:
    """``base`` plus envFrom and env, resolved in the pod's namespace."""
    env = dict(base)
    ns = pod["metadata"]["namespace"]
    for source in container.get("envFrom") or []:
        for kind, plural in (("secretRef", "secrets"), ("configMapRef", "configmaps")):
            if kind in source:
                obj = store.find(store.registry.get("", plural), ns, source[kind]["name"])
                if obj is None:
                    if source[kind].get("optional"):
                        continue
                    raise ContainerConfigError(
                        "Failed", f'Error: {plural[:-1]} "{source[kind]["name"]}" not found'
                    )
                for key, raw in decoded(obj, "secret" if kind == "secretRef" else "configMap").items():
                    env[source.get("prefix", "") + key] = raw.decode(errors="replace")
    for var in container.get("env") or []:
        if "value" in var or "valueFrom" not in var:
            env[var["name"]] = expand(str(var.get("value", "")), env)
            continue
        value = value_from(store, pod, var["valueFrom"])
        if value is not None:
            env[var["name"]] = value
    return env


def value_from(store: Store, pod: Obj, source: dict[str, Any]) -> str | None:
    ns = pod["metadata"]["namespace"]
    for kind, plural in (("secretKeyRef", "secrets"), ("configMapKeyRef", "configmaps")):
        if kind in source:
            ref = source[kind]
            obj = store.find(store.registry.get("", plural), ns, ref.get("name", ""))
            data = decoded(obj, "secret" if kind == "secretKeyRef" else "configMap") if obj else None
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    return None
                what = (
                    f'{plural[:-1]} "{ref.get("name")}" not found'
                    if data is None
                    else f"couldn't find key {ref['key']} in {plural[:-1].capitalize()} "
                    f"{ns}/{ref.get('name')}"
                )
                raise ContainerConfigError("Failed", f"Error: {what}")
            return data[ref["key"]].decode(errors="replace")
    if "fieldRef" in source:
        path = source["fieldRef"]["fieldPath"]
        match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if match:
            return (pod["metadata"].get(match.group(1)) or {}).get(match.group(2), "")
        if path in ("status.podIP", "status.hostIP"):
            return "127.0.0.1"
        return field_value(pod, path)
    return None


def decoded(obj: Obj, kind: str) -> dict[str, bytes]:
    if kind == "secret":
        return {k: base64.b64decode(v or "") for k, v in (obj.get("data") or {}).items()}
    data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


def expand(text: str, env: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return VAR_REF.sub(sub, text)


def rewrite(text: str, mounts: list[tuple[str, str]]) -> str:
    """Replace mountPath prefixes (longest first, one pass, only at path boundaries) with host paths."""
    table = {mount: host for mount, host in mounts if mount != "/"}
    if not table:
        return text
    pattern = (
        r"(?<![A-Za-z0-9_.\-/])("
        + "|".join(re.escape(m) for m in sorted(table, key=len, reverse=True))
        + r")(?=/|$|[^A-Za-z0-9_.\-])"
    )
    return re.sub(pattern, lambda m: table[m.group(1)], text)
