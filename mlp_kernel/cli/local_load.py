"""``mlp-kernel local-load``: other people's work on this machine's GPU pools, for a demo or a test.

Why: with the local backend every flavor's ``capacity_gpus`` is a quota shared by your notebooks (the GPU
ledger, ``backends/local_queue.py``), but you are the only user, so a pool is full only when your own
notebooks fill it. This command holds GPUs of one flavor for a while as another workload would: your next
notebook queues behind it (position, ETA), bursts under the burst rule, and with ``--preempt`` (a
higher-priority workload, as Kueue preempts) running notebook kernels on the flavor are stopped to make room,
with the message a preempted kernel gets on the platform. It runs in the foreground, says what it does, and
gives the GPUs back when the time is up or on Ctrl-C.
Run: ``mlp-kernel local-load --kernelspec gpu-demo --flavor bronze --gpus 2 --minutes 10 [--preempt]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

POLL_S = 0.5


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "local-load",
        help="hold GPUs of a local flavor as another workload would (queue, burst, preemption demos)",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--kernelspec", help="a kernelspec name whose policy has the flavor (e.g. gpu-demo)")
    where.add_argument("--policy", type=Path, help="a policy file that has the flavor")
    p.add_argument("--flavor", required=True, help="the flavor (pool) to hold GPUs of")
    p.add_argument("--gpus", type=int, default=1, help="how many GPUs (default 1)")
    p.add_argument("--minutes", type=float, default=10.0, help="how long to hold them (default 10)")
    p.add_argument("--preempt", action="store_true", help="higher priority: stop notebook kernels for room")
    p.set_defaults(func=run)


def _policy_path(args: argparse.Namespace) -> Path:
    if args.policy:
        return Path(args.policy)
    import json

    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(args.kernelspec)
    except NoSuchKernel:
        raise SystemExit(f"mlp-kernel local-load: no kernelspec named {args.kernelspec!r}") from None
    config = json.loads((Path(spec.resource_dir) / "kernel.json").read_text())["metadata"][
        "kernel_provisioner"
    ]
    return Path(spec.resource_dir) / str(config.get("config", {}).get("policy") or "policy.yaml")


def run(args: argparse.Namespace) -> int:
    from jupyter_core.paths import jupyter_runtime_dir

    from ..backends.local_queue import LocalQuota
    from ..placement import PolicyError, load_policy

    try:
        policy = load_policy(_policy_path(args))
    except PolicyError as exc:
        print(f"mlp-kernel local-load: {exc.describe()}", file=sys.stderr)
        return 2
    flavor = policy.flavors.get(args.flavor)
    if flavor is None:
        print(
            f"mlp-kernel local-load: no flavor {args.flavor!r}; the policy has {', '.join(policy.flavors)}",
            file=sys.stderr,
        )
        return 2
    if policy.members[flavor.member].backend != "local":
        print(f"mlp-kernel local-load: flavor {args.flavor!r} is not on a local member", file=sys.stderr)
        return 2
    if not 1 <= args.gpus <= (flavor.capacity_gpus or policy.max_gpus) or not 0 < args.minutes <= 24 * 60:
        print("mlp-kernel local-load: --gpus must fit the flavor, --minutes from 0 to 1440", file=sys.stderr)
        return 2
    quota = LocalQuota(Path(jupyter_runtime_dir()))
    name = f"local-load-{uuid.uuid4().hex[:8]}"
    where = f"{flavor.member}/{flavor.name}"
    last = None
    try:
        while not (
            ask := quota.ask(name, flavor.name, args.gpus, flavor.capacity_gpus, args.preempt)
        ).admitted:
            if ask.position != last:
                last = ask.position
                what = (
                    "stopping notebook kernels to make room" if args.preempt else f"position {ask.position}"
                )
                print(f"Waiting for {args.gpus} GPU(s) of {where}: {what}", flush=True)
            time.sleep(POLL_S)
        until = time.time() + args.minutes * 60
        print(
            f"Holding {args.gpus} GPU(s) of {where} until {time.strftime('%H:%M:%S', time.localtime(until))} "
            f"(pid {os.getpid()}; Ctrl-C gives them back)",
            flush=True,
        )
        while time.time() < until:
            time.sleep(min(POLL_S, max(0.0, until - time.time())))
    except KeyboardInterrupt:
        pass
    finally:
        quota.release(name)
    print(f"Gave back {args.gpus} GPU(s) of {where}", flush=True)
    return 0
