"""The placement decision: private first, burst to public only under the burst rule, and say why.

``decide`` is a pure function of (policy, cluster state, request, now): no I/O, no clock, no randomness, so
the gateway, the CLI, the simulator and the tests all get the same answer for the same inputs, and a decision
can be replayed from its logged inputs. Each rule appends one ``RuleResult`` (its inputs, its conclusion) to
the explanation, in the order the rules run:

1. ``candidates``     flavors whose GPU model, tier and size fit the request; "this model or better" (``%gpu
   v100+``, or the policy's ``upgrade_tiers``) adds the flavors of higher tiers.
2. ``member_health``  drop candidates whose member is not Ready or whose ClusterQueue is stopped/inactive.
3. ``private_first``  the lowest-tier (then cheapest) private candidate with free quota now -> run.
4. ``expected_wait``  no private quota free: the best private queue and its expected wait.
5. ``burst``          the burst rule with the deadline-weighted threshold -> burst, else queue; a team or
   user budget past its hard limit (``budget.py``: this month's spend is an input) blocks it like
   ``budget=fixed`` does, one past its soft limit adds a warning to the summary;
   ``public_only``    when no private candidate can serve: burst if allowed, else reject with what to change.
6. ``gpu_model``      (run/queue/burst) which model the kernel gets on the chosen flavor: the named model
   pinned by the GPU product node label, any model of the flavor, or an upgrade ("A100 or H100 instead of
   V100").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .budget import ADVICE, BudgetCheck, Spend, check
from .policy import Flavor, Member, Policy
from .state import ClusterState, FlavorState, MemberState, declared_flavor_state, declared_member_state
from .types import Action, Decision, GpuRequest, RuleResult
from .units import format_duration
from .wait import WaitEstimate, expected_wait

_Candidate = tuple[Flavor, Member, FlavorState]


@dataclass(frozen=True)
class _Ask:
    """The GPU model part of a request: the canonical model (None: any) and whether a flavor of a higher tier
    may serve it ("this model or better")."""

    model: str | None
    upgrade: bool = False

    def is_upgrade(self, f: Flavor) -> bool:
        return self.model is not None and not f.offers(self.model)


def decide(
    policy: Policy, state: ClusterState, request: GpuRequest, now: datetime, spend: Spend | None = None
) -> Decision:
    """Where ``request`` should run given ``state`` at ``now`` (and this month's public ``spend`` of the
    user and team, when budgets are limited), with the full explanation."""
    rules: list[RuleResult] = []
    model, tier = request.gpu_model, request.tier
    if model is None and tier is None:
        model, tier = policy.default_request.gpu_model, policy.default_request.tier
    count = request.gpu_count

    invalid = _validate(policy, model, tier, count)
    if model is not None:
        model = policy.canonical_model(model) or model
    ask = _Ask(model, not invalid and policy.upgrades(model, request.upgrade))
    better = {f.name for f in policy.better_flavors(model)} if model is not None and not invalid else set()
    wanted = {"gpu_model": model, "upgrade": ask.upgrade, "tier": tier, "gpu_count": count}
    if invalid:
        rules.append(RuleResult("candidates", wanted, "none", invalid))
        return Decision(Action.REJECT, gpu_count=count, explanation=tuple(rules), summary=invalid)

    member_states = {name: _member_state(policy, state, name) for name in policy.members}
    candidates: list[_Candidate] = []
    excluded: dict[str, str] = {}
    for f in policy.flavors.values():
        if model is not None and not f.offers(model) and not (ask.upgrade and f.name in better):
            why = f"offers {', '.join(f.gpu_models)}, not {model}"
            excluded[f.name] = why + (f" (a higher tier: {model}+ would take it)" if f.name in better else "")
            continue
        if tier is not None and f.tier != tier:
            excluded[f.name] = f"tier {f.tier}, not {tier}"
            continue
        fs = member_states[f.member].flavors.get(f.name) or declared_flavor_state(policy, f.name)
        if fs.max_gpus < count:
            excluded[f.name] = f"at most {fs.max_gpus} GPUs (quota incl. borrowing), {count} requested"
            continue
        candidates.append((f, policy.members[f.member], fs))
    rules.append(
        RuleResult(
            "candidates",
            {**wanted, "excluded": excluded},
            ", ".join(f"{m.name}/{f.name}" for f, m, _ in candidates) or "none",
            f"{len(candidates)} of {len(policy.flavors)} flavors fit",
        )
    )
    if not candidates:
        what = _describe(model, tier, count)
        summary = f"No flavor can serve {what}; available GPU models: {', '.join(policy.gpu_models())}."
        summary += _upgrade_hint(policy, request, ask, count)
        return Decision(Action.REJECT, gpu_count=count, explanation=tuple(rules), summary=summary)

    healthy = _health_rule(candidates, member_states, rules)
    private = sorted(
        (c for c in healthy if not c[1].public), key=lambda c: (c[0].tier_rank, c[0].price_per_gpu_hour)
    )
    public = sorted(
        (c for c in healthy if c[1].public),
        key=lambda c: (c[2].free_gpus < count, ask.is_upgrade(c[0]), c[0].price_per_gpu_hour, c[0].tier_rank),
    )

    free = [c for c in private if c[2].free_gpus >= count]
    rules.append(
        RuleResult(
            "private_first",
            {"needed_gpus": count, "private_candidates": [_quota(c) for c in private]},
            f"run on {free[0][1].name}/{free[0][0].name}" if free else "no private candidate has free quota",
            "lowest tier, then cheapest, with free quota now"
            if free
            else (
                "private candidates are full"
                if private
                else "no private member is usable"
                if any(not c[1].public for c in candidates)
                else "no private flavor fits the request"
            ),
        )
    )
    if free:
        f, m, _ = free[0]
        rules.append(RuleResult("burst", {}, "skipped", "a private flavor is free"))
        d = _decision(Action.RUN, f, m, ask, count, 0.0, rules)
        return _with_summary(
            d, _better(d, f"Run on {m.name}/{f.name} ({_gpus(d)}) now at ${d.price_per_hour:.2f}/h")
        )

    queue: tuple[_Candidate, WaitEstimate] | None = None
    if private:
        waits = [(c, expected_wait(c[2], count)) for c in private]
        queue = min(waits, key=lambda cw: (cw[1].seconds, cw[0][0].tier_rank, cw[0][0].price_per_gpu_hour))
        (qf, qm, _), qw = queue
        rules.append(
            RuleResult(
                "expected_wait",
                {"flavor": f"{qm.name}/{qf.name}", **qw.to_inputs()},
                f"~{format_duration(qw.seconds)}",
                f"confidence {qw.confidence}: {qw.basis}",
            )
        )
    budgets = check(policy.budgets, spend)
    d = _burst_or_queue(policy, request, now, ask, tier, count, queue, public, candidates, rules, budgets)
    return _budget_notes(d, request, budgets, policy)


def _burst_or_queue(
    policy: Policy,
    request: GpuRequest,
    now: datetime,
    ask: _Ask,
    tier: str | None,
    count: int,
    queue: tuple[_Candidate, WaitEstimate] | None,
    public: list[_Candidate],
    candidates: list[_Candidate],
    rules: list[RuleResult],
    budgets: BudgetCheck,
) -> Decision:
    model = ask.model
    any_public = [c for c in candidates if c[1].public]
    target = (
        public[0]
        if public
        else (min(any_public, key=lambda c: c[0].price_per_gpu_hour) if any_public else None)
    )
    blockers = _blockers(policy, request, target, public, budgets)
    x = policy.burst.threshold_s
    x_eff, ttd = _effective_threshold(policy, request, now)
    inputs: dict[str, Any] = {
        "threshold_s": x,
        "deadline_horizon_s": policy.burst.deadline_horizon_s,
        "deadline": _iso(request.deadline),
        "time_to_deadline_s": None if ttd is None else round(ttd, 1),
        "threshold_eff_s": round(x_eff, 1),
        "waited_s": request.waited_s,
        "burstable": request.burstable,
        "budget": request.budget,
        "data_class": request.data_class,
        "data_class_may_leave_private": policy.may_leave_private(request.data_class),
        "burst_enabled": policy.burst.enabled,
        "public_target": f"{target[1].name}/{target[0].name}" if target else None,
        "public_target_healthy": bool(public),
        "budgets": [b.to_json() for b in budgets.limits],
    }
    offer = _offer(target, ask, count) if target else ""

    if queue is None:  # rule 4: only a public flavor can serve this request
        what = _describe(model, tier, count)
        if target is None:
            rules.append(RuleResult("public_only", inputs, "reject", "no healthy candidate on any member"))
            down = sorted({m.name for _, m, _ in candidates})
            return _reject(
                count,
                rules,
                f"Cannot place {what}: member(s) {', '.join(down)} unavailable now; try again later."
                + _upgrade_hint(policy, request, ask, count),
            )
        private_down = sorted({m.name for _, m, _ in candidates if not m.public})
        why_public = (
            f"the private member(s) {', '.join(private_down)} that could serve it are unavailable"
            if private_down
            else "only a public flavor can serve this request"
        )
        if not blockers:
            rules.append(RuleResult("public_only", inputs, "burst", f"{why_public}; burst allowed"))
            return _burst(target, ask, count, rules, why_public)
        reason = "; ".join(blockers)
        rules.append(RuleResult("public_only", inputs, "reject", reason))
        hint = _hint(request, policy, target, offer)
        where = f"{why_public}, " if private_down else f"only {offer} can serve it "
        return _reject(count, rules, f"Cannot place {what}: {where}and burst is not allowed: {reason}.{hint}")

    (qf, qm, _), qw = queue
    waited_over = request.waited_s > x_eff or x_eff <= 0
    wait_over = qw.seconds > x_eff and qw.confidence != "low"
    inputs["expected_private_wait_s"] = round(qw.seconds, 1)
    inputs["expected_wait_confidence"] = qw.confidence
    due = waited_over or wait_over
    if target is None:
        rules.append(RuleResult("burst", inputs, "queue", "no public flavor serves this request"))
        hint = _upgrade_hint(policy, request, ask, count)
        return _queue(qf, qm, ask, count, qw, rules, "no public flavor serves this request." + hint)
    if due and not blockers:
        why = (
            f"waited {format_duration(request.waited_s)} > threshold {format_duration(x_eff)}"
            if waited_over
            else f"expected private wait {format_duration(qw.seconds)} > threshold {format_duration(x_eff)}"
        )
        rules.append(RuleResult("burst", inputs, "burst", why))
        return _burst(target, ask, count, rules, why)
    if blockers:
        reason = "; ".join(blockers)
        rules.append(RuleResult("burst", inputs, "queue", f"burst not allowed: {reason}"))
        return _queue(
            qf,
            qm,
            ask,
            count,
            qw,
            rules,
            f"burst not allowed: {reason}.{_hint(request, policy, target, offer)}",
        )
    remaining = max(0.0, x_eff - request.waited_s)
    detail = (
        f"burst allowed but not yet due: waited {format_duration(request.waited_s)} of "
        f"{format_duration(x_eff)}"
    )
    rules.append(RuleResult("burst", inputs, "queue", detail))
    return _queue(
        qf,
        qm,
        ask,
        count,
        qw,
        rules,
        f"will burst to {offer} if still queued in {format_duration(remaining)}.",
    )


def _validate(policy: Policy, model: str | None, tier: str | None, count: int) -> str:
    if model is not None and tier is not None:
        return "Give a GPU model or a tier, not both."
    if model is not None and policy.canonical_model(model) is None:
        return f"Unknown GPU model {model!r}; available: {', '.join(policy.gpu_models())}."
    if tier is not None and tier not in policy.tiers:
        return f"Unknown tier {tier!r}; tiers: {', '.join(policy.tiers)}."
    if count < 1:
        return f"GPU count must be at least 1, got {count}."
    if count > policy.max_gpus:
        return f"At most {policy.max_gpus} GPUs per kernel (policy max_gpus); {count} requested."
    return ""


def _member_state(policy: Policy, state: ClusterState, name: str) -> MemberState:
    ms = state.members.get(name)
    return ms if ms is not None else declared_member_state(policy, name)


def _health_rule(
    candidates: list[_Candidate], members: dict[str, MemberState], rules: list[RuleResult]
) -> list[_Candidate]:
    names = dict.fromkeys(m.name for _, m, _ in candidates)
    inputs = {
        n: {
            "ready": members[n].ready,
            "cluster_queue_active": members[n].cluster_queue_active,
            "reason": members[n].reason,
            "source": members[n].source,
        }
        for n in names
    }
    down = [n for n in names if not members[n].usable]
    healthy = [c for c in candidates if members[c[1].name].usable]
    detail = "; ".join(f"{n}: {_down_reason(members[n])}" for n in down) or "all candidate members usable"
    rules.append(
        RuleResult(
            "member_health",
            {"members": inputs},
            ", ".join(n for n in names if n not in down) or "none",
            detail,
        )
    )
    return healthy


def _down_reason(ms: MemberState) -> str:
    what = "not Ready" if not ms.ready else "ClusterQueue stopped or inactive"
    return f"{what}" + (f" ({ms.reason})" if ms.reason else "")


def _quota(c: _Candidate) -> dict[str, Any]:
    f, m, fs = c
    return {
        "flavor": f"{m.name}/{f.name}",
        "tier": f.tier,
        "price_per_gpu_hour": f.price_per_gpu_hour,
        "nominal_gpus": fs.nominal_gpus,
        "used_gpus": fs.used_gpus,
        "borrowable_gpus": fs.borrowable_gpus,
        "free_gpus": fs.free_gpus,
    }


def _effective_threshold(policy: Policy, request: GpuRequest, now: datetime) -> tuple[float, float | None]:
    """X_eff = X * clamp(time_to_deadline / H, 0, 1); X without a deadline; 0 once the deadline passed."""
    x = policy.burst.threshold_s
    if request.deadline is None:
        return x, None
    ttd = (_aware(request.deadline) - _aware(now)).total_seconds()
    ratio = min(1.0, max(0.0, ttd / policy.burst.deadline_horizon_s))
    return x * ratio, ttd


def _blockers(
    policy: Policy,
    request: GpuRequest,
    target: _Candidate | None,
    healthy_public: Sequence[_Candidate],
    budgets: BudgetCheck,
) -> list[str]:
    out = []
    if not policy.burst.enabled:
        out.append("bursting is disabled by the platform policy")
    if not request.burstable:
        out.append("burstable=false")
    if request.budget != "flex":
        out.append(f"budget={request.budget}")
    if not policy.may_leave_private(request.data_class):
        known = request.data_class in policy.data_classes or not policy.data_classes
        out.append(
            f"data class {request.data_class!r} must stay private"
            if known
            else f"unknown data class {request.data_class!r} stays private"
        )
    if budgets.blocked is not None:
        out.append(budgets.refusal())
    if target is not None and not healthy_public:
        out.append(f"public member {target[1].label} is unavailable")
    return out


def _budget_notes(d: Decision, request: GpuRequest, budgets: BudgetCheck, policy: Policy) -> Decision:
    """What the budgets did to ``d``: a burst past a soft limit says so; a refusal (reject, or a queue
    instead of a burst) of a request that allowed bursting, caused by a hard budget or the data class, is
    marked ``refused_for`` for the audit log, and a budget refusal ends with what the user can do."""
    burst_rule = next((r for r in d.explanation if r.rule in ("burst", "public_only")), None)
    if burst_rule is None or burst_rule.result == "skipped" or not burst_rule.inputs.get("public_target"):
        return d
    if d.action == Action.BURST:
        warning = budgets.warning()
        return _with_summary(d, f"{d.summary} Budget: {warning}.") if warning else d
    if not (request.burstable and request.budget == "flex"):
        return d  # the request did not ask to burst: nothing was refused to it
    refused = []
    if budgets.blocked is not None:
        refused.append("budget")
    if not policy.may_leave_private(request.data_class) and policy.burst.enabled:
        refused.append("data_class")
    if not refused:
        return d
    summary = d.summary + (ADVICE if "budget" in refused else "")
    return Decision(**{**d.__dict__, "summary": summary, "refused_for": tuple(refused)})


def _hint(request: GpuRequest, policy: Policy, target: _Candidate, offer: str) -> str:
    changes = []
    if not request.burstable:
        changes.append("burst=on")
    if request.budget != "flex":
        changes.append("budget=flex")
    fixable = policy.burst.enabled and policy.may_leave_private(request.data_class)
    if not changes or not fixable or target is None:
        return ""
    return f" Run %gpu {' '.join(changes)} to allow {offer}."


def _offer(c: _Candidate, ask: _Ask, count: int) -> str:
    f, m, _ = c
    instead = f" ({' or '.join(f.gpu_models)} instead of {ask.model})" if ask.is_upgrade(f) else ""
    return f"{m.label} {f.name}{instead} at ${f.price_per_gpu_hour * count:.2f}/h"


def _upgrade_hint(policy: Policy, request: GpuRequest, ask: _Ask, count: int) -> str:
    """What to type so a request for a model no public flavor offers may burst: ``v100+`` (and the burst
    options it lacks), naming the cheapest public flavor of a higher tier. Empty when that cannot help."""
    if ask.model is None or ask.upgrade or not policy.burst.enabled:
        return ""
    if not policy.may_leave_private(request.data_class):
        return ""
    better = [f for f in policy.better_flavors(ask.model) if policy.members[f.member].public]
    if not better:
        return ""
    f = min(better, key=lambda x: (x.price_per_gpu_hour, x.tier_rank))
    m = policy.members[f.member]
    options = [f"{ask.model.lower()}+"]
    if not request.burstable:
        options.append("burst=on")
    if request.budget != "flex":
        options.append("budget=flex")
    return (
        f" Run %gpu {' '.join(options)} to allow {ask.model} or better: {m.label} {f.name} "
        f"({' or '.join(f.gpu_models)}) at ${f.price_per_gpu_hour * count:.2f}/h."
    )


def _decision(
    action: Action,
    f: Flavor,
    m: Member,
    ask: _Ask,
    count: int,
    wait: float | None,
    rules: list[RuleResult],
) -> Decision:
    model = f.model_for(ask.model)
    upgraded = ask.is_upgrade(f)
    values = () if ask.model is None or upgraded or m.backend != "kubernetes" else f.products(model)
    label = m.gpu_product_label if values else None
    if upgraded:
        result = f"{ask.model} or better: {' or '.join(f.gpu_models)} (tier {f.tier})"
        detail = f"{f.name} does not offer {ask.model}; its tier is higher, and the request allows an upgrade"
    elif label:
        result = f"{model}, pinned by {label} in ({', '.join(values)})"
        detail = f"{f.name} offers {', '.join(f.gpu_models)}: the node label keeps the pod on {model} nodes"
    elif ask.model is not None:
        result = model
        detail = (
            f"the flavor's only model: {f.name}'s node label pins it"
            if len(f.gpu_models) == 1
            else f"{f.name} offers {', '.join(f.gpu_models)}; a {m.backend} member has no node label to pin"
        )
    else:
        result = f"any of {', '.join(f.gpu_models)}"
        detail = "the request names no model"
    inputs = {
        "requested": ask.model,
        "upgrade": ask.upgrade,
        "flavor_models": list(f.gpu_models),
        "pin_label": label,
        "pin_values": list(values),
    }
    rules.append(RuleResult("gpu_model", inputs, result, detail))
    return Decision(
        action=action,
        member=m.name,
        flavor=f.name,
        local_queue=m.local_queue,
        namespace=m.namespace,
        gpu_model=model,
        gpu_count=count,
        public=m.public,
        expected_wait_s=wait,
        price_per_hour=round(f.price_per_gpu_hour * count, 6),
        explanation=tuple(rules),
        models=(model,) if ask.model is not None and not upgraded else tuple(f.gpu_models),
        pin_label=label,
        pin_values=tuple(values),
        upgraded_from=ask.model if upgraded else None,
    )


def _better(d: Decision, summary: str) -> str:
    """``V100 or better: burst to ...`` when the decision is an upgrade; the summary as it is otherwise."""
    return f"{d.upgraded_from} or better: {summary[0].lower()}{summary[1:]}" if d.upgraded_from else summary


def _gpus(d: Decision) -> str:
    """``A100 x1``; ``A100 or H100 x1 instead of V100`` for an upgrade."""
    if d.upgraded_from:
        return f"{' or '.join(d.models)} x{d.gpu_count} instead of {d.upgraded_from}"
    return f"{d.gpu_model} x{d.gpu_count}"


def _with_summary(d: Decision, summary: str) -> Decision:
    return Decision(**{**d.__dict__, "summary": summary})


def _burst(target: _Candidate, ask: _Ask, count: int, rules: list[RuleResult], why: str) -> Decision:
    f, m, fs = target
    w = expected_wait(fs, count)
    d = _decision(Action.BURST, f, m, ask, count, w.seconds, rules)
    when = "now" if w.seconds == 0 else f"(ETA ~{format_duration(w.seconds)})"
    return _with_summary(
        d, _better(d, f"Burst to {m.name}/{f.name} ({_gpus(d)}) {when} at ${d.price_per_hour:.2f}/h: {why}.")
    )


def _queue(
    f: Flavor, m: Member, ask: _Ask, count: int, w: WaitEstimate, rules: list[RuleResult], why: str
) -> Decision:
    d = _decision(Action.QUEUE, f, m, ask, count, w.seconds, rules)
    where = f"Queued on {m.name}/{f.name}, position {w.position}, ETA ~{format_duration(w.seconds)}"
    return _with_summary(d, _better(d, f"{where} (confidence {w.confidence}); {why}"))


def _reject(count: int, rules: list[RuleResult], summary: str) -> Decision:
    return Decision(Action.REJECT, gpu_count=count, explanation=tuple(rules), summary=summary)


def _describe(model: str | None, tier: str | None, count: int) -> str:
    return f"{model or (f'tier {tier}' if tier else 'a GPU')} x{count}"


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def _iso(t: datetime | None) -> str | None:
    return _aware(t).isoformat() if t is not None else None
