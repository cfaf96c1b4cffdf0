"""The fleet: every GPU (auto) kernel of this server with its live status, for the admin view and metrics.

Kernels come from the server's kernel manager (those whose kernelspec is one of ``kernelspec_names``). Their
status comes from a small file each gateway writes and keeps current,
``{runtime_dir}/mlp-kernel-status-{kernel_id}.json``, holding the same JSON as the status snapshot of the
``mlp_kernel.status`` comm (docs/status-comm.md), optionally with a ``user`` field. Reading a file is cheap
and needs no connection to the kernel, so listing the fleet never disturbs a running notebook. A kernel
whose file is missing, unreadable or malformed (wrong types, NaN, binary, too big) is listed with state
``unknown`` and the reason rather than hidden, and never fails the listing for the other kernels.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..identity import server_user
from ..protocol import STATUS_FILE_PREFIX, status_file_name

__all__ = ["STATUS_FILE_PREFIX"]  # re-exported for the server extension


def status_path(runtime_dir: str | Path, kernel_id: str) -> Path:
    return Path(runtime_dir) / status_file_name(kernel_id)


MAX_STATUS_BYTES = 1 << 20  # a real snapshot is a few kilobytes
READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)


class MalformedStatus(ValueError):
    """A status file that is there but is not a status snapshot; the message says what is wrong with it."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a status file may hold")


def read_status(runtime_dir: str | Path, kernel_id: str) -> dict[str, Any] | None:
    """The kernel's last status snapshot, or ``None`` when there is none (yet).

    Raises ``MalformedStatus`` when the file exists but cannot be a snapshot (unreadable, a symbolic link, a
    FIFO or device, binary, too big, not a JSON object, NaN or infinity).
    """
    try:  # never follow a link or wait on a FIFO: this runs on the server's event loop
        fd = os.open(status_path(runtime_dir, kernel_id), READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise MalformedStatus(f"cannot be read ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MalformedStatus("not a regular file")
        raw = f.read(MAX_STATUS_BYTES + 1)
    if len(raw) > MAX_STATUS_BYTES:
        raise MalformedStatus(f"larger than {MAX_STATUS_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise MalformedStatus(f"not JSON ({str(e)[:200]})") from None
    if not isinstance(data, dict):
        raise MalformedStatus("not a JSON object")
    return data


def server_owner() -> str:
    """Whose server this is: the JupyterHub user when spawned by a hub, else the OS user."""
    return server_user() or getpass.getuser()


@dataclass(frozen=True)
class FleetKernel:
    kernel_id: str
    kernelspec: str
    user: str
    state: str
    member: str | None
    flavor: str | None
    gpu_model: str | None
    gpu_count: int
    public: bool
    since: str | None
    price_per_hour: float
    cost_so_far: float
    queue_position: int | None
    queue_eta_s: float | None
    busy: bool
    execution_state: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


MAX_TEXT = 4096
NUMBER = (int, float)
KIND_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    dict: "an object",
    NUMBER: "a number",
}


def _field(s: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = s.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MalformedStatus(f"{key}: expected {KIND_NAMES[kind]}, got {type(value).__name__}")
    if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
        raise MalformedStatus(f"{key}: expected a finite number >= 0, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value < 2**31:
        raise MalformedStatus(f"{key}: expected a number >= 0, got {value!r}")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise MalformedStatus(f"{key}: longer than {MAX_TEXT} characters")
    return value


def _checked(s: dict[str, Any]) -> dict[str, Any]:
    """The snapshot's fields the fleet shows, type-checked; ``MalformedStatus`` names the first bad one.

    The file is written by a gateway, but it sits in the user's runtime directory and one bad file must not
    take the fleet view (or the metrics, whose counters must never see NaN or a negative step) down for
    every admin: a file that fails here is shown as ``unknown`` with the reason.
    """
    queue = _field(s, "queue", dict, {})
    return {
        "user": _field(s, "user", str, ""),
        "state": _field(s, "state", str, ""),
        "member": _field(s, "member", str, None),
        "flavor": _field(s, "flavor", str, None),
        "gpu_model": _field(s, "gpu_model", str, None),
        "gpu_count": _field(s, "gpu_count", int, 0),
        "public": _field(s, "public", bool, False),
        "since": _field(s, "since", str, None),
        "price_per_hour": float(_field(s, "price_per_hour", NUMBER, 0.0)),
        "cost_so_far": float(_field(s, "cost_so_far", NUMBER, 0.0)),
        "queue_position": _field(queue, "position", int, None),
        "queue_eta_s": _field(queue, "eta_s", NUMBER, None),
        "busy": _field(s, "busy", bool, False),
        "message": _field(s, "message", str, ""),
    }


def fleet_kernel(model: dict[str, Any], status: dict[str, Any] | None, owner: str) -> FleetKernel:
    """One fleet row; raises ``MalformedStatus`` when a field of ``status`` has the wrong type or range."""
    s = _checked(status or {})
    message = "no status file yet" if status is None else ""
    return FleetKernel(
        kernel_id=str(model.get("id")),
        kernelspec=str(model.get("name")),
        user=s["user"] or owner,
        state=s["state"] or "unknown",
        member=s["member"],
        flavor=s["flavor"],
        gpu_model=s["gpu_model"],
        gpu_count=s["gpu_count"],
        public=s["public"],
        since=s["since"],
        price_per_hour=s["price_per_hour"],
        cost_so_far=s["cost_so_far"],
        queue_position=s["queue_position"],
        queue_eta_s=s["queue_eta_s"],
        busy=s["busy"],
        execution_state=model.get("execution_state"),
        message=s["message"] or message,
    )


def list_fleet(
    kernel_manager: Any, runtime_dir: str | Path, kernelspec_names: list[str]
) -> list[FleetKernel]:
    owner = server_owner()
    out = []
    for model in kernel_manager.list_kernels():
        if model.get("name") not in kernelspec_names:
            continue
        try:
            out.append(fleet_kernel(model, read_status(runtime_dir, model["id"]), owner))
        except MalformedStatus as e:
            out.append(fleet_kernel(model, {"message": f"status file ignored: {e}"}, owner))
    return sorted(out, key=lambda k: (k.user, k.since or "", k.kernel_id))
