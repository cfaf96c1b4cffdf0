"""The ``mlp_kernel.status`` protocol, declared once: states, event kinds, reasons and the typed snapshot.

Three writers and four readers share these messages: the gateway builds snapshots and events, the backends
say why a remote kernel ended (``ExitReason``), the provisioner and the server extension find the status file
(``status_file_name``) and read it for the fleet view and metrics, and the JupyterLab extension reads the
comm. Kept by hand in three places (Python, ``labextension/src/types.ts``, ``docs/status-comm.md``) they had
drifted apart, so this module is the source: ``json_schema()`` is the JSON Schema of every message,
``typescript()`` writes the extension's ``types.ts``, and ``markdown_tables()`` writes the field tables of the
doc. ``python -m mlp_kernel.protocol --write`` regenerates both files; the tests fail when either is stale or
when a snapshot the gateway builds does not validate against the schema.

This is the bottom layer: it imports nothing from the rest of the package, so anything may import it.
Enums derive from ``str`` (values go into JSON unchanged and compare equal to their strings).
"""

from __future__ import annotations

import enum
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypedDict, Union  # Union: get_origin of X | Y

COMM_TARGET = "mlp_kernel.status"
VERSION = 1
#: ``{runtime_dir}/{STATUS_FILE_PREFIX}{kernel_id}.json``: the gateway's status snapshot, for the fleet view
STATUS_FILE_PREFIX = "mlp-kernel-status-"


def status_file_name(kernel_id: str) -> str:
    return f"{STATUS_FILE_PREFIX}{kernel_id}.json"


class _Str(str, enum.Enum):
    def __str__(self) -> str:  # the value, in f-strings and logs too (Python 3.10 has no StrEnum)
        return str(self.value)


class KernelState(_Str):
    """Where a GPU (auto) kernel is in its life (``state`` of a snapshot)."""

    CPU_ONLY = "cpu_only"  # no GPU kernel yet; the next cell that runs code starts one
    PLACING = "placing"  # asking placement where to run
    QUEUED = "queued"  # waiting in a Kueue LocalQueue (position and ETA in ``queue``)
    STARTING = "starting"  # admitted; the pod is scheduled, pulling, starting
    RUNNING = "running"  # the remote kernel runs the notebook's cells
    RELEASING = "releasing"  # saving variables and giving the GPU back
    RELEASED = "released"  # no GPU held; the notebook stays open, the next cell starts a new kernel
    ERROR = "error"  # the last start failed; the message says why and what to change


class EventKind(_Str):
    """Things a user must not miss (``kind`` of an event); the extension shows them as notifications."""

    STARTED = "started"
    BURST = "burst"  # placed on a public member
    RELEASED = "released"
    PREEMPTED = "preempted"  # Kueue took the quota back
    EVICTED = "evicted"  # the pod was evicted, lost with its node, or deleted by someone else
    ERROR = "error"  # a start failed, the kernel crashed or was OOM-killed, a release could not save
    PRESTARTED = "prestarted"  # started on the user's activity (typing into a cell), before a cell ran
    PRESTART_DROPPED = "prestart_dropped"  # a pre-started kernel no cell used: given back, no new snapshot


class ExitReason(_Str):
    """Why a remote kernel went away without being asked to (``ExitInfo.reason`` of the backends)."""

    EXITED = "exited"  # its process ended (a crash, ``exit()``)
    KILLED = "killed"  # stopped by a signal on the local backend (the OOM killer sends SIGKILL)
    OOMKILLED = "oomkilled"  # the container exceeded its memory limit
    PREEMPTED = "preempted"  # Kueue preempted its Workload for higher-priority work
    EVICTED = "evicted"  # Kueue or the node evicted the pod
    NODE_LOST = "node-lost"  # its node failed or became unreachable
    DELETED = "deleted"  # someone else deleted the pod
    RELEASED = "released"  # this notebook released it (reported when the exit watch sees our own delete)

    @classmethod
    def of(cls, value: object) -> ExitReason:
        """``value`` as an ``ExitReason``; a value outside the protocol (a third-party backend's own word) is
        ``EXITED``, so a wrong word from a backend never stops the gateway announcing the exit."""
        try:
            return cls(value)
        except ValueError:
            return cls.EXITED

    def event_kind(self) -> EventKind:
        """The event a user sees: preemption is ``preempted``; a pod evicted, lost with its node or deleted
        by someone else is ``evicted`` (the GPU was taken away); a crash or an OOM kill is an ``error`` of
        the user's code or image."""
        if self is ExitReason.PREEMPTED:
            return EventKind.PREEMPTED
        if self in (ExitReason.EVICTED, ExitReason.NODE_LOST, ExitReason.DELETED):
            return EventKind.EVICTED
        return EventKind.ERROR


