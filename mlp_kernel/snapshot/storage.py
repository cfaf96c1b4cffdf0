"""The policy's ``snapshot.storage`` section, checked by the package that reads it.

The policy loader (``mlp_kernel.placement``) must import nothing outward, while this package imports
placement's units: so the loader cannot call this check, and instead runs whatever was registered with
``placement.schema.register_storage_check``. Importing this module registers ``storage_issues``;
``mlp_kernel.snapshot`` imports it, and so do the CLI and the server before they load a policy. Paths in the
issues are relative to ``snapshot.storage``; the loader adds that prefix and the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlp_kernel.placement.schema import register_storage_check
from mlp_kernel.validation import Issue, format_path

from .s3_config import storage_errors

KINDS = ("local", "volume", "s3")


def storage_issues(storage: Mapping[str, Any]) -> list[Issue]:
    """Every problem in a ``snapshot.storage`` mapping (``kind`` defaults to ``local``); [] if it is fine."""
    kind = storage.get("kind", "local")
    issues = []
    if not isinstance(kind, str):
        issues.append(Issue("kind", "expected a string such as local or s3"))
    if kind not in KINDS:
        return [*issues, Issue("kind", f"expected local, volume or s3, got {kind!r}")]
    if kind == "volume":
        if not isinstance(storage.get("claim"), str) or not storage.get("claim"):
            issues.append(Issue("claim", "a volume needs its PersistentVolumeClaim (claim: NAME)"))
        for key in ("path", "gateway_path"):
            value = storage.get(key)
            if value is not None and not (isinstance(value, str) and value.startswith("/")):
                issues.append(Issue(key, f"expected an absolute path, got {value!r}"))
    if kind == "s3":  # checked at load time too, so a mistake (or an inline secret) fails before any kernel
        issues += [Issue(format_path(path), message) for path, message in storage_errors(storage)]
    return issues


register_storage_check(storage_issues)
