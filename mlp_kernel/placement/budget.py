"""Budgets as placement sees them: this month's public spend (an input) against the policy's limits.

Placement stays pure: it never reads the ledger. The gateway reads the team's and the user's spend so far
from the ledger (``backends/ledger.py``) and passes it to ``decide`` as a ``Spend``; ``check`` compares it
with ``policy.budgets`` and says, in words, which limit is passed. Past a hard limit the burst rule refuses
to burst (the decision's explanation names the budget, the spend and the limit, and what the user can do);
past a soft one a burst still happens and says so. The same words feed ``%gpu``'s budget line, the status
snapshot and ``mlp-kernel budget``, so they can never disagree.

Money is kept in micro-dollars (integers) wherever it is added up, so two gateways adding a cent each never
lose one to float rounding; the dollars here are for comparison and display.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .policy import BudgetSettings

MICRO = 1_000_000  # micro-dollars per dollar


def month_of(when: datetime | float) -> str:
    """The calendar month (UTC) a spend belongs to: ``2026-12``."""
    if isinstance(when, (int, float)):
        when = datetime.fromtimestamp(when, timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m")


def dollars(micro: int) -> float:
    return micro / MICRO


def to_micro(usd: float) -> int:
    return int(round(usd * MICRO))


def money(usd: float) -> str:
    """``$412`` for whole dollars, ``$3.27`` otherwise (the status line's style)."""
    return f"${usd:,.0f}" if abs(usd - round(usd)) < 0.005 else f"${usd:,.2f}"


@dataclass(frozen=True)
class Spend:
    """Public GPU spend so far this month: the team's (every member's) and this user's, in dollars."""

    team: str
    user: str
    month: str
    team_usd: float = 0.0
    user_usd: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "team": self.team,
            "user": self.user,
            "month": self.month,
            "team_usd": round(self.team_usd, 6),
            "user_usd": round(self.user_usd, 6),
        }


@dataclass(frozen=True)
class Limit:
    """One budget compared with its spend: ``scope`` ``team``/``user``, ``who`` the team or user name."""

    scope: str
    who: str
    spent_usd: float
    hard_usd: float | None
    soft_usd: float | None

    @property
    def over_hard(self) -> bool:
        return self.hard_usd is not None and self.spent_usd >= self.hard_usd

    @property
    def over_soft(self) -> bool:
        return self.soft_usd is not None and self.spent_usd >= self.soft_usd

    @property
    def left_usd(self) -> float | None:
        return None if self.hard_usd is None else max(0.0, self.hard_usd - self.spent_usd)

    @property
    def name(self) -> str:
        return f"Team {self.who}" if self.scope == "team" else f"User {self.who}"

    def line(self) -> str:
        """``Team ml-vision: $412 of $500 this month (soft limit $400 passed)``."""
        text = f"{self.name}: {money(self.spent_usd)}"
        text += f" of {money(self.hard_usd)} this month" if self.hard_usd is not None else " this month"
        if self.over_hard:
            text += " (limit reached: no new bursts)"
        elif self.over_soft and self.soft_usd is not None:
            text += f" (soft limit {money(self.soft_usd)} passed)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "who": self.who,
            "spent_usd": round(self.spent_usd, 6),
            "limit_usd": self.hard_usd,
            "soft_usd": self.soft_usd,
            "over_soft": self.over_soft,
            "over_hard": self.over_hard,
            "line": self.line(),
        }


@dataclass(frozen=True)
class BudgetCheck:
    """Every limited budget that applies to one request, with what placement must do about them."""

    limits: tuple[Limit, ...] = ()

    @property
    def blocked(self) -> Limit | None:
        """The first budget past its hard limit (team before user), or None."""
        return next((b for b in self.limits if b.over_hard), None)

    @property
    def warned(self) -> tuple[Limit, ...]:
        return tuple(b for b in self.limits if b.over_soft and not b.over_hard)

    def refusal(self) -> str:
        """Why a burst is refused, naming the budget, spend and limit, and what the user can do."""
        b = self.blocked
        if b is None:
            return ""
        return (
            f"{b.name}'s public GPU budget is used up: "
            f"{money(b.spent_usd)} spent of {money(b.hard_usd or 0.0)} this month (UTC)"
        )

    def warning(self) -> str:
        return "; ".join(
            f"{b.name.lower()}'s public GPU spend {money(b.spent_usd)} is past the soft limit "
            f"{money(b.soft_usd or 0.0)} this month"
            + (f" (hard limit {money(b.hard_usd)})" if b.hard_usd else "")
            for b in self.warned
        )


ADVICE = (
    " Private pools still serve this notebook (it waits in their queue); ask your platform admin to raise "
    "the budget if it must burst."
)


def check(settings: BudgetSettings, spend: Spend | None) -> BudgetCheck:
    """The budgets of ``settings`` that apply to ``spend`` (none when nothing is limited or spend unknown)."""
    if spend is None or not settings.limited:
        return BudgetCheck()
    limits = []
    if settings.team_monthly is not None or settings.team_soft is not None:
        if spend.team:
            limits.append(
                Limit("team", spend.team, spend.team_usd, settings.team_monthly, settings.team_soft)
            )
    if settings.user_monthly is not None or settings.user_soft is not None:
        limits.append(Limit("user", spend.user, spend.user_usd, settings.user_monthly, settings.user_soft))
    return BudgetCheck(tuple(limits))
