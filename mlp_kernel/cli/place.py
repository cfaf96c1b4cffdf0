"""``mlp-kernel place``: ask placement where a request would go, and why, without starting anything.

Admins use it to check a policy against the real queues (``kubectl get ... -o yaml`` dumps per member) or
against declared capacity when no dump is given. The output is the same ``Decision`` the gateway would act on:
human-readable by default, ``--json`` for scripts. Bad files or flags exit with code 2 and say what to fix.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from ..placement import Decision, GpuRequest, Policy, PolicyError, decide, load_policy
from ..placement.adapters import StateError, state_from_dumps
from ..placement.units import QUANTITY_HELP, format_duration, parse_deadline, parse_quantity, parse_time
from . import duration_flag


class UsageError(ValueError):
    """A flag or file the user must fix (exit code 2)."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "place",
        help="show where a GPU request would be placed and why",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--policy", required=True, metavar="POLICY.yaml", help="placement policy file")
    p.add_argument(
        "--state",
        action="append",
        default=[],
        metavar="MEMBER=DUMP.yaml",
        help="kubectl get -o yaml output for a member (repeatable; several files per member allowed). "
        "Members without --state are treated as their declared capacity, all free.",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--gpu", metavar="MODEL[:N]", help="GPU model and count, e.g. a100, h100:2, or v100+ (V100 or better)"
    )
    what.add_argument("--tier", metavar="T", help="any GPU of this tier, e.g. silver")
    p.add_argument(
        "--count", type=int, metavar="N", help="number of GPUs (with --tier or the default request)"
    )
    p.add_argument("--cpu", metavar="Q", help="CPU for the GPU kernel, e.g. 4 or 500m")
    p.add_argument("--memory", metavar="Q", help="memory for the GPU kernel, e.g. 16Gi")
    burst = p.add_mutually_exclusive_group()
    burst.add_argument(
        "--burstable",
        dest="burstable",
        action="store_true",
        default=None,
        help="allow bursting to a public member",
    )
    burst.add_argument("--no-burstable", dest="burstable", action="store_false", help="never burst")
    p.add_argument("--budget", choices=("flex", "fixed"), help="flex allows paying for a public GPU")
    p.add_argument(
        "--deadline", metavar="ISO8601", help="when results are needed, e.g. 2026-12-01T18:00 or +2h"
    )
    p.add_argument(
        "--data-class", metavar="C", help="data class of the notebook (private classes never burst)"
    )
    p.add_argument("--waited", metavar="DURATION", help="how long the request already waited, e.g. 12m")
    p.add_argument("--now", metavar="ISO8601", help="evaluate at this time instead of the current time")
    p.add_argument(
        "--workload", metavar="NAME", help="the request's own Kueue Workload, for its queue position"
    )
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        print(f"mlp-kernel place: {exc.describe()}", file=sys.stderr)
        return 2
    try:
        now = _now(args.now) if args.now else datetime.now(timezone.utc)
        request = build_request(policy, args, now)
        dumps = _dumps(args.state)
        state = state_from_dumps(policy, dumps, now=now, own_workload=args.workload)
    except (UsageError, StateError) as exc:
        print(f"mlp-kernel place: {exc}", file=sys.stderr)
        return 2
    decision = decide(policy, state, request, now)
    if args.json:
        print(json.dumps(decision.to_json(), indent=2))
    else:
        print(render(decision))
    return 0


def build_request(policy: Policy, args: argparse.Namespace, now: datetime) -> GpuRequest:
    """The policy's default request overridden by the flags given, validated against the policy."""
    req = policy.default_request
    if args.gpu:
        model, _, count = args.gpu.partition(":")
        better = model.endswith("+")  # V100+: that model or better, as %gpu v100+
        model = model[:-1] if better else model
        canonical = policy.canonical_model(model)
        if canonical is None:
            raise UsageError(
                f"--gpu {args.gpu}: unknown GPU model {model!r}; the policy offers: "
                f"{', '.join(policy.gpu_models())}"
            )
        req = replace(req, gpu_model=canonical, tier=None, gpu_count=_count(count, "--gpu") if count else 1)
        req = replace(req, upgrade=True if better else req.upgrade)
    elif args.tier:
        if args.tier not in policy.tiers:
            raise UsageError(f"--tier {args.tier}: unknown tier; tiers are: {', '.join(policy.tiers)}")
        req = replace(req, tier=args.tier, gpu_model=None)
    if args.count is not None:
        req = replace(req, gpu_count=_count(str(args.count), "--count"))
    if req.gpu_count > policy.max_gpus:
        raise UsageError(
            f"{req.gpu_count} GPUs requested; the policy allows at most {policy.max_gpus} per kernel"
        )
    for flag in ("cpu", "memory"):
        value = getattr(args, flag)
        if value is not None:
            try:
                parse_quantity(value)
            except ValueError:
                raise UsageError(f"--{flag} {value}: expected {QUANTITY_HELP}") from None
            req = replace(req, **{flag: value})
    if args.burstable is not None:
        req = replace(req, burstable=args.burstable)
    if args.budget:
        req = replace(req, budget=args.budget)
    if args.deadline:
        try:
            req = replace(req, deadline=parse_deadline(args.deadline, now))
        except ValueError as exc:
            raise UsageError(f"--deadline: {exc}") from None
    if args.data_class:
        if policy.data_classes and args.data_class not in policy.data_classes:
            raise UsageError(
                f"--data-class {args.data_class}: unknown data class; known: "
                f"{', '.join(sorted(policy.data_classes))}"
            )
        req = replace(req, data_class=args.data_class)
    if args.waited:
        req = replace(req, waited_s=duration_flag("--waited", args.waited, UsageError))
    return req


def render(d: Decision) -> str:
    """Decision, key facts, then every rule with its result and inputs."""
    lines = [f"Decision: {d.action.value}", f"  {d.summary}"]
    if d.member:
        queue = f"{d.namespace}/{d.local_queue}" if d.local_queue else "-"
        wait = format_duration(d.expected_wait_s) if d.expected_wait_s is not None else "-"
        lines += [
            f"  member: {d.member} ({'public' if d.public else 'private'})   flavor: {d.flavor}   "
            f"LocalQueue: {queue}",
            f"  GPU: {d.gpu_text()}   price: ${d.price_per_hour:.2f}/h   expected wait: {wait}",
        ]
    lines.append("Explanation:")
    for i, r in enumerate(d.explanation, 1):
        lines.append(f"  {i}. {r.rule}: {r.result}" + (f" ({r.detail})" if r.detail else ""))
        if r.inputs:
            lines.append(f"     inputs: {json.dumps(r.inputs, sort_keys=False)}")
    return "\n".join(lines)


def _count(text: str, flag: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise UsageError(f"{flag}: GPU count must be a whole number, got {text!r}") from None
    if n < 1:
        raise UsageError(f"{flag}: GPU count must be at least 1, got {n}")
    return n


def _now(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise UsageError(f"--now: {exc}") from None


def _dumps(specs: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in specs:
        member, sep, path = spec.partition("=")
        if not sep or not member or not path:
            raise UsageError(f"--state {spec}: expected MEMBER=FILE, e.g. --state private=private.yaml")
        out.setdefault(member, []).append(path)
    return out