class ReleaseReason(_Str):
    """Why the GPU was given back (``last_release.reason``); a kernel that ended unasked gives its
    ``ExitReason`` instead."""

    IDLE = "idle"  # no activity for the idle limit
    USER = "user"  # ``%gpu release`` or the panel's Release button
    MOVE = "move"  # a new ``%gpu`` request that the running kernel cannot serve
    UNUSED = "unused"  # a pre-started kernel no cell used within ``release.prestart.hold``


class Phase(_Str):
    """Start-up phases (``phase`` of a snapshot while placing, queued or starting)."""

    PLACING = "placing"
    QUEUED = "queued"
    ADMITTED = "admitted"
    SCHEDULED = "scheduled"
    PULLING = "pulling"
    STARTING = "starting"
    CONNECTED = "connected"


class FilesMode(_Str):
    """How the GPU kernel sees the notebook's files (``files.mode`` of a snapshot)."""

    VOLUME = "volume"  # the user's workspace volume claim, mounted in the pod (and the packages volume)
    LOCAL = "local"  # the same disk: the kernel runs on the notebook server's machine
    SYNCED = "synced"  # copied through the bucket at start (workspace_sync, a public member)
    NONE = "none"  # nothing of the notebook's: a public member with workspace_sync off (or the copy failed)


class PrestartCell(_Str):
    """What the user did that a ``prestart`` action reports (``cell`` of the action): only typing code may
    pre-start a notebook's first GPU kernel (``release.prestart.first``); writing text never does."""

    CODE = "code"  # the source of a code cell was edited
    MARKDOWN = "markdown"  # the text of a markdown (or raw) cell was edited
    RUN = "run"  # a markdown (or raw) cell was run (a code cell starts the kernel itself)


class QueueInfo(TypedDict, total=False):
    local_queue: str | None
    position: int | None
    eta_s: float | None
    reason: str | None


class RuleResult(TypedDict):
    rule: str
    inputs: dict[str, Any]
    result: str
    detail: str


class Decision(TypedDict):
    """``placement.types.Decision.to_json()``: where placement put the kernel and every rule's result."""

    action: Literal["run", "queue", "burst", "reject"]
    member: str | None
    flavor: str | None
    local_queue: str | None
    namespace: str | None
    gpu_model: str | None
    gpu_count: int
    public: bool
    expected_wait_s: float | None
    price_per_hour: float
    summary: str
    explanation: list[RuleResult]
    refused_for: list[Literal["budget", "data_class"]]  # why a burst the request allowed was refused


class Choices(TypedDict, total=False):
    """What the panel offers: the policy's GPU models and tiers, whether burst is possible, the size cap."""

    gpu_models: list[str]
    tiers: list[str]
    burst_allowed: bool
    max_gpus: int
    member_labels: dict[str, str]  # member name -> its display_name (or the name): what the status bar shows


class LastRelease(TypedDict, total=False):
    reason: ReleaseReason | ExitReason
    at: str
    idle_s: float | None
    message: str


class LeftOut(TypedDict):
    path: str
    reason: str


class _FilesKeys(TypedDict):
    mode: FilesMode
    message: str  # the sentence ``%gpu status`` prints after "Files: "


