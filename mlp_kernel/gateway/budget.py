"""The gateway's side of budgets and the audit log: read spend before placing, record it as kernels run.

Placement is pure (``placement/budget.py``): this module feeds it. Before each decision it reads this month's
spend of the user and the team from the ledger (``backends/ledger.py``: the policy's ``ledger_member``
ConfigMap, or the user's file) and hands it to ``decide``. While a kernel runs on a public member it writes
the kernel's cumulative cost to the ledger every ``budgets.record_every`` and once more at release, keyed by
the remote kernel's id, so a retry or a restarted gateway never counts it twice. What is recorded is what
ran: the GPU-seconds the status counts (from the moment the kernel answered) x the flavor's price.

It also writes the audit log (``mlp_kernel.audit``): each placement that ran on a public member, and each
refusal for a budget or a data class, once per launch (a queued kernel is re-placed every 5 s; one refusal
is one decision a person made a request for, not one per re-evaluation).

Nothing here may fail a launch or a release: a ledger that cannot be read leaves the spend unknown (placement
then applies no budget, the warning is logged and shown in ``%gpu``) and a record that fails is retried at
the next interval (the kernel's cost is cumulative, so nothing is lost).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .. import audit
from ..backends.ledger import FileLedger, Ledger, LedgerDoc
from ..placement.budget import Spend, check, dollars, month_of, to_micro
from ..placement.types import Decision
from ..protocol import BudgetLine

if TYPE_CHECKING:
    from ..placement import Policy
    from .config import GatewayConfig
    from .status import GatewayStatus

log = logging.getLogger(__name__)
READ_TTL_S = 30.0  # a queued kernel is re-placed every 5 s: the ledger is read at most this often


def make_ledger(policy: Policy, kubeconfig: str | None = None, root: Path | None = None) -> Ledger:
    """The policy's ledger: the ConfigMaps on ``budgets.ledger_member``, else the user's file ledger (under
    ``root``, default the Jupyter data dir)."""
    member = policy.members.get(policy.budgets.ledger_member or "")
    if member is None:
        return FileLedger(root)
    from ..backends.kubernetes.ledger import ConfigMapLedger
    from ..backends.kubernetes.members import Connection, MemberClients

    api = MemberClients(Connection(kubeconfig)).get(member)
    return ConfigMapLedger(api, policy.budgets.ledger_namespace)


class BudgetKeeper:
    def __init__(self, config: GatewayConfig, ledger: Ledger | None = None) -> None:
        self.config = config
        self._ledger = ledger
        self.lines: list[BudgetLine] = []  # the status snapshot's ``budget``
        self.problem = ""  # why the spend is unknown (shown by %gpu), "" when it is known
        self._recorded_at: dict[str, float] = {}  # remote kernel id -> clock time of its last record
        self._audited: set[tuple[int, str]] = set()  # (launch, event) already written
        self._launch = 0
        self._read: tuple[float, str, LedgerDoc] | None = None  # (clock time, month, document) last read

    def ledger(self, policy: Policy) -> Ledger:
        if self._ledger is None:
            self._ledger = make_ledger(policy, self.config.kubernetes.get("kubeconfig"))
        return self._ledger

    async def spend(self, policy: Policy, now: float) -> Spend | None:
        """This month's spend of the user and the team (None when the policy limits nothing, or unknown)."""
        if not policy.budgets.limited:
            self.lines = []
            return None
        month = month_of(now)
        try:
            doc = await self._doc(policy, month, now)
        except Exception as exc:  # the cluster is unreachable: no budget applies, and %gpu says why
            self.problem = f"the budget ledger cannot be read ({type(exc).__name__}: {exc})"
            log.warning("%s", self.problem)
            return None
        self.problem = ""
        user = self.config.user
        spend = Spend(self.config.team, user, month, dollars(doc.total), dollars(doc.users.get(user, 0)))
        self.lines = [b.to_json() for b in check(policy.budgets, spend).limits]  # type: ignore[misc]
        return spend

    async def show(self, policy: Policy | None, status: GatewayStatus, now: float) -> str:
        """Bring ``status.budget`` up to date for ``%gpu`` (before the first kernel too); the line to add
        when the spend cannot be known, else ""."""
        if policy is None:
            return ""
        await self.spend(policy, now)
        status.budget = self.lines
        return f"Budget: unknown, {self.problem}." if self.problem else ""

    async def _doc(self, policy: Policy, month: str, now: float) -> LedgerDoc:
        cached = self._read
        if cached is not None and cached[1] == month and 0 <= now - cached[0] < READ_TTL_S:
            return cached[2]
        doc = await self.ledger(policy).read(self.config.team, month)
        self._read = (now, month, doc)
        return doc

    def new_launch(self) -> None:
        """A new launch: its refusals are audited anew, the spend read afresh (others may have spent)."""
        self._launch += 1
        self._read = None

    def decided(self, d: Decision) -> None:
        """Audit a refusal for a budget or a data class (once per launch and reason)."""
        for reason in d.refused_for:
            event = audit.BUDGET_REFUSAL if reason == "budget" else audit.DATA_CLASS_REFUSAL
            self._audit_once(event, d.summary, action=d.action.value, data_class=_data_class(d))

    def placed(self, d: Decision, remote_id: str) -> None:
        """Audit a kernel that started on a public member."""
        if d.public:
            self._audit_once(
                audit.PUBLIC_PLACEMENT,
                d.summary,
                member=d.member,
                flavor=d.flavor,
                gpu_model=d.gpu_model,
                gpu_count=d.gpu_count,
                price_per_hour=d.price_per_hour,
                remote_kernel=remote_id,
                budget=[line["line"] for line in self.lines],
            )

    def _audit_once(self, event: str, why: str, **what: object) -> None:
        if (self._launch, event) in self._audited:
            return
        self._audited.add((self._launch, event))
        audit.record(
            event, user=self.config.user, team=self.config.team, why=why, kernel=self.config.kernel_id, **what
        )

    async def accrue(
        self, policy: Policy | None, status: GatewayStatus, remote_id: str, now: float, final: bool = False
    ) -> None:
        """Write the public kernel's cumulative cost to the ledger when ``record_every`` has passed since
        its last record (or ``final``: at release, before the status forgets the kernel)."""
        if policy is None or not status.public or not status.since or not status.price_per_hour:
            return
        last = self._recorded_at.get(remote_id, status.since)
        if not final and now - last < policy.budgets.record_every_s:
            return
        self._recorded_at[remote_id] = now
        try:
            for month, cost in month_shares(status, now):
                added = await self.ledger(policy).record(
                    self.config.team, month, self.config.user, remote_id, to_micro(cost)
                )
                log.debug("budget ledger: %s %s $%.4f (+%d micro-dollars)", remote_id, month, cost, added)
            self._read = None  # read what was just written (and what others wrote)
            await self.spend(policy, now)  # the status's budget lines follow the spend
            status.budget = self.lines
        except Exception as exc:
            log.warning(
                "could not record %s's spend in the budget ledger (retried later): %s", remote_id, exc
            )
        if final:
            self._recorded_at.pop(remote_id, None)


def month_shares(status: GatewayStatus, now: float) -> list[tuple[str, float]]:
    """The kernel's cumulative cost in each month it ran in, oldest first: a kernel started on the 31st and
    still running on the 1st counts up to midnight (UTC) in the old month and the rest in the new one, each
    cumulative within its month (so re-recording either never adds twice)."""
    since = status.since or now
    shares, start = [], since
    while month_of(start) != month_of(now):
        boundary = _next_month(start)
        shares.append((month_of(start), status.kernel_cost(boundary) - status.kernel_cost(start)))
        start = boundary
    shares.append((month_of(now), status.kernel_cost(now) - status.kernel_cost(start)))
    return shares


def _next_month(t: float) -> float:
    d = datetime.fromtimestamp(t, timezone.utc)
    first = datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=timezone.utc)
    return first.timestamp()


def _data_class(d: Decision) -> str | None:
    for r in d.explanation:
        if r.rule in ("burst", "public_only"):
            value = r.inputs.get("data_class")
            return value if isinstance(value, str) else None
    return None
