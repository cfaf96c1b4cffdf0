"""The ``mlp-kernel`` command: one entry point, one module per subcommand.

Each subcommand lives in ``mlp_kernel/cli/<name>.py`` and exposes ``register(subparsers)`` which adds its
parser and sets ``func`` to a callable taking the parsed ``argparse.Namespace`` and returning an exit code.
Modules are imported lazily-by-name so a broken or slow subcommand cannot slow the others down.
Exit codes: 0 success, 1 a failure while doing the work, 2 bad input (files, flags).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..startup import skip_slow_optional_imports

SUBCOMMANDS = (
    "install",
    "place",
    "render",
    "bridge",
    "gc",
    "simulate",
    "local-load",
    "budget",
    "pool",
    "queue-summary",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or only ``only`` (so one command does not import the others)."""
    parser = argparse.ArgumentParser(prog="mlp-kernel", description="Admin tools for GPU (auto) kernels.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS if only is None else (only,):
        try:
            module_name = f"{__name__}.{name.replace('-', '_')}"  # local-load lives in local_load.py
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # subcommand not shipped in this build
            raise
        module.register(sub)
    return parser


def duration_flag(flag: str, text: str, error: type[ValueError] = ValueError) -> float:
    """Seconds of a duration flag, at most 30 days (larger values overflow datetimes and timers downstream);
    raises ``error`` naming the flag, which each subcommand turns into exit code 2."""
    from ..placement.units import MAX_DURATION_S, parse_duration

    try:
        return parse_duration(text, maximum=MAX_DURATION_S)
    except ValueError as exc:
        raise error(f"{flag}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    skip_slow_optional_imports()
    argv = sys.argv[1:] if argv is None else argv
    # every subcommand but install loads a policy: have the loader check snapshot.storage too (its owner's
    # check, registered on import, since placement does not import the snapshot package)
    importlib.import_module("mlp_kernel.snapshot.storage")
    chosen = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    parser = build_parser(chosen)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
