"""The Kubernetes backend: a GPU kernel as a Pod plus a connection Secret on a Kueue-managed member.

One concept per module: ``names`` (object names and labels), ``template`` (sandboxed pod template rendering),
``validation`` (schema and policy checks), ``connection`` (the connection file), ``objects`` (the rendered
Secret and Pod), ``members`` (reaching a member's API server), ``calls`` (async calls with retries),
``watching`` (resumable watches), ``queue`` (Kueue Workload and queue position), ``lifecycle`` (launch
events), ``exits`` (why a kernel went away), ``leases`` (orphan detection) and ``backend`` (the
``Backend`` protocol implementation that ties them together).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .objects import KernelObjectsError, redact_secret, render_kernel_objects
from .template import TemplateIssue, validate_template

if TYPE_CHECKING:  # imported on first use below; type checkers see the class
    from .backend import KubernetesBackend

__all__ = [
    "KernelObjectsError",
    "KubernetesBackend",
    "TemplateIssue",
    "redact_secret",
    "render_kernel_objects",
    "validate_template",
]


def __getattr__(name: str) -> object:
    # The backend pulls in the kubernetes client; rendering and validation (admin UI, CLI) do not need it.
    if name == "KubernetesBackend":
        from .backend import KubernetesBackend

        return KubernetesBackend
    raise AttributeError(name)
