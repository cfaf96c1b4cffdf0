"""``mlp-kernel gc``: delete kernel pods whose gateway is gone (their Lease expired).

Every live GPU kernel has a Lease its gateway renews; when a gateway crashes or its notebook server is killed,
the Lease stops being renewed and the pod (holding a GPU and Kueue quota) becomes an orphan. Run this from a
CronJob (or by hand): it lists kernel pods (label ``app.kubernetes.io/managed-by=mlp-kernel``) on every
Kubernetes member of the policy and deletes those unrenewed for longer than their lease (default 5 min).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ..placement import PolicyError, load_policy
from ..placement.units import parse_duration


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "gc", help="delete GPU kernel pods whose gateway is gone", description=__doc__.splitlines()[0]
    )
    p.add_argument("--policy", required=True, metavar="POLICY.yaml", help="policy naming the members")
    p.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig with the members' contexts")
    p.add_argument("--karmada-context", metavar="CTX", help="context of the Karmada API (proxy members)")
    p.add_argument(
        "--expire-after",
        metavar="DURATION",
        help="treat leases unrenewed this long as expired (default: each lease's duration, "
        "5m when a pod has no lease)",
    )
    p.add_argument("--dry-run", action="store_true", help="list orphans without deleting them")
    p.set_defaults(func=run)


async def _collect(args: argparse.Namespace, expire_after_s: float | None) -> int:
    from ..backends.kubernetes.backend import KubernetesBackend

    policy = load_policy(args.policy)
    backend = KubernetesBackend(
        policy, Path(args.policy).parent, kubeconfig=args.kubeconfig, karmada_context=args.karmada_context
    )
    try:
        orphans = await backend.list_orphans(expire_after_s)
        for orphan in orphans:
            verb = "would delete" if args.dry_run else "deleting"
            print(
                f"{verb} {orphan.member}/{orphan.namespace}/{orphan.pod} (kernel {orphan.kernel_id}): "
                f"{orphan.reason}"
            )
            if not args.dry_run:
                await backend.release_record(orphan.record())
        print(f"{len(orphans)} orphaned kernel pod(s)" + (" found" if args.dry_run else " deleted"))
        return 0
    finally:
        backend.close()


def run(args: argparse.Namespace) -> int:
    try:
        expire = parse_duration(args.expire_after) if args.expire_after else None
    except ValueError as exc:
        print(f"mlp-kernel gc: --expire-after: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_collect(args, expire))
    except PolicyError as exc:
        print(f"mlp-kernel gc: {exc.describe()}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mlp-kernel gc: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except Exception as exc:  # unreachable member, refused credentials: say which and why
        print(f"mlp-kernel gc: failed: {exc}", file=sys.stderr)
        return 1
