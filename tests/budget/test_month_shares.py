"""A public kernel running across the end of a month: its spend splits at midnight UTC, recorded once each."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

from mlp_kernel.backends.ledger import FileLedger
from mlp_kernel.clock import ManualClock
from mlp_kernel.gateway.budget import BudgetKeeper, month_shares
from mlp_kernel.gateway.config import GatewayConfig
from mlp_kernel.gateway.status import GatewayStatus
from mlp_kernel.placement import parse_policy
from mlp_kernel.placement.budget import to_micro

MIDNIGHT = datetime(2027, 1, 1, tzinfo=timezone.utc).timestamp()
POLICY = """
members: {aws: {backend: local, public: true}}
flavors: {gold: {member: aws, tier: gold, gpu_models: [A100], price_per_gpu_hour: 3.6, capacity_gpus: 1}}
budgets: {team_monthly: 100, record_every: 10m}
"""


def running(since: float, clock: ManualClock) -> GatewayStatus:
    s = GatewayStatus("k1", clock=clock)
    s.public, s.price_per_hour, s.since = True, 3.6, since  # $0.001 a second
    return s


def test_shares_split_at_midnight_utc() -> None:
    clock = ManualClock(MIDNIGHT + 600)
    s = running(MIDNIGHT - 1200, clock)
    assert [(m, round(c, 6)) for m, c in month_shares(s, clock.time())] == [
        ("2026-12", 1.2),
        ("2027-01", 0.6),
    ]
    assert month_shares(s, MIDNIGHT - 600) == [("2026-12", s.kernel_cost(MIDNIGHT - 600))]


def test_recorded_across_the_month_end_once_each(tmp_path: Path) -> None:
    clock = ManualClock(MIDNIGHT - 1200)
    s = running(clock.time(), clock)
    ledger = FileLedger(tmp_path)
    keeper = BudgetKeeper(GatewayConfig(kernel_id="k1", user="ada", team="ml-vision"), ledger)
    policy = parse_policy(POLICY)

    async def go() -> None:
        for at in (MIDNIGHT - 600, MIDNIGHT + 60, MIDNIGHT + 700):
            clock.now = at
            await keeper.accrue(policy, s, "remote-1", at)  # every 10 min
        await keeper.accrue(policy, s, "remote-1", MIDNIGHT + 800, final=True)  # released

    asyncio.run(go())
    dec = asyncio.run(ledger.read("ml-vision", "2026-12"))
    jan = asyncio.run(ledger.read("ml-vision", "2027-01"))
    assert dec.users == {"ada": to_micro(1.2)} and jan.users == {"ada": to_micro(0.8)}
    assert keeper.lines[0]["line"] == "Team ml-vision: $0.80 of $100 this month"
