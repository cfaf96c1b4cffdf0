"""A namespace per user (or per team): the policy's templates filled from the server's identity.

A member with ``tenancy: {namespace: user-{username}, local_queue: kernels}`` has no static namespace: each
notebook server's gateway resolves the policy once for its own user (``resolve_policy``), and what placement
and the backend then receive is an ordinary ``Member`` whose ``namespace`` and ``local_queue`` are that user's
(a ``dataclasses.replace``), so every reader keeps reading ``member.namespace``. The user and team come from
``mlp_kernel.identity`` (the server's environment, never the kernel start request), because the namespace is
where RBAC draws the line between users (docs/samples/rbac/per-user).

**The name rule** (``identity_part``): two different users must never get the same namespace, or one would run
kernels next to, and read the Secrets of, the other. A lowercase DNS label without ``--`` (``alice``,
``alice-smith``) is used as is. Any other name is escaped: a leading ``x``, then each character of
``[a-z0-9]`` as is and every other UTF-8 byte as ``--`` and two lowercase hex digits (``Alice`` ->
``x--41lice``, ``a.b@c.org`` -> ``xa--2eb--40c--2eorg``). Kept names contain no ``--`` and escaped ones do,
and an escape decodes one way, so the mapping is injective. A name whose result does not fit the label keeps
the first characters of its escaped form, then ``---`` and 16 hex digits of its SHA-256 (``---`` appears in no
kept or escaped form): distinct unless two such long names share a 64-bit hash. A template holds at most one
placeholder, once, so ``{team}-{username}`` (``a-b``+``c`` versus ``a``+``b-c``) cannot be written.

Pure: strings and dataclasses in, the same out; no I/O (placement's rule).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from types import MappingProxyType

from .policy import Member, Policy, Tenancy
from .schema import DNS_LABEL, DNS_SUBDOMAIN

PLACEHOLDERS = ("{username}", "{team}")
HASH_HEX = 16
HASHED_SEPARATOR = "---"
MIN_ROOM = 1 + len(HASHED_SEPARATOR) + HASH_HEX  # the shortest hashed form: one character, ---, the hash
LABEL_MAX = 63
_KEPT = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789")


class TenancyError(ValueError):
    """The policy's tenancy cannot be filled in for this server; the message says what to set."""


def escape(name: str) -> str:
    """``name`` escaped (see the module docstring): ``x``, then ``[a-z0-9]`` kept, other bytes ``--hh``."""
    out = ["x"]
    for byte in name.encode("utf-8", "surrogatepass"):
        out.append(chr(byte) if byte in _PLAIN else f"--{byte:02x}")
    return "".join(out)


def identity_part(name: str, room: int = LABEL_MAX) -> str:
    """The user's (or team's) part of a name, at most ``room`` characters, distinct for distinct names."""
    if not name:
        raise ValueError("an empty name has no namespace")
    if room < MIN_ROOM:
        raise ValueError(f"{room} characters are too few for a name ({MIN_ROOM} at least)")
    if len(name) <= room and _KEPT.match(name) and "--" not in name:
        return name
    escaped = escape(name)
    if len(escaped) <= room:
        return escaped
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_HEX]
    head = escaped[: room - len(HASHED_SEPARATOR) - HASH_HEX]
    return f"{head}{HASHED_SEPARATOR}{digest}"


def placeholders(template: str) -> list[str]:
    """The placeholders ``template`` uses, once per occurrence."""
    return [p for p in PLACEHOLDERS for _ in range(template.count(p))]


def template_problem(template: str, pattern: re.Pattern[str] = DNS_LABEL) -> str:
    """Why ``template`` cannot be filled in as a name matching ``pattern`` ("" when it can)."""
    used = placeholders(template)
    if len(used) > 1:
        return (
            f"{template!r} has {len(used)} placeholders; use one of {{username}} or {{team}}, once "
            "(two would let different users meet at the same name)"
        )
    fixed = template.replace(used[0], "") if used else template
    if used and pattern is DNS_LABEL and LABEL_MAX - len(fixed) < MIN_ROOM:
        return f"{template!r} leaves {LABEL_MAX - len(fixed)} characters for the name; {MIN_ROOM} are needed"
    if not pattern.match(template.replace(used[0], "u") if used else template):
        kind = "DNS label" if pattern is DNS_LABEL else "DNS subdomain"
        return (
            f"{template!r} is not a {kind} once filled in (lowercase letters, digits and '-'"
            + (", '.'" if pattern is DNS_SUBDOMAIN else "")
            + ")"
        )
    return ""


def fill(template: str, user: str, team: str, what: str) -> str:
    """``template`` with its placeholder replaced by the user's (or team's) ``identity_part``."""
    used = placeholders(template)
    if not used:
        return template
    value, source = (user, "user") if used[0] == "{username}" else (team, "team")
    if not value:
        hint = (
            "JUPYTERHUB_USER or the provisioner's user"
            if source == "user"
            else "MLP_KERNEL_TEAM in the notebook server's environment (the spawner sets it)"
        )
        raise TenancyError(
            f"the policy puts {what} in {template!r}, but this server has no {source}: set {hint}"
        )
    room = LABEL_MAX - (len(template) - len(used[0]))
    return template.replace(used[0], identity_part(value, max(room, MIN_ROOM)))


def resolve_member(member: Member, user: str, team: str) -> Member:
    """``member`` as this user's gateway sees it: the namespace, LocalQueue and ServiceAccount filled in."""
    t: Tenancy | None = member.tenancy
    if t is None:
        return member
    where = f"member {member.name!r}'s kernels"
    namespace = fill(t.namespace, user, team, where)
    if not DNS_LABEL.match(namespace):  # the loader checked the template; this guards a hand-built Member
        raise TenancyError(f"{where}: {namespace!r} is not a namespace name")
    queue = fill(t.local_queue, user, team, f"{where}' LocalQueue") if t.local_queue else member.local_queue
    account = fill(t.service_account, user, team, f"{where}' ServiceAccount") if t.service_account else None
    return replace(member, namespace=namespace, local_queue=queue, service_account=account)


def resolve_policy(policy: Policy, user: str, team: str) -> Policy:
    """``policy`` with every tenancy member resolved for ``user``/``team`` (the same policy when none has
    tenancy). Raises ``TenancyError`` saying what the server lacks."""
    if not any(m.tenancy for m in policy.members.values()):
        return policy
    members = {name: resolve_member(m, user, team) for name, m in policy.members.items()}
    return replace(policy, members=MappingProxyType(members))


def setup_hint(member: Member, what: str) -> str:
    """What a user reads when ``what`` (their namespace, its LocalQueue) is missing on a tenancy member."""
    return (
        f"{what} on {member.label}: your kernels run in namespace {member.namespace!r} "
        f"(policy members.{member.name}.tenancy), which needs its LocalQueue {member.local_queue!r}, a "
        "RoleBinding for your notebook server and the admission ConfigMap. Ask your admin to apply the "
        "per-user setup for you (docs/samples/rbac/per-user/user-alice.yaml, with your namespace)."
    )
