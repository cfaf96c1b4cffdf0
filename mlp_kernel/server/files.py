"""Which kernelspec files the admin page may read and write, and how they are found.

The REST API takes a kernelspec name and a file name from the URL. Both are checked against an allow-list
before any path is built: the kernelspec name must match ``^[a-z0-9][a-z0-9._-]*$`` and be a kernelspec
of mlp-kernel: one whose ``kernel.json`` names our provisioner (``gpu-auto-provisioner``), found by itself so
that every GPU kernelspec an admin installs (``GPU (demo)``, a second platform's) is managed with no setting
to edit, or one named in ``kernelspec_names`` (for kernelspecs provisioned elsewhere); the file must be
``kernel.json``, ``pod-template.yaml.j2`` or the policy file that ``kernel.json`` names (itself a plain file
name). Anything else (``..``, slashes, absolute paths, other files) is refused before the filesystem is
touched. The kernelspec directory itself comes from jupyter_client's ``KernelSpecManager``, so it is wherever
``jupyter kernelspec list`` says it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

KERNELSPEC_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
POLICY_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.ya?ml$")
KERNEL_JSON = "kernel.json"
POD_TEMPLATE = "pod-template.yaml.j2"
DEFAULT_POLICY = "policy.yaml"
PROVISIONER_NAME = "gpu-auto-provisioner"  # the entry point name in pyproject.toml


def uses_our_provisioner(spec: Any) -> bool:
    """True when a kernelspec (a ``KernelSpec`` or its ``kernel.json`` as a dict) names our provisioner."""
    metadata = spec.get("metadata") if isinstance(spec, dict) else getattr(spec, "metadata", None)
    provisioner = metadata.get("kernel_provisioner") if isinstance(metadata, dict) else None
    return isinstance(provisioner, dict) and provisioner.get("provisioner_name") == PROVISIONER_NAME


class FileRefused(Exception):
    """A name in the request is not on the allow-list (HTTP 400 or 404; never a filesystem lookup)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SpecFile:
    """One editable file of a kernelspec: where it is and what kind of content it holds."""

    kernelspec: str
    name: str
    kind: str  # "kernel" | "pod_template" | "policy"
    path: Path


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def policy_file_name(kernel_json_text: str) -> str:
    """The policy file named in kernel.json's provisioner config (``policy.yaml`` when absent or unusable)."""
    try:
        spec = json.loads(kernel_json_text)
        name = spec["metadata"]["kernel_provisioner"]["config"].get("policy", DEFAULT_POLICY)
    except (ValueError, KeyError, TypeError, AttributeError):
        return DEFAULT_POLICY
    if isinstance(name, str) and POLICY_FILE_NAME.match(name):
        return name
    return DEFAULT_POLICY


class KernelspecFiles:
    """Resolves allow-listed kernelspec files through a ``KernelSpecManager``."""

    def __init__(self, ksm: KernelSpecManager, kernelspec_names: list[str]) -> None:
        self.ksm = ksm
        self.configured = list(kernelspec_names)

    @property
    def kernelspec_names(self) -> list[str]:
        """The configured names, then every installed kernelspec that uses our provisioner (looked up each
        time: an admin may install one while the server runs)."""
        found: list[str] = []
        try:
            specs = self.ksm.get_all_specs()
        except Exception:  # an unreadable kernel.json elsewhere must not hide ours
            specs = {}
        for name, model in sorted(specs.items()):
            if KERNELSPEC_NAME.match(name) and uses_our_provisioner(model.get("spec") or {}):
                found.append(name)
        return self.configured + [n for n in found if n not in self.configured]

    def spec_dir(self, kernelspec: str) -> Path:
        if not KERNELSPEC_NAME.match(kernelspec or ""):
            raise FileRefused(
                f"Invalid kernelspec name {kernelspec!r}: expected lowercase letters, digits, "
                "'.', '_' or '-'."
            )
        if kernelspec not in self.kernelspec_names:
            raise FileRefused(
                f"Kernelspec {kernelspec!r} is not managed by mlp-kernel: its kernel.json does not use "
                f"the {PROVISIONER_NAME!r} provisioner (managed here: {', '.join(self.kernelspec_names)}).",
                status=404,
            )
        try:
            return Path(self.ksm.get_kernel_spec(kernelspec).resource_dir)
        except NoSuchKernel:
            raise FileRefused(
                f"Kernelspec {kernelspec!r} is not installed (see `jupyter kernelspec list`).", status=404
            ) from None

    def allowed_files(self, kernelspec: str) -> dict[str, str]:
        """File name -> kind for the editable files of this kernelspec."""
        spec_dir = self.spec_dir(kernelspec)
        kernel_json = spec_dir / KERNEL_JSON
        text = kernel_json.read_text(encoding="utf-8") if kernel_json.is_file() else ""
        return {KERNEL_JSON: "kernel", POD_TEMPLATE: "pod_template", policy_file_name(text): "policy"}

    def resolve(self, kernelspec: str, name: str) -> SpecFile:
        allowed = self.allowed_files(kernelspec)
        if name not in allowed:
            raise FileRefused(
                f"File {name!r} cannot be edited here: allowed files of {kernelspec!r} are "
                f"{', '.join(sorted(allowed))}."
            )
        return SpecFile(kernelspec, name, allowed[name], self.spec_dir(kernelspec) / name)

    def list_specs(self) -> list[dict[str, Any]]:
        out = []
        for name in self.kernelspec_names:
            try:
                spec_dir = self.spec_dir(name)
            except FileRefused:
                continue
            files = [
                {"file": f, "kind": kind, "exists": (spec_dir / f).is_file()}
                for f, kind in self.allowed_files(name).items()
            ]
            display = name
            try:
                display = json.loads((spec_dir / KERNEL_JSON).read_text(encoding="utf-8"))["display_name"]
            except (OSError, ValueError, KeyError, TypeError):
                pass
            out.append({"name": name, "display_name": display, "resource_dir": str(spec_dir), "files": files})
        return out


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` in one step (readers never see half a file), keeping its permission bits."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
