"""First cell on a claimed warm-pool kernel against a cold one, through the real gateway (issue 18 §3).

Why: a warm pool trades idle GPU-hours for start latency; this measures what a user gets for it. Each
repetition runs one notebook per kernelspec, the two alternately so load hits both alike: a GPU (auto)
kernel (local backend, the shipped policy with ``warm_pool`` 0 or 1 on its flavor, snapshots on) runs a cell
that leaves --state-mb MB of variables, then ``pass`` --rounds times (the warm round trip), then
``%gpu release`` (the variables are saved), then ``1+1``: that first cell after the release starts a new
remote kernel, cold or claimed from the pool (which the notebook's first launch refilled), and restores the
variables. Figures are medians over --repeat.

Where the first cell's time goes comes from the gateway's own log (``gateway/launch_timing.py``: placement,
the backend's start or claim, attach, bootstrap, the rest of the connect and the restore, in ms; the
gateways run with ``log_level: INFO`` and their stderr in a file per kernel); "relay" is what the client
saw beyond the launch (the cell itself, its round trip, the request reaching the gateway). The restore time
of the target is the gateway's wall time for the restore request in the same repetition (the kernel's own
figure is printed beside it).

Target (issue 18): first cell on a warm-pool kernel <= 1.5 x (warm round trip + restore time).
Run: ``.venv/bin/python benchmarks/bench_pool.py [--repeat 5] [--state-mb 100] [--json f]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gateway import Kernel  # noqa: E402  (a sibling script, not a package)

from mlp_kernel.backends.local_pool import REFILL_DELAY_S  # noqa: E402
from mlp_kernel.backends.local_queue import LocalQuota  # noqa: E402
from mlp_kernel.gateway.launch_timing import PREFIX  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COLD, POOL = "gpu-auto-cold", "gpu-auto-pool"
RESTORED = re.compile(r"Restored \d+ variables? \([^)]*\)")
TIMING = re.compile(re.escape(PREFIX) + r" (.*); total ([0-9.]+) \((.*)\)")
STEPS = ("placement", "backend", "attach", "bootstrap", "after_connect", "running", "restore", "in kernel")


def install(root: Path, name: str, pool: int) -> None:
    """The shipped kernelspec and policy, local backend, a long idle timeout, ``warm_pool: pool``."""
    target = root / "kernels" / name
    shutil.copytree(REPO / "kernelspecs" / "gpu-auto", target)
    spec = json.loads((target / "kernel.json").read_text())
    spec["metadata"]["kernel_provisioner"]["config"].update(
        {"idle_timeout": "60m", "backend": "local", "log_level": "INFO"}
    )
    (target / "kernel.json").write_text(json.dumps(spec, indent=2))
    policy = yaml.safe_load((target / "policy.yaml").read_text())
    for flavor in policy["flavors"].values():
        flavor.update(warm_pool=pool, warm_pool_idle="10m")
    (target / "policy.yaml").write_text(yaml.safe_dump(policy))


class LoggedKernel(Kernel):
    """A ``Kernel`` whose gateway writes its log (stderr) to ``log``."""

    def __init__(self, name: str, log: Path) -> None:
        super().__init__(name)
        self.log = log

    async def start(self) -> float:
        from jupyter_client.manager import start_new_async_kernel

        t0 = time.perf_counter()
        with self.log.open("wb") as err:
            self.km, self.kc = await start_new_async_kernel(
                kernel_name=self.name, startup_timeout=120, stdout=subprocess.DEVNULL, stderr=err
            )
        return time.perf_counter() - t0


async def launch_timing(log: Path, launches: int, timeout: float = 10.0) -> dict[str, float]:
    """The gateway's timing line of its ``launches``-th launch (written before the cell is relayed; waited for
    all the same, the log is another process's)."""
    deadline = time.monotonic() + timeout
    while True:
        found = TIMING.findall(log.read_text(errors="replace"))
        if len(found) >= launches:
            steps, total, how = found[launches - 1]
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"no timing line for launch {launches} in {log} after {timeout:g} s")
        await asyncio.sleep(0.05)
    got = {"total": float(total) / 1e3, "claimed": float(how == "warm pool")}
    for part in steps.split(", "):
        step, ms = part.rsplit(" ", 1)
        got[step] = float(ms) / 1e3
    return got


