"""GPU (auto) gateway overheads against plain ipykernel, measured in the same run on the same machine.

Why: the gateway sits between every Jupyter client and the remote kernel, and there is one per open notebook.
It must make a notebook ready sooner than ipykernel (it answers kernel_info itself), add little to the first
cell (which also starts the remote kernel), add next to nothing per request once relaying, not slow output
streams, and stay small. Targets (ratio = GPU (auto) / ipykernel, both with the local backend):

- notebook ready: start the kernel + kernel_info reply: <= 0.5x, to the first kernel_info reply when asked
  every 0.1 s (the kernel's own readiness); also reported (no target) as nbclient waits for it
  (``start_new_async_kernel``, which polls every second and then waits for 0.2 s of iopub silence)
- first cell, cold: start + kernel_info + first ``1+1`` cell until idle: <= 1.3x
- steady-state execute round trip p50 (``pass``, 200 times, warm kernel): <= 1.15x. GPU (auto)'s remote
  kernels keep IPython's input history in memory (``mlp_kernel.backends.base.KERNEL_ARGS``), which saves a
  ``pass`` cell a SQLite write; so the round trip is also measured against an ipykernel with the same
  option: that ratio is the relay's own cost, <= 1.10x (issue 17)
- output streaming (a cell printing --stream-mb MB of 1 KB lines, flushed every --chunk-kb, MB/s at the client
  until idle, median of --streams transfers per kernel and pair, in ABBA order): >= 0.95x (issue 17)
- gateway process RSS after the first cell (the provisioner's process): <= 60 MB

Each figure is the median of --repeat runs; the two kernels are measured alternately so that load from other
processes on a shared machine hits both alike, and a ratio is the median of the paired per-run ratios. Round
trips and streaming are measured on --repeat fresh pairs of warm kernels (round trips: the ratio of the two
p50s of a pair, sampled in blocks of 20 in a random order each round). Exit status 1 when a target fails.

The instrument is checked against itself (``--same``: an ipykernel in GPU (auto)'s place, every ratio should
be 1.00x). Two things made that check fail before (docs/benchmarks.md, "The benchmark checked against
itself"): an ipykernel's output rate is bimodal on two cores (its threads on one core or on two), so each
ipykernel's threads are pinned to one CPU (``--pin``, default 0; ``--no-pin`` to leave them), and whichever
kernel went first measured ~1.5% slower, so the order of the kernels is drawn at random (``--seed``, printed).
Run: ``.venv/bin/python benchmarks/bench_gateway.py [--repeat 5] [--rounds 200] [--stream-mb 50] [--json f]``
(``--help`` for the rest).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from mlp_kernel.backends.base import KERNEL_ARGS

REPO = Path(__file__).resolve().parents[1]
GPU, IPY = "gpu-auto-bench", "python3"
#: ipykernel with the option GPU (auto) gives its remote kernels (IPython's input history in memory, not in
#: SQLite): the round trip against it is the relay's own cost, reported beside the issue's target row.
IPY_MEM = "python3-history-in-memory"
MB = 10**6


def install_gpu_kernelspec(jupyter_path: Path, same: bool = False) -> None:
    """The shipped kernelspec, local backend, long idle timeout (no release during the run).

    ``same`` (``--same``): install an ipykernel with history in memory under GPU (auto)'s name instead, so
    that every row compares ipykernel with ipykernel: the spread the benchmark itself has on this machine.
    """
    target = jupyter_path / "kernels" / GPU
    shutil.copytree(REPO / "kernelspecs" / "gpu-auto", target)
    spec = json.loads((target / "kernel.json").read_text())
    spec["metadata"]["kernel_provisioner"]["config"].update(
        {"idle_timeout": "60m", "backend": "local", "log_level": "WARNING"}
    )
    (target / "kernel.json").write_text(json.dumps(spec, indent=2))
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", *KERNEL_ARGS]
    for name in (IPY_MEM, GPU) if same else (IPY_MEM,):
        plain = jupyter_path / "kernels" / name
        plain.mkdir(parents=True, exist_ok=True)
        spec = {"argv": argv, "display_name": "Python 3 (history in memory)", "language": "python"}
        (plain / "kernel.json").write_text(json.dumps(spec, indent=2))


@dataclass
class Samples:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)

    def median(self, key: str) -> float:
        return statistics.median(self.values[key])

    def ratio(self, key: str, base: str = IPY) -> float:
        """GPU (auto) / ipykernel: the median of per-repetition ratios where runs were paired (measured one
        right after the other, so both saw the same load), else the ratio of the medians."""
        gpu, ipy = self.values[f"{key}/{GPU}"], self.values[f"{key}/{base}"]
        if len(gpu) == len(ipy):
            return statistics.median(g / i for g, i in zip(gpu, ipy, strict=True))
        return statistics.median(gpu) / statistics.median(ipy)


class Kernel:
    """One kernel started the way notebook clients start it, with its client; output goes to /dev/null."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.km: Any = None
        self.kc: Any = None

    async def start(self) -> float:
        """Start as nbclient/papermill do (``start_new_async_kernel``); return the seconds it took."""
        from jupyter_client.manager import start_new_async_kernel

        t0 = time.perf_counter()
        self.km, self.kc = await start_new_async_kernel(
            kernel_name=self.name, startup_timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return time.perf_counter() - t0

    async def start_to_kernel_info(self) -> float:
        """Start the kernel; return the seconds to its first kernel_info reply, asking every 0.1 s.

        ``start_new_async_kernel`` resends kernel_info only every second and then drains iopub for 0.2 s, so
        its figure is partly the client's polling; this one is the kernel's own readiness.
        """
        from jupyter_client.manager import AsyncKernelManager

        t0 = time.perf_counter()
        self.km = AsyncKernelManager(kernel_name=self.name)
        await self.km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.kc = self.km.client()
        self.kc.start_channels()
        while time.perf_counter() - t0 < 120:
            self.kc.kernel_info()
            try:
                reply = await self.kc.get_shell_msg(timeout=0.1)
            except queue.Empty:
                continue
            if reply["msg_type"] == "kernel_info_reply":
                return time.perf_counter() - t0
        raise TimeoutError(f"{self.name}: no kernel_info reply in 120 s")

    async def run(self, code: str, on_output: Callable[[dict[str, Any]], None] | None = None) -> float:
        t0 = time.perf_counter()
        hook = on_output or (lambda m: None)
        reply = await self.kc.execute_interactive(code, timeout=600, output_hook=hook)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"{self.name}: {code[:40]!r} failed: {reply['content']}")
        return time.perf_counter() - t0

    @property
    def pid(self) -> int:
        return int(self.km.provisioner.process.pid)

    async def stop(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None and await self.km.is_alive():
            await self.km.shutdown_kernel(now=False)


async def cold_starts(samples: Samples, repeat: int) -> None:
    """Ready and first-cell times of fresh kernels; the kernel process's memory right after its first cell."""
    for _ in range(repeat):
        for name in (GPU, IPY):
            k = Kernel(name)
            try:
                samples.add(f"ki/{name}", await k.start_to_kernel_info())
            finally:
                await k.stop()
            k = Kernel(name)
            try:
                ready = await k.start()
                first = ready + await k.run("1+1")
                samples.add(f"ready/{name}", ready)
                samples.add(f"first/{name}", first)
                mem = psutil.Process(k.pid).memory_full_info()
                samples.add(f"rss/{name}", mem.rss / 2**20)
                samples.add(f"uss/{name}", mem.uss / 2**20)
            finally:
                await k.stop()


async def warm_kernels(samples: Samples, args: argparse.Namespace) -> None:
    """Round trips of ``pass`` and output throughput on warm kernels, one fresh pair per repetition.

    Why fresh pairs: on a small machine one pair's figures depend on where the scheduler happens to put its
    processes and threads (one pair measured 1.06x and the next 1.17x with the same code), so a ratio from a
    single pair says more about that luck than about the gateway; the median of per-pair ratios does not.
    """
    rng = random.Random(args.seed)
    for _ in range(args.repeat):
        await _warm_pair(samples, args, rng)


async def _warm_pair(samples: Samples, args: argparse.Namespace, rng: random.Random) -> None:
    # Every order at random (seeded): whichever kernel is started first and leads the blocks measured ~1.5%
    # slower (ipykernel against itself: 1.013-1.017 with GPU (auto)'s slot always first, 0.99-1.00 with it
    # last), so no kernel may hold a place (docs/benchmarks.md, "The benchmark checked against itself").
    names = [GPU, IPY, IPY_MEM]
    rng.shuffle(names)
    kernels = {name: Kernel(name) for name in names}
    try:
        for k in kernels.values():
            await k.start()
            await k.run("1+1")
            if args.pin is not None:
                pin_ipykernel(k.pid, args.pin)
        for k in kernels.values():  # warm-up: first executions are slower on both
            for _ in range(20):
                await k.run("pass")
        trips: dict[str, list[float]] = {name: [] for name in kernels}
        for _ in range(args.rounds // 20):  # alternating blocks, so both kernels see the same load
            rng.shuffle(names)
            for name in names:
                trips[name] += [await kernels[name].run("pass") for _ in range(20)]
        for name, values in trips.items():
            samples.add(f"rtt/{name}", statistics.median(values) * 1000)
        # 1 KB lines written chunk_kb at a time and flushed, so the output arrives as many stream messages
        # (unflushed, ipykernel would send it all as one message and the figure would measure one copy).
        chunks = args.stream_mb * 1000 // args.chunk_kb
        total = chunks * args.chunk_kb * 1000
        code = (
            f"import sys\n_c = ('x' * 999 + '\\n') * {args.chunk_kb}\n"
            f"for _ in range({chunks}):\n    sys.stdout.write(_c)\n    sys.stdout.flush()\n"
        )
        rates: dict[str, list[float]] = {GPU: [], IPY: []}
        # Alternating, in ABBA order: of two transfers back to back the second is ~20% faster (measured with
        # the kernels pinned: 1.09x / 0.90x by turns), so each kernel goes first as often as the other.
        # (One cell: where IPython keeps its history makes no difference.)
        first = rng.randrange(2)
        for i in range(args.streams):
            for name in (GPU, IPY) if (i + first) % 2 == 0 else (IPY, GPU):
                k = kernels[name]
                got = [0, 0]

                def count(msg: dict[str, Any], got: list[int] = got) -> None:
                    if msg["msg_type"] == "stream":
                        got[0] += len(msg["content"]["text"].encode())
                        got[1] += 1

                elapsed = await k.run(code, count)
                if got[0] != total:
                    raise RuntimeError(f"{name}: received {got[0]} of {total} bytes")
                rates[name].append(got[0] / MB / elapsed)
                samples.add(f"messages/{name}", got[1])
        for name, values in rates.items():
            samples.add(f"stream/{name}", statistics.median(values))
    finally:
        for k in kernels.values():
            await k.stop()


def pin_ipykernel(pid: int, cpu: int) -> None:
    """Every thread of the ipykernel that is ``pid`` or a child of it (the gateway's local kernel) on ``cpu``.

    Why (``--pin``, docs/benchmarks.md "The benchmark checked against itself"): on two cores an ipykernel's
    output rate is bimodal, ~200 or ~130 MB/s, by whether the scheduler puts its main and IOPub threads on
    one core or two (two: the GIL goes back and forth between cores and the kernel spends ~1.4x the CPU).
    Which one a transfer gets is chance, and it swamped the relay's cost: ipykernel against itself measured
    0.88-1.06x. With each kernel's threads on one core, the same comparison gives 0.98-1.03x a pair.
    Threads the kernel starts later inherit the affinity. The client and the gateway are not pinned.
    """
    proc = psutil.Process(pid)
    for p in [proc, *proc.children(recursive=True)]:
        if any("ipykernel" in a for a in p.cmdline()):
            for t in p.threads():
                os.sched_setaffinity(t.id, {cpu})


@dataclass
class Target:
    label: str
    key: str
    unit: str
    limit: float
    ratio: bool = True  # compare GPU/ipykernel against limit; else GPU's absolute value
    at_least: bool = False
    info: bool = False  # reported, not a target
    base: str = IPY  # the kernel GPU (auto) is compared with

    def evaluate(self, s: Samples) -> tuple[str, str, str, str, bool]:
        gpu = s.median(f"{self.key}/{GPU}")
        ipy = s.median(f"{self.key}/{self.base}")
        ratio = s.ratio(self.key, self.base)
        value = ratio if self.ratio else gpu
        ok = value >= self.limit if self.at_least else value <= self.limit
        sign = ">=" if self.at_least else "<="
        target = "" if self.info else f"{sign} {self.limit:g}{'x' if self.ratio else ' ' + self.unit}"
        return f"{gpu:.3g} {self.unit}", f"{ipy:.3g} {self.unit}", f"{ratio:.2f}x", target, ok


TARGETS = [
    # nbclient's view: jupyter_client then waits for 0.2 s of iopub silence, the same fixed wait for both
    # kernels, so this ratio cannot reach 0.5x whatever the gateway does; the "ready" is the next row.
    Target("ready: start_new_async_kernel", "ready", "s", 0.5, info=True),
    Target("ready: start -> 1st kernel_info reply", "ki", "s", 0.5),
    Target("first cell, cold (start + 1+1)", "first", "s", 1.3),
    Target("execute round trip p50 (pass)", "rtt", "ms", 1.15),
    # The same round trips against ipykernel with GPU (auto)'s kernel option (history in memory): what the
    # relay itself costs. The row above is what a user sees; this one says how much of it is the relay.
    Target("  relay alone: vs ipykernel, history in memory", "rtt", "ms", 1.10, base=IPY_MEM),
    Target("output streaming", "stream", "MB/s", 0.95, at_least=True),
    Target("kernel process RSS after 1st cell", "rss", "MiB", 60, ratio=False),
]


def report(s: Samples, args: argparse.Namespace) -> bool:
    rows = [("metric", "GPU (auto)", "ipykernel", "ratio", "target", "result")]
    all_ok = True
    for t in TARGETS:
        if f"{t.key}/{GPU}" not in s.values:
            continue  # not measured (--warm-only)
        gpu, ipy, ratio, target, ok = t.evaluate(s)
        all_ok &= ok or t.info
        rows.append((t.label, gpu, ipy, ratio, target, "info" if t.info else "PASS" if ok else "FAIL"))
    if not args.warm_only:
        uss = [f"{s.median(f'uss/{n}'):.3g} MiB" for n in (GPU, IPY)]
        rows.append(("kernel process USS after 1st cell", *uss, "", "", "info"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    if args.same:
        print("\nA/A run (--same): the 'GPU (auto)' column is an ipykernel with history in memory")
    print(
        f"\nGPU (auto) gateway vs ipykernel: "
        f"{'no cold starts' if args.warm_only else f'median of {args.repeat} cold starts'}; "
        f"on {args.repeat} fresh "
        f"warm pairs, p50 of {args.rounds} round trips and median of {args.streams} x "
        f"{args.stream_mb} MB streamed in {s.median(f'messages/{IPY}'):.0f} messages (ratios: median of the "
        f"per-pair ratios); kernels' threads on "
        f"{'any CPU' if args.pin is None else f'CPU {args.pin}'}, orders from --seed {args.seed}; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return all_ok


async def main_async(args: argparse.Namespace) -> Samples:
    samples = Samples()
    if not args.warm_only:
        await cold_starts(samples, args.repeat)
    await warm_kernels(samples, args)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="cold starts and stream runs per kernel (5)")
    parser.add_argument("--rounds", type=int, default=200, help="'pass' round trips per kernel (200)")
    parser.add_argument("--stream-mb", type=int, default=50, help="MB printed by the streaming cell (50)")
    parser.add_argument("--chunk-kb", type=int, default=64, help="KB per flushed write when streaming (64)")
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    parser.add_argument(
        "--same",
        action="store_true",
        help="A/A run: an ipykernel (history in memory) in GPU (auto)'s place: the benchmark's own spread",
    )
    parser.add_argument(
        "--streams",
        type=int,
        default=10,
        help="streamed transfers per kernel and pair, ABBA order (10; was 3)",
    )
    parser.add_argument(
        "--pin",
        type=int,
        default=0,
        metavar="CPU",
        help="each ipykernel's threads on this CPU (0; see pin_ipykernel)",
    )
    parser.add_argument(
        "--no-pin", dest="pin", action="store_const", const=None, help="kernels' threads anywhere"
    )
    parser.add_argument(
        "--seed", type=int, help="seed of the kernels' random order (printed; random by default)"
    )
    parser.add_argument(
        "--warm-only", action="store_true", help="round trips and streaming only (no cold starts)"
    )
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(10**6)
    if args.pin is not None and args.pin not in os.sched_getaffinity(0):
        parser.error(f"--pin {args.pin}: this process may run on CPUs {sorted(os.sched_getaffinity(0))} only")
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        root = Path(tmp)
        install_gpu_kernelspec(root, same=args.same)
        os.environ["JUPYTER_PATH"] = str(root)
        os.environ["JUPYTER_RUNTIME_DIR"] = str(root / "runtime")
        os.environ["IPYTHONDIR"] = str(root / "ipython")
        samples = asyncio.run(main_async(args))
    if args.json:
        args.json.write_text(json.dumps(samples.values, indent=1))
    return 0 if report(samples, args) else 1


if __name__ == "__main__":
    sys.exit(main())
