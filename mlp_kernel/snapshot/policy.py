"""Pure rules about whether a snapshot may be taken or restored, and how large it may be.

No I/O: the gateway calls these with values it already holds (the notebook's data class, whether the member is
public, the policy's private classes and ``snapshot.max_bytes``, the user's ``%gpu keep=`` setting).
"""

from __future__ import annotations

from mlp_kernel.placement.units import format_size, parse_size


def _norm(data_class: str) -> str:
    return data_class.strip().lower()


def snapshot_allowed(
    data_class: str | None, member_public: bool, private_classes: frozenset[str]
) -> tuple[bool, str]:
    """Whether a snapshot may be written on, or restored onto, a member; and the reason in words.

    A data class that must stay private never has its namespace written to or loaded on a public member:
    there the kernel starts fresh. Classes compare case-insensitively, ignoring surrounding spaces, so a
    policy that lists ``PHI`` also covers a notebook labelled ``phi``.
    """
    if not member_public:
        return True, "the member is private"
    if data_class is None or not data_class.strip():
        return True, "the notebook has no data class"
    if _norm(data_class) in {_norm(c) for c in private_classes}:
        return False, (
            f"data class {data_class!r} must stay on the private cluster, so its saved variables are never "
            "written to or loaded on a public member: this kernel starts fresh"
        )
    return True, f"data class {data_class!r} may leave the private cluster"


def keep_limit(keep: str | None, policy_max_bytes: int | None) -> tuple[bool, int | None]:
    """``(snapshot enabled, max_bytes)`` from a ``%gpu keep=`` value and the policy's ``snapshot.max_bytes``.

    ``off`` disables snapshots; ``on`` (or no setting) uses the policy cap (``None``: no cap); a size
    (``500M``, ``2Gi``) sets the cap, never above the policy's. Raises ``ValueError`` naming the forms.
    """
    if keep is None or keep.strip().lower() == "on":
        return True, policy_max_bytes
    if keep.strip().lower() == "off":
        return False, None
    try:
        size = parse_size(keep)
    except ValueError:
        raise ValueError(f"invalid keep={keep!r}: expected on, off or a size such as 500M or 2Gi") from None
    if policy_max_bytes is not None and size > policy_max_bytes:
        raise ValueError(
            f"keep={keep} is above this deployment's snapshot limit of {format_size(policy_max_bytes)}; "
            f"use a smaller size or keep=on"
        )
    return True, size
