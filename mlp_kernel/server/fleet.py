"""The fleet: every GPU (auto) kernel of this server with its live status, for the admin view and metrics.

Kernels come from the server's kernel manager (those whose kernelspec is one of ``kernelspec_names``). Their
status comes from a small file each gateway writes and keeps current,
``{runtime_dir}/mlp-kernel-status-{kernel_id}.json``, holding the same JSON as the status snapshot of the
``mlp_kernel.status`` comm (docs/status-comm.md), optionally with a ``user`` field. Reading a file is cheap
and needs no connection to the kernel, so listing the fleet never disturbs a running notebook. A kernel
whose file is missing or unreadable is listed with state ``unknown`` rather than hidden.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATUS_FILE_PREFIX = "mlp-kernel-status-"


def status_path(runtime_dir: str | Path, kernel_id: str) -> Path:
    return Path(runtime_dir) / f"{STATUS_FILE_PREFIX}{kernel_id}.json"


def read_status(runtime_dir: str | Path, kernel_id: str) -> dict[str, Any] | None:
    """The kernel's last status snapshot, or ``None`` when there is none (yet) or it is unreadable."""
    try:
        data = json.loads(status_path(runtime_dir, kernel_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def server_owner() -> str:
    """Whose server this is: the JupyterHub user when spawned by a hub, else the OS user."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


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


def fleet_kernel(model: dict[str, Any], status: dict[str, Any] | None, owner: str) -> FleetKernel:
    s = status or {}
    queue = s.get("queue") or {}
    return FleetKernel(
        kernel_id=str(model.get("id")),
        kernelspec=str(model.get("name")),
        user=str(s.get("user") or owner),
        state=str(s.get("state") or "unknown"),
        member=s.get("member"),
        flavor=s.get("flavor"),
        gpu_model=s.get("gpu_model"),
        gpu_count=int(s.get("gpu_count") or 0),
        public=bool(s.get("public")),
        since=s.get("since"),
        price_per_hour=float(s.get("price_per_hour") or 0.0),
        cost_so_far=float(s.get("cost_so_far") or 0.0),
        queue_position=queue.get("position"),
        queue_eta_s=queue.get("eta_s"),
        busy=bool(s.get("busy")),
        execution_state=model.get("execution_state"),
        message=str(s.get("message") or ("no status file yet" if status is None else "")),
    )


def list_fleet(kernel_manager: Any, runtime_dir: str | Path,
               kernelspec_names: list[str]) -> list[FleetKernel]:
    owner = server_owner()
    out = []
    for model in kernel_manager.list_kernels():
        if model.get("name") not in kernelspec_names:
            continue
        out.append(fleet_kernel(model, read_status(runtime_dir, model["id"]), owner))
    return sorted(out, key=lambda k: (k.user, k.since or "", k.kernel_id))