class FilesInfo(_FilesKeys, total=False):
    """What the running (or last) GPU kernel sees of the notebook's files, and where it runs."""

    working_dir: str | None  # the kernel's working directory, as the kernel reported it
    workspace_claim: str | None  # volume: the claim mounted ...
    workspace_path: str | None  # ... at this path
    read_only: bool  # volume: mounted read-only
    packages_claim: str | None  # installed packages persist in this claim ...
    packages_path: str | None  # ... mounted at this path
    files_taken: int  # synced: how many files were copied
    bytes_taken: int
    left_out: list[LeftOut]  # synced: files not copied, with the reason for each (at most 50)
    left_out_count: int  # how many were left out in all (more than ``left_out`` holds when capped)


class BudgetLine(TypedDict):
    """One public GPU budget that applies to this notebook this month (``placement.budget.Limit``)."""

    scope: Literal["team", "user"]
    who: str  # the team or user name
    spent_usd: float
    limit_usd: float | None  # the hard limit: no new bursts once reached
    soft_usd: float | None
    over_soft: bool
    over_hard: bool
    line: str  # "Team ml-vision: $412 of $500 this month (soft limit $400 passed)"


class PrestartInfo(TypedDict):
    """Pre-start on activity (``release.prestart``, docs/design.md): whether the extension may ask for one
    now, and what the last one did."""

    ready: bool  # a ``prestart`` action would be weighed now (released, a cell ran since the last one)
    first: bool  # one with ``cell: "code"`` would start the first GPU kernel (cpu_only, prestart.first)
    second: bool  # one with ``cell: "code"`` would be weighed: the last pre-start went unused (one more)
    holding: bool  # the running (or starting) kernel was pre-started and no cell has used it yet ...
    hold_s: float  # ... it is dropped, without a new snapshot, after this long unused
    message: str  # the last pre-start's line for the user ("" before any): started, dropped or why not


class _StatusKeys(TypedDict):
    type: Literal["status"]
    version: int
    state: KernelState


class Status(_StatusKeys, total=False):
    """The snapshot: ``data`` of every gateway -> client ``comm_msg`` of type status, and the status file."""

    kernel_id: str
    user: str
    phase: Phase | None
    message: str
    member: str | None
    flavor: str | None
    gpu_model: str | None
    gpu_count: int
    public: bool
    since: str | None
    queue: QueueInfo | None
    price_per_hour: float
    cost_so_far: float
    idle_timeout_s: float
    idle_limit_s: float | None
    idle_rule: str
    idle_deadline: str | None
    busy: bool
    last_release: LastRelease | None
    decision: Decision | None
    request: dict[str, Any] | None
    choices: Choices
    gpu_seconds_busy: float
    files: FilesInfo | None
    budget: list[BudgetLine]  # the team's and user's budgets, when the policy limits them (else empty)
    prestart: PrestartInfo | None  # None: pre-start is off (the policy's ``release.prestart``, or no policy)


class _EventKeys(TypedDict):
    type: Literal["event"]
    kind: EventKind
    message: str


class StatusEvent(_EventKeys, total=False):
    at: str


class StatusError(TypedDict):
    """The answer to an invalid action (a ``request`` whose options do not parse)."""

    type: Literal["error"]
    message: str


class RefreshAction(TypedDict):
    action: Literal["refresh"]


class ReleaseAction(TypedDict):
    action: Literal["release"]


class RequestAction(TypedDict):
    action: Literal["request"]
    options: str  # the same syntax and validation as ``%gpu <options>``


class _PrestartKeys(TypedDict):
    action: Literal["prestart"]


class PrestartAction(_PrestartKeys, total=False):
    """The user started working on a cell: start the notebook's GPU kernel now if the policy's pre-start rule
    allows (a refusal is silent: nothing is answered; a ``cell`` outside ``PrestartCell`` is an error).
    ``cell`` says what the activity was; without it (older clients) it is not a code edit, so only a released
    notebook is pre-started, as before ``cell`` existed."""

    cell: PrestartCell


