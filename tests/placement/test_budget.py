"""Budgets in placement: this month's spend is an input; a hard limit stops new bursts, a soft one warns.

A table of cases on the demo policy (private bronze/silver, public AWS gold at $4.10/h) with budgets added,
each decided by the real ``decide``; then the loader's checks of the ``budgets`` section.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from mlp_kernel.placement import Action, ClusterState, GpuRequest, Policy, decide
from mlp_kernel.placement.budget import Spend, check, month_of
from mlp_kernel.placement.policy import BudgetSettings
from mlp_kernel.placement.policy_load import PolicyError, parse_policy

from .conftest import NOW
from .test_decide import FLEX, full

LIMITS = BudgetSettings(team_monthly=500.0, team_soft=400.0, user_monthly=100.0, user_soft=80.0)
QUEUED_LONG = GpuRequest(gpu_model="A100", **FLEX)  # only gold offers A100: public-only
WAITED = GpuRequest(gpu_model="V100", upgrade=True, waited_s=3600, **FLEX)  # silver full, waited > 10 min


def spend(team: float, user: float) -> Spend:
    return Spend(team="ml-vision", user="ada", month="2026-11", team_usd=team, user_usd=user)


CASES = [
    # (id, request, full flavors, spend, action, refused_for, words in the summary)
    ("no spend known: bursts as today", QUEUED_LONG, (), None, Action.BURST, (), ["Burst to aws/gold"]),
    ("under both limits", QUEUED_LONG, (), spend(10, 5), Action.BURST, (), ["Burst to aws/gold"]),
    (
        "team past soft: bursts and warns",
        QUEUED_LONG,
        (),
        spend(412, 5),
        Action.BURST,
        (),
        ["Budget: team ml-vision's public GPU spend $412 is past the soft limit $400", "hard limit $500"],
    ),
    (
        "team at hard: public-only request rejected, names budget, spend, limit and what to do",
        QUEUED_LONG,
        (),
        spend(500, 5),
        Action.REJECT,
        ("budget",),
        ["Team ml-vision's public GPU budget is used up: $500 spent of $500 this month", "Private pools"],
    ),
    (
        "user at hard while team is fine: queued privately instead of bursting",
        WAITED,
        ("silver",),
        spend(20, 100.5),
        Action.QUEUE,
        ("budget",),
        ["User ada's public GPU budget is used up: $100.50 spent of $100", "ask your platform admin"],
    ),
    (
        "a private flavor is free: budgets do not matter",
        GpuRequest(**FLEX),
        (),
        spend(9999, 9999),
        Action.RUN,
        (),
        ["Run on private/bronze"],
    ),
    (
        "burst not asked for (burst=off): over budget, but nothing was refused to it",
        GpuRequest(gpu_model="A100"),
        (),
        spend(600, 0),
        Action.REJECT,
        (),
        ["burst is not allowed: burstable=false; budget=fixed; Team ml-vision's public GPU budget is"],
    ),
    (
        "sensitive data: refused for the data class, not the budget",
        replace(QUEUED_LONG, data_class="sensitive"),
        (),
        spend(0, 0),
        Action.REJECT,
        ("data_class",),
        ["'sensitive' must stay private"],
    ),
]


@pytest.mark.parametrize(("request_", "full_", "spent", "action", "refused", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_budget_table(
    demo_policy: Policy,
    request_: GpuRequest,
    full_: tuple[str, ...],
    spent: Spend | None,
    action: Action,
    refused: tuple[str, ...],
    words: list[str],
) -> None:
    policy = replace(demo_policy, budgets=LIMITS)
    d = decide(policy, full(policy, *full_), request_, NOW, spent)
    assert d.action is action, d.explain()
    assert d.refused_for == refused
    for w in words:
        assert w in d.summary, d.summary
    if spent is not None and action is not Action.RUN:
        burst = next(r for r in d.explanation if r.rule in ("burst", "public_only"))
        assert [b["who"] for b in burst.inputs["budgets"]] == ["ml-vision", "ada"]


def test_no_budgets_in_the_policy_means_unlimited(demo_policy: Policy) -> None:
    d = decide(demo_policy, ClusterState.from_policy(demo_policy), QUEUED_LONG, NOW, spend(1e6, 1e6))
    assert d.action is Action.BURST and d.refused_for == ()


def test_limit_lines_for_the_status() -> None:
    (team, user) = check(LIMITS, spend(412, 3.27)).limits
    assert team.line() == "Team ml-vision: $412 of $500 this month (soft limit $400 passed)"
    assert user.line() == "User ada: $3.27 of $100 this month"
    assert team.left_usd == 88
    assert check(BudgetSettings(user_monthly=10.0), spend(0, 10)).limits[0].line().endswith("no new bursts)")
    assert check(LIMITS, None).limits == ()
    assert month_of(NOW) == "2026-11"


YAML = """
members: {here: {backend: local}}
flavors: {f: {member: here, tier: t, gpu_models: [X], price_per_gpu_hour: 0, capacity_gpus: 1}}
budgets: %s
"""


def test_budgets_section_loads() -> None:
    p = parse_policy(YAML % "{team_monthly: 500, team_soft: 400, user_monthly: 50, record_every: 1m}")
    assert p.budgets == BudgetSettings(500.0, 400.0, 50.0, None, None, "mlp-kernel", 60.0)


@pytest.mark.parametrize(
    ("section", "error"),
    [
        (
            "{team_monthly: 100, team_soft: 200}",
            "soft limit $200 is above the hard limit `team_monthly` $100",
        ),
        ("{user_monthly: -1}", "must be a number from 0"),
        ("{ledger_member: here}", "'here' is not a kubernetes member"),
        ("{team_budget: 5}", "team_budget"),
    ],
)
def test_budgets_section_errors(section: str, error: str) -> None:
    with pytest.raises(PolicyError) as e:
        parse_policy(YAML % section)
    assert error in str(e.value)
