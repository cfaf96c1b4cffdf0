"""CPU the relay spends per round trip: the GPU (auto) gateway against a bare relay (the floor), per thread.

Why CPU and not wall time: on the two-core development machine the round trip of ``bench_gateway.py`` is
bound by CPU (the kernel, its client and the relay saturate both cores), so each microsecond the relay
process spends is added to the wall time, and wall time itself swings with whatever else runs on the
machine. CPU time per round trip is what the relay can change, and it is measured the same under load
(docs/benchmarks.md, "The relay's CPU"). The floor is ``bare_relay.py``: a Python ``zmq_poll`` loop that
relays frames untouched between a client and an ipykernel, with none of the gateway's work.

Three kernels, each with a client as notebooks use it: GPU (auto) (local backend; the gateway relays to an
ipykernel with history in memory), the bare relay (to the same kind of ipykernel) and that ipykernel alone.
``pass`` round trips run in alternating blocks of 20; around each block the CPU of the kernel's processes
is read from ``/proc`` (``schedstat``: nanoseconds on a CPU per thread; ``stat``: the user/system split,
in clock ticks), so the figure is that of the block's own round trips. Then ``--streams`` cells each
writing ``--stream-mb`` MB in 64 KB flushed chunks, the same way.

``--floors`` adds two relays below the bare one, to tell the hop's cost from the relay's own: libzmq's C
proxy (``proxy_relay.py``: no Python per message, libzmq's thread handoffs kept) and a byte splice
(``splice_relay.py``: no ZeroMQ in the relay, one thread, one wake-up a message). The wall time of every
kernel is also given against the ipykernel alone (median of the paired blocks' ratios).

Run: ``.venv/bin/python benchmarks/bench_relay_cpu.py [--rounds 1000] [--streams 2] [--floors] [--json f]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import psutil
from bench_gateway import GPU, IPY_MEM, Kernel, install_gpu_kernelspec

BARE = "bare-relay"
#: The floors below the bare relay (``--floors``): the same hop with libzmq's C proxy relaying, and with no
#: ZeroMQ in the relay at all (bytes spliced between the client's and the kernel's connections).
FLOORS = {"proxy-relay": "proxy_relay.py", "splice-relay": "splice_relay.py"}
BLOCK = 20  # round trips per kernel in turn
TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")
N = 4  # figures per thread
ALL = "all threads"


def install_bare_relay(jupyter_path: Path, name: str = BARE, script: str = "bare_relay.py") -> None:
    spec_dir = jupyter_path / "kernels" / name
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, str(Path(__file__).with_name(script)), "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": name, "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


def install_variant(jupyter_path: Path, name: str, spec_value: str) -> None:
    """The GPU (auto) kernelspec again, its gateway importing ``mlp_kernel`` from a path (a git worktree of
    another commit), or run with an environment variable (``VAR=VALUE``, e.g. ``MLP_KERNEL_HOTPATH=0``: the
    relay in Python): two versions of the relay measured side by side, under the same load."""
    src, target = jupyter_path / "kernels" / GPU, jupyter_path / "kernels" / name
    shutil.copytree(src, target)
    spec = json.loads((target / "kernel.json").read_text())
    var, eq, value = spec_value.partition("=")
    if eq and var.isidentifier():
        spec["env"] = {var: value}
    else:
        spec["env"] = {"PYTHONPATH": str(Path(spec_value).resolve())}
    (target / "kernel.json").write_text(json.dumps(spec, indent=2))


def thread_label(pid: int, tid: int) -> str:
    if tid == pid:
        return "main thread"
    try:
        return Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
    except OSError:
        return "?"


def cpu(pid: int) -> dict[str, list[float]]:
    """Per thread label: [on-CPU us, user us, system us, wake-ups] (threads with the same label summed).
    Wake-ups: voluntary context switches, i.e. how often the thread slept and was woken again."""
    out: dict[str, list[float]] = defaultdict(lambda: [0.0] * N)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            ns = int((task / "schedstat").read_text().split()[0])
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text()
            woken = int(status.split("voluntary_ctxt_switches:")[1].split()[0])
        except (OSError, IndexError, ValueError):  # a thread that just ended
            continue
        row = out[thread_label(pid, int(task.name))]
        row[0] += ns / 1000
        row[1] += int(stat[11]) * TICK_US
        row[2] += int(stat[12]) * TICK_US
        row[3] += woken
    return out


def kernel_pids(k: Kernel) -> dict[str, int]:
    """The process the client talks to and, for a relay, the ipykernel behind it."""
    if k.name == IPY_MEM:
        return {"ipykernel": k.pid}
    pids = {"relay": k.pid}
    children = psutil.Process(k.pid).children()
    if children:
        pids["ipykernel"] = children[0].pid
    return pids


class Meter:
    """CPU of one kernel's processes over stretches between ``start()`` and ``stop()`` (each of ``per`` round
    trips or cells): the median stretch, per thread and for all threads (``ALL``). Why the median: a burst
    of load from elsewhere makes every thread of a block slower (cold caches), and a median ignores it."""

    def __init__(self, k: Kernel, per: int) -> None:
        self.pids = kernel_pids(k)
        self.per = per
        self.stretches: list[dict[str, dict[str, list[float]]]] = []
        self._before: dict[str, dict[str, list[float]]] = {}

    def start(self) -> None:
        self._before = {name: cpu(pid) for name, pid in self.pids.items()}

    def stop(self) -> None:
        deltas = {}
        for name, pid in self.pids.items():
            after, before = cpu(pid), self._before[name]
            rows = {
                label: [(v - b) / self.per for v, b in zip(values, before.get(label, [0.0] * N), strict=True)]
                for label, values in after.items()
            }
            rows[ALL] = [sum(r[i] for r in rows.values()) for i in range(N)]
            deltas[name] = rows
        self.stretches.append(deltas)

    def median(self) -> dict[str, dict[str, list[float]]]:
        """On-CPU time and wake-ups: the median stretch; user and system time: the mean (they are counted in
        clock ticks of 10 ms, too coarse for one stretch)."""
        out = {}
        for name in self.pids:
            labels = {label for s in self.stretches for label in s[name]}
            out[name] = {}
            for label in labels:
                rows = [s[name].get(label, [0.0] * N) for s in self.stretches]
                mid = [statistics.median(r[i] for r in rows) for i in range(N)]
                mid[1], mid[2] = (statistics.mean(r[i] for r in rows) for i in (1, 2))
                out[name][label] = mid
        return out


async def measure(
    names: list[str], rounds: int, streams: int, stream_mb: int
) -> dict[str, dict[str, object]]:
    kernels = {name: Kernel(name) for name in names}
    result: dict[str, dict[str, object]] = {}
    try:
        for k in kernels.values():
            await k.start()
            await k.run("1+1")
            for _ in range(50):
                await k.run("pass")
        meters = {name: Meter(k, BLOCK) for name, k in kernels.items()}
        walls: dict[str, list[float]] = {name: [] for name in kernels}
        for _ in range(rounds // BLOCK):
            for name, k in kernels.items():
                meters[name].start()
                for _ in range(BLOCK):
                    walls[name].append(await k.run("pass"))
                meters[name].stop()
        for name in kernels:
            result[name] = {}
            if walls[name]:
                result[name]["rtt_p50_ms"] = statistics.median(walls[name]) * 1000
                blocks = [walls[name][i : i + BLOCK] for i in range(0, len(walls[name]), BLOCK)]
                result[name]["block_p50_ms"] = [statistics.median(b) * 1000 for b in blocks]
                result[name]["cpu"] = meters[name].median()
        if streams:
            chunks = stream_mb * 1000 // 64
            code = (
                "import sys\n_c = ('x' * 999 + '\\n') * 64\n"
                f"for _ in range({chunks}):\n    sys.stdout.write(_c)\n    sys.stdout.flush()\n"
            )
            smeters = {name: Meter(k, 1) for name, k in kernels.items()}
            rates: dict[str, list[float]] = {name: [] for name in kernels}
            messages: dict[str, int] = {}
            for _ in range(streams):
                for name, k in kernels.items():
                    got = [0, 0]

                    def count(msg: dict[str, object], got: list[int] = got) -> None:
                        if msg["msg_type"] == "stream":
                            got[0] += len(msg["content"]["text"])  # type: ignore[index]
                            got[1] += 1

                    smeters[name].start()
                    elapsed = await k.run(code, count)
                    smeters[name].stop()
                    if got[0] != chunks * 64_000:
                        raise RuntimeError(f"{name}: received {got[0]} of {chunks * 64_000} bytes")
                    rates[name].append(got[0] / 1e6 / elapsed)
                    messages[name] = got[1]
            for name in kernels:
                result[name]["stream_cpu"] = smeters[name].median()
                result[name]["stream_mb_s"] = statistics.median(rates[name])
                result[name]["stream_rates"] = rates[name]
                result[name]["stream_messages"] = messages[name]
    finally:
        for k in kernels.values():
            await k.stop()
    return result


def show(title: str, per: dict[str, dict[str, list[float]]], unit: float, suffix: str) -> None:
    for proc, rows in per.items():
        total = rows[ALL]
        print(f"  {proc:<10} {total[0] / unit:9.1f} {suffix} on CPU ({figures(total, unit)})")
        for label, r in sorted(rows.items(), key=lambda kv: -kv[1][0]):
            if r[0] / unit >= 0.5 and label != ALL:
                print(f"    {label:<16} {r[0] / unit:9.1f}  ({figures(r, unit)})")


def figures(row: list[float], unit: float) -> str:
    return f"user {row[1] / unit:.0f}, system {row[2] / unit:.0f}, wake-ups {row[3]:.2f}"


def paired(result: dict[str, dict[str, object]], name: str, key: str) -> float:
    """``name`` against the ipykernel alone: the median of the ratios of blocks (or streams) measured one
    right after the other, so that a burst of load from elsewhere hits both."""
    mine, base = result[name][key], result[IPY_MEM][key]
    return statistics.median(m / b for m, b in zip(mine, base, strict=True))  # type: ignore[call-overload]


def report(result: dict[str, dict[str, object]], rounds: int) -> None:
    load = os.getloadavg()[0]
    print("\nWall time against the ipykernel alone (median of paired blocks of round trips / streams):")
    for name, r in result.items():
        keys = [(k, label) for k, label in (("block_p50_ms", "`pass`"), ("stream_rates", "stream")) if k in r]
        print(f"  {name:<28} " + ", ".join(f"{label} {paired(result, name, k):.3f}x" for k, label in keys))
    print(
        f"\nCPU per `pass` round trip (median block of {BLOCK}, {rounds} each, alternating), load {load:.1f}"
    )
    for name, r in result.items():
        if "rtt_p50_ms" in r:
            print(f"{name}: wall p50 {r['rtt_p50_ms']:.2f} ms")
            show(name, r["cpu"], 1, "us")  # type: ignore[arg-type]
    if any("stream_cpu" in r for r in result.values()):
        print("\nCPU per streamed cell (ms), wall MB/s at the client (median cell)")
        for name, r in result.items():
            print(f"{name}: {r['stream_mb_s']:.0f} MB/s, {r['stream_messages']} stream messages")
            show(name, r["stream_cpu"], 1000, "ms")  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1000, help="'pass' round trips per kernel (1000)")
    parser.add_argument("--streams", type=int, default=2, help="streaming cells per kernel (2; 0: none)")
    parser.add_argument("--stream-mb", type=int, default=50, help="MB written by a streaming cell (50)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=PATH|NAME=VAR=VALUE",
        help="measure a gateway importing mlp_kernel from PATH (a worktree of some commit) instead of the"
        " installed one, or the installed one with an environment variable set (gpu-py=MLP_KERNEL_HOTPATH=0:"
        " the relay in Python); repeat it to compare versions under the same load",
    )
    parser.add_argument(
        "--floors",
        action="store_true",
        help="also measure the relay floors: libzmq's C proxy and a byte splice with no ZeroMQ in the relay",
    )
    args = parser.parse_args(argv)
    variants = dict(v.split("=", 1) for v in args.variant)
    with tempfile.TemporaryDirectory(prefix="bench-relay-cpu-") as tmp:
        root = Path(tmp)
        install_gpu_kernelspec(root)
        install_bare_relay(root)
        for name, script in FLOORS.items():
            install_bare_relay(root, name, script)
        for name, path in variants.items():
            install_variant(root, name, path)
        os.chdir(root)  # ``python -m mlp_kernel.gateway`` imports from its working directory first
        os.environ["JUPYTER_PATH"] = str(root)
        os.environ["JUPYTER_RUNTIME_DIR"] = str(root / "runtime")
        os.environ["IPYTHONDIR"] = str(root / "ipython")
        t0 = time.perf_counter()
        names = [
            *(variants or [GPU]),
            BARE,
            *(FLOORS if args.floors else ()),
            IPY_MEM,
        ]  # variants: only those
        result = asyncio.run(measure(names, args.rounds, args.streams, args.stream_mb))
        shutil.rmtree(root / "runtime", ignore_errors=True)
    report(result, args.rounds)
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