#: gateway -> client messages, and client -> gateway actions, as the TypeScript unions name them
MESSAGES = {"StatusMessage": (Status, StatusEvent, StatusError)}
ACTIONS = {"StatusAction": (RefreshAction, ReleaseAction, RequestAction, PrestartAction)}
ENUMS = (KernelState, EventKind, ExitReason, ReleaseReason, Phase, FilesMode, PrestartCell)
#: TypeScript names of the declared types (the extension's existing names)
TS_NAMES: dict[Any, str] = {
    KernelState: "KernelState",
    EventKind: "EventKind",
    ExitReason: "ExitReason",
    ReleaseReason: "ReleaseReason",
    Phase: "Phase",
    FilesMode: "FilesMode",
    PrestartCell: "PrestartCell",
    LeftOut: "ILeftOut",
    FilesInfo: "IFilesInfo",
    BudgetLine: "IBudgetLine",
    PrestartInfo: "IPrestartInfo",
    QueueInfo: "IQueueInfo",
    RuleResult: "IRuleResult",
    Decision: "IDecision",
    Choices: "IChoices",
    LastRelease: "ILastRelease",
    Status: "IStatus",
    StatusEvent: "IStatusEvent",
    StatusError: "IStatusError",
}
OBJECTS: tuple[Any, ...] = (QueueInfo, RuleResult, Decision, Choices, LastRelease, LeftOut, FilesInfo)
OBJECTS += (BudgetLine, PrestartInfo, Status, StatusEvent, StatusError)


# -- the type walker both generators use -------------------------------------------------------------------


def _hints(td: Any) -> dict[str, Any]:
    return typing.get_type_hints(td, globalns=vars(sys.modules[__name__]))


def _members(tp: Any) -> tuple[Any, ...] | None:
    """The members of a union (``X | None`` or ``Union[...]``), else None."""
    if typing.get_origin(tp) is Union or isinstance(tp, types.UnionType):
        return typing.get_args(tp)
    return None


