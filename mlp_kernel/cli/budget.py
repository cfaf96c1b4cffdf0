"""``mlp-kernel budget``: a team's public GPU spend this month, what is left, and its top spenders.

Reads the same ledger the gateways write (the policy's ``budgets.ledger_member`` ConfigMap, or a user's file
ledger with ``--ledger-dir``) and compares it with the policy's limits in the words ``%gpu`` uses, so an admin
and a user read the same numbers. ``--json`` for scripts and dashboards. Exit codes: 0, 1 the ledger cannot be
read, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..placement import PolicyError, load_policy
from ..placement.budget import Spend, check, dollars, money, month_of

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "budget", help="a team's public GPU spend this month and its top spenders", description=__doc__
    )
    p.add_argument("--policy", required=True, metavar="POLICY.yaml", help="the policy with `budgets`")
    p.add_argument("--team", required=True, help="the team (MLP_KERNEL_TEAM of its users' servers)")
    p.add_argument("--month", help="YYYY-MM, UTC (default: this month)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="how many spenders to list (default 10)")
    p.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig with the ledger member's context")
    p.add_argument("--ledger-dir", metavar="DIR", help="a file ledger's directory (no ledger_member)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def report(policy: Any, team: str, month: str, users: dict[str, int], top: int) -> dict[str, Any]:
    """What the command prints, as data: the team's budget and each top spender's, in dollars."""
    total = dollars(sum(users.values()))
    spenders = sorted(users.items(), key=lambda kv: (-kv[1], kv[0]))[: max(0, top)]
    team_check = check(policy.budgets, Spend(team, "", month, total, 0.0))
    team_limit = next((b for b in team_check.limits if b.scope == "team"), None)
    rows = []
    for user, micro in spenders:
        limits = check(policy.budgets, Spend("", user, month, 0.0, dollars(micro))).limits
        rows.append(
            {"user": user, "spent_usd": dollars(micro), "budget": limits[0].to_json() if limits else None}
        )
    return {
        "team": team,
        "month": month,
        "spent_usd": total,
        "limit_usd": policy.budgets.team_monthly,
        "soft_usd": policy.budgets.team_soft,
        "left_usd": team_limit.left_usd if team_limit else None,
        "line": team_limit.line()
        if team_limit
        else f"Team {team}: {money(total)} in {month} (no team limit)",
        "users": len(users),
        "top_spenders": rows,
    }


def _text(r: dict[str, Any]) -> str:
    lines = [f"{r['line']} [{r['month']}, UTC]"]
    if r["left_usd"] is not None:
        lines.append(f"Left: {money(r['left_usd'])}")
    lines.append(
        f"Top spenders ({len(r['top_spenders'])} of {r['users']}):" if r["users"] else "No spend yet."
    )
    for row in r["top_spenders"]:
        note = _user_note(row["budget"])
        lines.append(f"  {row['user']:<24} {money(row['spent_usd']):>12}{note}")
    return "\n".join(lines)


def _user_note(b: dict[str, Any] | None) -> str:
    """``  (user limit $150 reached: no new bursts)``, ``  (past the soft limit $80)``, ``  (of $150)``."""
    if not b or b["limit_usd"] is None and not b["over_soft"]:
        return ""
    if b["over_hard"]:
        return f"  (user limit {money(b['limit_usd'])} reached: no new bursts)"
    if b["over_soft"]:
        return f"  (past the soft limit {money(b['soft_usd'])})"
    return f"  (of {money(b['limit_usd'])})"


def run(args: argparse.Namespace) -> int:
    from ..gateway.budget import make_ledger

    month = args.month or month_of(datetime.now(timezone.utc))
    if not MONTH.match(month):
        print(f"mlp-kernel budget: --month must be YYYY-MM, got {month!r}", file=sys.stderr)
        return 2
    try:
        policy = load_policy(args.policy)
    except (PolicyError, OSError) as exc:
        print(f"mlp-kernel budget: {exc}", file=sys.stderr)
        return 2
    try:
        ledger = make_ledger(policy, args.kubeconfig, Path(args.ledger_dir) if args.ledger_dir else None)
        doc = asyncio.run(ledger.read(args.team, month))
    except Exception as exc:
        where = policy.budgets.ledger_member or "the file ledger"
        print(f"mlp-kernel budget: cannot read the ledger on {where}: {exc}", file=sys.stderr)
        return 1
    r = report(policy, args.team, month, doc.users, args.top)
    print(json.dumps(r, indent=2) if args.json else _text(r))
    return 0
