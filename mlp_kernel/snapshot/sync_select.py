"""Which files of the notebook's directory go to a GPU kernel on a public member (``workspace_sync``).

Why a pure module: what leaves the private side is a policy decision the user must be able to read back ("12
files taken; not taken: patients.csv (private-only), big.bin (over 256 MiB)"), so it is computed here, once,
from the directory and the policy, before anything touches the network, and tested without a bucket. The
same rules (built-in skips, ``exclude``, caps) also choose what comes *back* (``agent_sync.py`` applies its
own copy inside the kernel, which has no mlp_kernel).

Rules, in order, for each path under the root (``os.walk``, never following a symbolic link):

- a built-in skipped directory (``.git``, ``.ipynb_checkpoints``, ``__pycache__``, ``node_modules``, a
  virtualenv: any directory holding ``pyvenv.cfg``, credentials directories) is not entered;
- a symbolic link is never followed, and is named as not taken (it might point out of the directory);
- ``exclude`` and the built-in secret patterns (``.env``, ``*.pem``, ``*.key``, ``id_rsa*``, ``.netrc``): not
  taken, named as excluded;
- ``private_only``: not taken, named (these files never leave the private side); when the notebook's data
  class must stay private, *every* file is named so and nothing is taken;
- ``include`` (when given, the allow-list): a file matching none is not taken, counted but not listed one by
  one (it is what the admin chose not to sync);
- a file over ``max_file_bytes``, and then the largest files beyond ``max_bytes`` or ``max_files`` (smaller
  files are taken first): named with the cap.

A glob without ``/`` matches a file or directory name at any depth (``*.csv``, ``secrets``); one with ``/``
matches the path from the root (``data/*.csv``), as ``fnmatch`` does (``*`` crosses ``/``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .sync_walk import SECRET_FILES, matches, walk

SHOWN = 5  # names listed per reason in the user's line; the rest are counted


@dataclass(frozen=True)
class SyncRules:
    """The policy's ``workspace_sync`` as the selection needs it (``from_policy`` builds it)."""

    max_bytes: int = 1024**3
    max_file_bytes: int = 256 * 1024**2
    max_files: int = 1000
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    private_only: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: object) -> SyncRules:
        names = ("max_bytes", "max_file_bytes", "max_files", "include", "exclude", "private_only")
        return cls(**{n: getattr(settings, n) for n in names})


@dataclass
class Selection:
    """What was taken (relative POSIX paths and sizes) and what was not, with the reason for each."""

    taken: dict[str, int] = field(default_factory=dict)
    left_out: dict[str, list[str]] = field(default_factory=dict)  # reason -> relative paths
    not_allowed: int = 0  # files outside the allow-list (``include``)

    @property
    def bytes(self) -> int:
        return sum(self.taken.values())

    def leave(self, reason: str, rel: str) -> None:
        self.left_out.setdefault(reason, []).append(rel)

    def summary(self, verb: str = "copied to the GPU kernel") -> str:
        """One line for the user: how many files were taken and which were not, and why."""
        n = len(self.taken)
        line = f"{n} file{'s' if n != 1 else ''} ({_size(self.bytes)}) {verb}"
        parts = [f"{names(paths)} ({reason})" for reason, paths in self.left_out.items()]
        if self.not_allowed:
            parts.append(f"{self.not_allowed} not in workspace_sync.include")
        return line + ("; not taken: " + "; ".join(parts) if parts else "") + "."


def names(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:SHOWN])
    return shown + (f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else "")


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def select(root: Path, rules: SyncRules, *, private_class: str | None = None) -> Selection:
    """The files of ``root`` that may go to a public member under ``rules``.

    ``private_class``: the notebook's data class when it must stay on the private side; then nothing is
    taken and the user is told why.
    """
    out = Selection()
    candidates: list[tuple[int, str]] = []
    for rel, size, kind in walk(str(root)):
        if kind == "link":
            out.leave("a symbolic link, never followed", rel)
        elif kind == "special":
            out.leave("not a regular file", rel)
        elif matches(rel, rules.exclude) or matches(rel, SECRET_FILES):
            out.leave("excluded", rel)
        elif private_class is not None:
            out.leave(f"data class {private_class} stays on the private cluster", rel)
        elif matches(rel, rules.private_only):
            out.leave("private-only: never leaves the private cluster", rel)
        elif rules.include and not matches(rel, rules.include):
            out.not_allowed += 1
        elif size > rules.max_file_bytes:
            out.leave(f"over the {_size(rules.max_file_bytes)} file cap", rel)
        else:
            candidates.append((size, rel))
    total = 0
    for size, rel in sorted(candidates):
        if len(out.taken) >= rules.max_files:
            out.leave(f"over the {rules.max_files}-file cap", rel)
        elif total + size > rules.max_bytes:
            out.leave(f"over the {_size(rules.max_bytes)} total cap", rel)
        else:
            out.taken[rel] = size
            total += size
    out.taken = dict(sorted(out.taken.items()))
    return out