def _schema(tp: Any) -> dict[str, Any]:
    if tp is Any:
        return {}
    if tp is type(None):
        return {"type": "null"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is str:
        return {"type": "string"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"$ref": f"#/$defs/{tp.__name__}"}
    if tp in OBJECTS:
        return {"$ref": f"#/$defs/{tp.__name__}"}
    members = _members(tp)
    if members is not None:
        return {"anyOf": [_schema(m) for m in members]}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _schema(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(args[1])}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _object_schema(td: Any) -> dict[str, Any]:
    hints = _hints(td)
    out: dict[str, Any] = {
        "type": "object",
        "properties": {k: _schema(v) for k, v in hints.items()},
        "required": sorted(td.__required_keys__),
    }
    if td.__doc__ and not td.__doc__.startswith(td.__name__ + "("):
        out["description"] = " ".join(td.__doc__.split())
    return out


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of every gateway -> client message; actions under ``$defs`` too."""
    defs: dict[str, Any] = {e.__name__: {"enum": [m.value for m in e]} for e in ENUMS}
    for td in OBJECTS + tuple(t for group in ACTIONS.values() for t in group):
        defs[td.__name__] = _object_schema(td)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://mlp-kernel.dev/schemas/status-comm-v1.json",
        "title": f"{COMM_TARGET} comm messages, version {VERSION}",
        "oneOf": [{"$ref": f"#/$defs/{t.__name__}"} for t in MESSAGES["StatusMessage"]],
        "$defs": defs,
    }


def _ts(tp: Any) -> str:
    if tp is Any:
        return "unknown"
    if tp is type(None):
        return "null"
    if tp is bool:
        return "boolean"
    if tp in (int, float):
        return "number"
    if tp is str:
        return "string"
    if tp in TS_NAMES:
        return TS_NAMES[tp]
    members = _members(tp)
    if members is not None:
        return " | ".join(_ts(m) for m in members)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return " | ".join(f"'{a}'" for a in args)
    if origin is list:
        inner = _ts(args[0])
        return f"{inner}[]" if inner.isidentifier() else f"({inner})[]"
    if origin is dict:
        return f"Record<string, {_ts(args[1])}>"
    raise TypeError(f"no TypeScript for {tp!r}")


def typescript() -> str:
    """The extension's ``labextension/src/types.ts``."""
    out = [
        "/**",
        f" * The `{COMM_TARGET}` comm protocol (docs/status-comm.md), as TypeScript types.",
        " * GENERATED from mlp_kernel/protocol.py by `python -m mlp_kernel.protocol --write`: do not edit.",
        " * The gateway kernel is the only writer; the extension only reads snapshots and sends actions.",
        " */",
        "",
        f"export const COMM_TARGET = '{COMM_TARGET}';",
        f"export const PROTOCOL_VERSION = {VERSION};",
    ]
    for e in ENUMS:
        out += ["", f"/** {' '.join((e.__doc__ or '').split())} */"]
        out.append(f"export type {TS_NAMES[e]} = " + " | ".join(f"'{m.value}'" for m in e) + ";")
    for td in OBJECTS:
        out.append("")
        if td.__doc__ and not td.__doc__.startswith(td.__name__ + "("):
            out.append(f"/** {' '.join(td.__doc__.split())} */")
        out.append(f"export interface {TS_NAMES[td]} {{")
        for key, tp in _hints(td).items():
            opt = "" if key in td.__required_keys__ else "?"
            out.append(f"  {key}{opt}: {_ts(tp)};")
        out.append("}")
    for name, group in {**MESSAGES, **ACTIONS}.items():
        parts = [TS_NAMES.get(t) or _inline_ts(t) for t in group]
        out += ["", f"export type {name} =", *(f"  | {p}" for p in parts[:-1]), f"  | {parts[-1]};"]
    return "\n".join(out) + "\n"


def _inline_ts(td: Any) -> str:
    opt = {k: "" if k in td.__required_keys__ else "?" for k in _hints(td)}
    return "{ " + "; ".join(f"{k}{opt[k]}: {_ts(v)}" for k, v in _hints(td).items()) + " }"


# -- the doc's tables --------------------------------------------------------------------------------------

TABLE_BEGIN = "<!-- generated by python -m mlp_kernel.protocol --write: begin -->"
TABLE_END = "<!-- generated: end -->"


def markdown_tables() -> str:
    """The field tables of docs/status-comm.md (between its generated markers)."""
    out = ["| enum | values |", "|---|---|"]
    for e in ENUMS:
        out.append(f"| `{e.__name__}` | " + ", ".join(f"`{m.value}`" for m in e) + " |")
    for td in OBJECTS:
        out += ["", f"**`{td.__name__}`** (TypeScript `{TS_NAMES[td]}`)", ""]
        out += ["| field | type | required |", "|---|---|---|"]
        for key, tp in _hints(td).items():
            req = "yes" if key in td.__required_keys__ else ""
            out.append(f"| `{key}` | `{_ts(tp)}` | {req} |")
    return "\n".join(out)


def _replace_between(text: str, body: str) -> str:
    head, sep, rest = text.partition(TABLE_BEGIN)
    _, sep2, tail = rest.partition(TABLE_END)
    if not (sep and sep2):
        raise ValueError(f"the generated markers are missing: {TABLE_BEGIN} ... {TABLE_END}")
    return f"{head}{TABLE_BEGIN}\n{body}\n{TABLE_END}{tail}"


def generated_files(root: Path) -> dict[Path, str]:
    """Each generated file under the project ``root`` with the text it must have."""
    doc = root / "docs" / "status-comm.md"
    return {
        root / "labextension" / "src" / "types.ts": typescript(),
        doc: _replace_between(doc.read_text(encoding="utf-8"), markdown_tables()),
    }


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m mlp_kernel.protocol", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="regenerate types.ts and the doc's tables")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    args = parser.parse_args(argv)
    if not args.write:
        print(json.dumps(json_schema(), indent=2))
        return 0
    for path, text in generated_files(Path(args.root)).items():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
