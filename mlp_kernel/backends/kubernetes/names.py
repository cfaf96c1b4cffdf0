"""Names and labels of the objects a kernel owns on a member, in one place.

Pod names are deterministic (kernel id + launch generation) so that a retried create after a lost response
finds the pod it already made (HTTP 409) and adopts it instead of making a second one. Labels are the contract
with the rest of the platform: Kubecost/Grafana group cost by them, ``mlp-kernel gc`` finds orphans by them,
the NetworkPolicy and Gatekeeper samples select kernel pods by them. They are documented in
docs/admin-guide.md ("Labels"); change them there too.
"""

from __future__ import annotations

import hashlib
import re

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "mlp-kernel"
KERNEL_ID = "mlp.io/kernel-id"
GENERATION = "mlp.io/generation"
USER = "mlp.io/user"
NOTEBOOK = "mlp.io/notebook"
TEAM = "mlp.io/team"
MEMBER = "mlp.io/member"
FLAVOR = "mlp.io/flavor"
#: the notebook's data class (``%gpu data=``, policy ``data_classes``), absent when it has none: what the
#: admission sample (docs/samples/admission) reads to refuse a private-only class on a public member
DATA_CLASS = "mlp.io/data-class"
# The warm pool (pool.py): the flavor of a pool pod, and whether it is still free or claimed by a gateway.
POOL = "mlp.io/warm-pool"
POOL_STATE = "mlp.io/pool-state"
POOL_FREE, POOL_CLAIMED = "free", "claimed"
COMPONENT = "app.kubernetes.io/component"
QUEUE_NAME = "kueue.x-k8s.io/queue-name"
KUEUE_GATE = "kueue.x-k8s.io/admission"
KUEUE_JOB_UID = "kueue.x-k8s.io/job-uid"

# Annotations carry the unsanitised values for people reading the pod (not used for selection).
USER_ANNOTATION = "mlp.io/user-name"
NOTEBOOK_ANNOTATION = "mlp.io/notebook-path"
GATEWAY_ANNOTATION = "mlp.io/gateway"

MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE}"

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _digest(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def is_label_value(text: str) -> bool:
    return len(text) <= 63 and bool(_LABEL_VALUE.match(text))


def is_dns_label(text: str) -> bool:
    return len(text) <= 63 and bool(_DNS_LABEL.match(text))


def label_value(text: str) -> str:
    """``text`` as a valid label value (<= 63 chars of ``[A-Za-z0-9._-]``, alphanumeric at both ends).

    A value that is already valid is kept as is, so ``alice`` stays ``alice`` in Grafana. Anything else
    (``alice@example.org``, a name with spaces or newlines) is reduced to its allowed characters and given a
    short hash suffix, so two different users never share a label value after sanitising.
    """
    if is_label_value(text):
        return text
    kept = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-_.")
    suffix = _digest(text)
    kept = kept[: 63 - len(suffix) - 1].rstrip("-_.")
    return f"{kept}-{suffix}" if kept else suffix


def dns_label(text: str) -> str:
    """``text`` as a DNS label (<= 63 of ``[a-z0-9-]``): kept when it already is one (``alice``), else
    reduced to its allowed characters with a short hash suffix, so two users never map to the same name."""
    if is_dns_label(text):
        return text
    kept = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    suffix = _digest(text)
    kept = kept[: 63 - len(suffix) - 1].strip("-")
    return f"{kept}-{suffix}" if kept else f"u{suffix}"


def user_claim(template: str, user: str) -> str:
    """A per-user PersistentVolumeClaim name from the policy's ``home-{username}``."""
    return template.replace("{username}", dns_label(user))


def notebook_label(path: str) -> str:
    """A notebook path as a label value: a hash, so paths (which may name people or projects) stay private."""
    return _digest(path, 16) if path else ""


def _kernel_part(kernel_id: str) -> str:
    part = kernel_id.lower()
    if is_dns_label(part) and len(part) <= 48:
        return part
    return _digest(kernel_id, 16)


def pod_name(kernel_id: str, generation: int) -> str:
    """``mlpk-<kernel id>-<generation>``: the same kernel launched again gets a new generation, a retried
    create of the same launch gets the same name."""
    return f"mlpk-{_kernel_part(kernel_id)}-{generation}"


def secret_name(pod: str) -> str:
    return f"{pod}-conn"


def lease_name(pod: str) -> str:
    return pod
