"""Fleet view and Prometheus metrics, fed from the per-kernel status files the gateway writes.

A real kernel is started through the server's REST API under a second managed kernelspec name (a plain
ipykernel: the fleet code only needs the kernel manager's list and the status file), and its status file is
written here the way the gateway writes it: ``{runtime_dir}/mlp-kernel-status-{kernel_id}.json``.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from mlp_kernel.server.fleet import FleetKernel, status_path
from mlp_kernel.server.metrics import FleetMetrics

from .conftest import ADMIN, USER

FLEET_SPEC = "gpu-auto-fleet-test"


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], jp_data_dir: Path) -> dict[str, Any]:
    spec = jp_data_dir / "kernels" / FLEET_SPEC
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "fleet test",
                "language": "python",
            }
        )
    )
    jp_server_config["MlpKernelExtension"]["kernelspec_names"] = ["gpu-auto", FLEET_SPEC]
    return jp_server_config


def snapshot(kernel_id: str, **changes: Any) -> dict[str, Any]:
    since = (datetime.now(timezone.utc) - timedelta(minutes=12)).isoformat()
    snap = {
        "type": "status",
        "version": 1,
        "kernel_id": kernel_id,
        "state": "running",
        "phase": "connected",
        "message": "Running on private / silver",
        "member": "private",
        "flavor": "silver",
        "gpu_model": "V100",
        "gpu_count": 1,
        "public": False,
        "since": since,
        "queue": None,
        "price_per_hour": 0.0,
        "cost_so_far": 0.0,
        "idle_timeout_s": 900,
        "idle_deadline": None,
        "busy": False,
        "last_release": None,
        "decision": None,
        "request": None,
        "choices": {},
        "user": "carol",
    }
    snap.update(changes)
    return snap


@pytest.fixture
def kernel_id(api: Any, jp_serverapp: Any) -> Any:
    status, body = api("POST", "/api/kernels", body={"name": FLEET_SPEC})
    assert status == 201, body
    yield body["id"]
    api("DELETE", f"/api/kernels/{body['id']}")


def test_fleet_lists_each_managed_kernel_with_its_status(api: Any, jp_serverapp: Any, kernel_id: str) -> None:
    status_path(jp_serverapp.runtime_dir, kernel_id).write_text(json.dumps(snapshot(kernel_id)))
    status, body = api("GET", "fleet")
    assert status == 200, body
    (k,) = [k for k in body["kernels"] if k["kernel_id"] == kernel_id]
    assert (k["user"], k["state"], k["member"], k["flavor"], k["gpu_model"]) == (
        "carol",
        "running",
        "private",
        "silver",
        "V100",
    )


def test_fleet_shows_a_kernel_without_status_file_as_unknown(api: Any, kernel_id: str) -> None:
    _, body = api("GET", "fleet")
    (k,) = [k for k in body["kernels"] if k["kernel_id"] == kernel_id]
    assert k["state"] == "unknown" and k["message"] == "no status file yet"


def test_fleet_is_for_admins_only(api: Any) -> None:
    status, body = api("GET", "fleet", user=USER)
    assert status == 403 and "admin" in body["message"]


def test_metrics_endpoint_counts_kernels_by_state_and_member(
    api: Any, jp_serverapp: Any, kernel_id: str
) -> None:
    status_path(jp_serverapp.runtime_dir, kernel_id).write_text(json.dumps(snapshot(kernel_id)))
    api("GET", "fleet", user=ADMIN)  # refreshes the metrics (the timer is off in tests)
    status, text = api("GET", "/metrics")
    assert status == 200
    assert 'mlp_kernel_kernels{member="private",state="running"} 1.0' in text


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _kernel(kernel_id: str = "k1", **changes: Any) -> FleetKernel:
    from mlp_kernel.server.fleet import fleet_kernel

    return fleet_kernel({"id": kernel_id, "name": "gpu-auto"}, snapshot(kernel_id, **changes), "owner")


def test_gpu_seconds_held_and_busy_advance_only_by_elapsed_time() -> None:
    labels = {"member": "private", "flavor": "silver", "gpu_model": "V100"}
    held0 = _value("mlp_kernel_gpu_seconds_held_total", **labels)
    busy0 = _value("mlp_kernel_gpu_seconds_busy_total", **labels)
    now = datetime.now(timezone.utc)
    m = FleetMetrics()
    m.refresh([_kernel(since=(now - timedelta(seconds=100)).isoformat(), gpu_count=2, busy=True)], now=now)
    assert _value("mlp_kernel_gpu_seconds_held_total", **labels) - held0 == pytest.approx(200)
    m.refresh(
        [_kernel(since=(now - timedelta(seconds=100)).isoformat(), gpu_count=2, busy=False)],
        now=now + timedelta(seconds=10),
    )
    assert _value("mlp_kernel_gpu_seconds_held_total", **labels) - held0 == pytest.approx(220)
    assert _value("mlp_kernel_gpu_seconds_busy_total", **labels) - busy0 == pytest.approx(200)


def test_public_spend_counts_each_dollar_once_and_never_goes_back() -> None:
    before = _value("mlp_kernel_public_spend_dollars_total", member="aws")
    m = FleetMetrics()
    m.refresh([_kernel("p1", member="aws", public=True, cost_so_far=1.5)])
    m.refresh([_kernel("p1", member="aws", public=True, cost_so_far=2.0)])
    m.refresh([_kernel("p1", member="aws", public=True, state="released", cost_so_far=2.0)])
    assert _value("mlp_kernel_public_spend_dollars_total", member="aws") - before == pytest.approx(2.0)


def test_queue_wait_is_the_longest_current_wait_per_flavor() -> None:
    now = datetime.now(timezone.utc)
    FleetMetrics().refresh(
        [
            _kernel("q1", state="queued", flavor="gold", since=(now - timedelta(seconds=30)).isoformat()),
            _kernel("q2", state="queued", flavor="gold", since=(now - timedelta(seconds=90)).isoformat()),
        ],
        now=now,
    )
    assert _value("mlp_kernel_queue_wait_seconds", flavor="gold") == pytest.approx(90)


MALFORMED = {
    b"\x1f\x8b\x08\x00binary": "not JSON",
    b"[]": "not a JSON object",
    b'{"state": "running", "gpu_count": "many"}': "gpu_count: expected an integer",
    b'{"state": "running", "queue": 5}': "queue: expected an object",
    b'{"state": "running", "price_per_hour": NaN}': "not JSON",
    b'{"state": "running", "cost_so_far": 1e400}': "cost_so_far: expected a finite number",
    b'{"state": "running", "cost_so_far": -3}': "cost_so_far: expected a number >= 0",
    b'{"state": "running", "since": 5}': "since: expected a string",
    b'{"state": "running", "busy": "yes"}': "busy: expected true or false",
    b'{"state": "running", "queue": {"position": true}}': "position: expected an integer",
    b"[" * 100_000: "not JSON",
    b'{"message": "' + b"x" * (2 << 20) + b'"}': "larger than",
}


def test_a_malformed_status_file_is_shown_as_unknown_and_never_fails_the_fleet(
    api: Any, jp_serverapp: Any, kernel_id: str
) -> None:
    path = status_path(jp_serverapp.runtime_dir, kernel_id)
    for raw, reason in MALFORMED.items():
        path.write_bytes(raw)
        status, body = api("GET", "fleet")
        assert status == 200, (raw[:60], body)
        (k,) = [k for k in body["kernels"] if k["kernel_id"] == kernel_id]
        assert k["state"] == "unknown", raw[:60]
        assert k["message"].startswith("status file ignored: ") and reason in k["message"], k["message"]
        status, text = api("GET", "/metrics")
        assert status == 200 and 'mlp_kernel_kernels{member="none",state="unknown"} 1.0' in text


def test_a_fifo_or_link_at_the_status_path_is_never_waited_on_or_followed(
    api: Any, jp_serverapp: Any, kernel_id: str, tmp_path: Path
) -> None:
    import os
    import time

    path = status_path(jp_serverapp.runtime_dir, kernel_id)
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps(snapshot(kernel_id)))
    link = lambda p: os.symlink(target, p)  # noqa: E731
    for make, reason in ((os.mkfifo, "not a regular file"), (link, "cannot be read")):
        path.unlink(missing_ok=True)
        make(path)
        started = time.monotonic()
        status, body = api("GET", "fleet")
        assert status == 200 and time.monotonic() - started < 5
        (k,) = [k for k in body["kernels"] if k["kernel_id"] == kernel_id]
        assert k["state"] == "unknown" and reason in k["message"], k["message"]