async def one(name: str, runtime: Path, state_mb: int, rounds: int) -> dict[str, float]:
    log = runtime.parent / f"gateway-{name}-{time.monotonic_ns()}.log"
    k = LoggedKernel(name, log)
    out: list[str] = []
    try:
        await k.start()
        await k.run(f"import numpy as np; state = np.ones({state_mb * 10**6 // 8})")
        trips = [await k.run("pass") for _ in range(rounds)]
        if name == POOL:  # the first launch refilled the pool in the background: wait until it is ready
            deadline = time.monotonic() + 60
            while not any(e.get("ready") for e in LocalQuota(runtime).pool_kernels("local")):
                if time.monotonic() > deadline:
                    raise TimeoutError("the warm pool did not refill in 60 s")
                await asyncio.sleep(0.2)
        await k.run("%gpu release")
        first = await k.run(
            "1+1", lambda m: out.append(str(m["content"].get("data", {}).get("text/plain", "")))
        )
        if not RESTORED.search("".join(out)):
            raise RuntimeError(f"{name}: no restore line in the first cell's output: {''.join(out)[-400:]!r}")
        steps = await launch_timing(log, 2)
        if steps["claimed"] != (name == POOL):
            raise RuntimeError(f"{name}: the second launch was {'' if steps['claimed'] else 'not '}claimed")
        steps["relay"] = first - steps["total"]
        return {"first_s": first, "rt_s": statistics.median(trips), **{f"{k}_s": v for k, v in steps.items()}}
    finally:
        await k.stop()


def end_pool_kernels(runtime: Path) -> None:
    """The pool's kernels are detached (they outlive the gateways by design, until ``warm_pool_idle``): end
    every kernel started with a pool connection file of this run's runtime directory."""
    import psutil

    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if any(str(arg).startswith(str(runtime / "mlp-pool-")) for arg in cmd):
            with contextlib.suppress(psutil.Error):
                proc.kill()


async def main_async(args: argparse.Namespace, runtime: Path) -> dict[str, list[dict[str, float]]]:
    got: dict[str, list[dict[str, float]]] = {COLD: [], POOL: []}
    try:
        for _ in range(args.repeat):
            for name in (COLD, POOL):
                got[name].append(await one(name, runtime, args.state_mb, args.rounds))
    finally:
        await asyncio.sleep(REFILL_DELAY_S + 3)  # a refill a gateway began before it stopped
        end_pool_kernels(runtime)
    return got


def report(got: dict[str, list[dict[str, float]]]) -> bool:
    def med(name: str, key: str) -> float:  # nan: a step this gateway's version does not time
        return statistics.median(r.get(key, math.nan) for r in got[name])

    print("first cell after a release, ms (median over repetitions; the gateway's steps, then the client's)")
    print(f"{'':22}" + "".join(f"{step:>14}" for step in (*STEPS, "relay", "first cell")))
    for name in (COLD, POOL):
        keys = (*STEPS, "relay", "first")
        print(f"{name:22}" + "".join(f"{med(name, k + '_s') * 1e3:14.1f}" for k in keys))
    print("per repetition, warm-pool kernel: first cell / (round trip + restore) =", end="")
    ratios = [r["first_s"] / (r["rt_s"] + r["restore_s"]) for r in got[POOL]]
    print(" " + " ".join(f"{x:.2f}" for x in ratios))
    rt, restore = med(POOL, "rt_s"), med(POOL, "restore_s")
    limit = 1.5 * (rt + restore)
    pool_first, cold_first = med(POOL, "first_s"), med(COLD, "first_s")
    ok = pool_first <= limit
    print(f"warm round trip p50 {rt * 1e3:.1f} ms; restore {restore * 1e3:.1f} ms (the gateway's request)")
    print(f"first cell after a release, cold kernel:      {cold_first * 1e3:.1f} ms")
    ratio = pool_first / cold_first
    print(f"first cell after a release, warm-pool kernel: {pool_first * 1e3:.1f} ms ({ratio:.2f}x cold)")
    print(f"target: <= 1.5 x (round trip + restore) = {limit * 1e3:.1f} ms: {'met' if ok else 'MISSED'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=50, help="'pass' round trips per kernel (50)")
    ap.add_argument("--state-mb", type=int, default=100, help="MB of variables carried over (100)")
    ap.add_argument("--json", type=Path, help="also write the raw samples here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as tmp:
        root = Path(tmp)
        install(root, COLD, 0)
        install(root, POOL, 1)
        os.environ["JUPYTER_PATH"] = str(root)
        os.environ["JUPYTER_RUNTIME_DIR"] = str(root / "runtime")
        os.environ["JUPYTER_DATA_DIR"] = str(root / "data")
        os.environ["IPYTHONDIR"] = str(root / "ipython")
        got = asyncio.run(main_async(args, root / "runtime"))
    if args.json:
        args.json.write_text(json.dumps(got, indent=1))
    return 0 if report(got) else 1


if __name__ == "__main__":
    sys.exit(main())
