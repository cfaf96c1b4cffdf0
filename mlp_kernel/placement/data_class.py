"""A notebook's data class: what the admin set (``data_classes.defaults``), which the user may only tighten.

The class decides whether a kernel may run on a public member, so a class set by the admin for a team, a
namespace or a path must hold whatever the notebook's ``%gpu data=`` says: the gateway runs inside a process
the user controls, but the class it asks placement with is the one this module gives, and the pod's
``mlp.io/data-class`` label (what the admission sample refuses on a public member) carries it too.

"Stricter" is placement's own order, the only one the policy defines: a class that must stay private
(``keep_private``, or an unknown class, ``Policy.may_leave_private``) is stricter than one that may leave. So
on a notebook whose admin class must stay private, ``%gpu data=C`` is accepted only for a class that must stay
private as well; elsewhere any declared class is accepted. Where several defaults match, one that must stay
private wins; among equals, the first in the file.

Pure: the policy and the notebook's identity in, a class or a refusal out.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from .policy import DataClassDefault, Policy

DATA_CLASS_MATCHES = ("team", "namespace", "path")


@dataclass(frozen=True)
class Notebook:
    """What the defaults match on, all from the server, never from the client: the server's team
    (``identity.server_team``), the server pod's own namespace (``identity.server_namespace``, "" outside a
    cluster) and the notebook's path from the server's root."""

    team: str = ""
    namespace: str = ""
    path: str = ""


def _matches(rule: DataClassDefault, nb: Notebook) -> bool:
    if rule.team is not None:
        return bool(nb.team) and rule.team == nb.team
    if rule.namespace is not None:
        return bool(nb.namespace) and rule.namespace == nb.namespace
    if rule.path is not None:
        return bool(nb.path) and fnmatchcase(nb.path.lstrip("/"), rule.path.lstrip("/"))
    return False


def admin_data_class(policy: Policy, nb: Notebook) -> DataClassDefault | None:
    """The default that sets this notebook's class (None when none matches)."""
    found = [r for r in policy.data_class_defaults if _matches(r, nb)]
    private = [r for r in found if not policy.may_leave_private(r.data_class)]
    return (private or found)[0] if found else None


def _why(rule: DataClassDefault) -> str:
    if rule.team is not None:
        return f"for team {rule.team!r}"
    if rule.namespace is not None:
        return f"for namespace {rule.namespace!r}"
    return f"for notebooks under {rule.path!r}"


def effective_data_class(policy: Policy, nb: Notebook, asked: str | None) -> str | None:
    """The class placement decides with: the user's ``asked`` when it is at least as strict as the admin's,
    the admin's when the user asked for none. Raises ``DataClassRefused`` when ``asked`` would relax it."""
    rule = admin_data_class(policy, nb)
    if rule is None:
        return asked
    if asked is None:
        return rule.data_class
    if not policy.may_leave_private(rule.data_class) and policy.may_leave_private(asked):
        raise DataClassRefused(
            f"data={asked} would let this notebook's data leave the private members, but the admin set its "
            f"data class to {rule.data_class!r} {_why(rule)} (policy data_classes.defaults), and that class "
            "must stay private. A notebook may only be made stricter than the admin's class; ask an admin "
            "if this notebook's data may leave."
        )
    return asked


class DataClassRefused(ValueError):
    """``%gpu data=`` asked for a class less strict than the admin's; the message names both and why."""
