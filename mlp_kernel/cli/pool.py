"""``mlp-kernel pool``: keep each flavor's warm pool of kernel pods (``warm_pool`` in the policy) filled.

One loop per cluster, run by the admin (a Deployment with RBAC to list, create and delete pods and Secrets in
the members' namespaces), not by the gateways: a gateway runs per notebook, so gateways refilling would race
each other over the pool's size, while the claim (a resourceVersion-guarded PATCH) is what must be exact
(docs/design.md, "A shared warm pool per flavor"). Each pass, per flavor with ``warm_pool`` > 0 on a
Kubernetes member: delete free pool pods older than ``warm_pool_idle``; if a kernel of the flavor started
within ``warm_pool_idle`` (demand), create pool pods up to ``warm_pool``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..placement import PolicyError, load_policy
from . import duration_flag


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "pool", help="keep the flavors' warm pools of kernel pods filled", description=__doc__.splitlines()[0]
    )
    p.add_argument("--policy", required=True, metavar="POLICY.yaml", help="policy naming members and flavors")
    p.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig with the members' contexts")
    p.add_argument("--kernelspec", metavar="DIR", help="kernelspec whose pod template pool pods use")
    p.add_argument("--every", default="30s", metavar="DURATION", help="seconds between passes (30s)")
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.set_defaults(func=run)


async def one_pass(args: argparse.Namespace) -> list[str]:
    from ..backends.kubernetes.backend import KubernetesBackend
    from ..backends.kubernetes.pool import demand, refill

    policy = load_policy(args.policy)
    spec_dir = Path(args.kernelspec or Path(args.policy).parent)
    backend = KubernetesBackend(policy, spec_dir, kubeconfig=args.kubeconfig)
    lines = []
    try:
        now = datetime.now(timezone.utc)
        for name, f in policy.flavors.items():
            member = policy.members[f.member]
            if f.warm_pool <= 0 or member.backend != "kubernetes":
                continue
            api = backend.clients.get(member)
            ns = member.namespace or "default"
            wanted = await demand(api, ns, name, f.warm_pool_idle_s, now)
            got = await refill(api, spec_dir, policy, name, now=now, demand=wanted)
            lines.append(
                f"{name}: {got['created']} created, {got['deleted']} idle deleted"
                + ("" if wanted else f" (no kernel started in the last {f.warm_pool_idle_s:g} s)")
            )
    finally:
        backend.close()
    return lines


def run(args: argparse.Namespace) -> int:
    try:
        every = duration_flag("--every", args.every)
        load_policy(args.policy)
    except (ValueError, PolicyError) as exc:
        message = exc.describe() if isinstance(exc, PolicyError) else str(exc)
        print(f"mlp-kernel pool: {message}", file=sys.stderr)
        return 2
    while True:
        for line in asyncio.run(one_pass(args)):
            print(line, flush=True)
        if args.once:
            return 0
        asyncio.run(asyncio.sleep(max(1.0, every)))
