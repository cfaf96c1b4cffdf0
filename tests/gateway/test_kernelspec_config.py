"""Hand-edited kernel.json values the gateway reads (``idle_timeout``, ``launch_timeout``).

Nothing validates kernel.json between an editor and the gateway. ``idle_timeout: "1e12"`` was parsed without
a ceiling (and overflows the gateway's timers far from where it was typed) and ``"15 minutes"`` raised
ValueError out of the gateway's first load. Now either is the kernel's policy error: every ``%gpu`` cell and
every cell that would start a GPU kernel says which file and field to fix, and the kernel stays usable.
"""

from __future__ import annotations

import json

import pytest

from mlp_kernel.gateway.config import GatewayConfig
from mlp_kernel.gateway.requests import RequestState
from mlp_kernel.server.validation import validate_kernel_json

from .conftest import ROOT, text_of

SPEC = ROOT / "kernelspecs" / "gpu-auto"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("idle_timeout", "1e12"),
        ("idle_timeout", "31d"),
        ("idle_timeout", "15 minutes"),
        ("idle_timeout", "0.5"),  # under %gpu idle='s minimum of 1 s
        ("idle_timeout", "nan"),
        ("idle_timeout", "9" * 400),
        ("launch_timeout", "1e12"),
        ("launch_timeout", "0"),
        ("launch_timeout", "-5"),
        ("launch_timeout", "inf"),
    ],
)
def test_out_of_range_or_unreadable_durations_become_an_error_naming_kernel_json_and_the_field(key, value):
    state = RequestState(GatewayConfig(kernelspec_dir=str(SPEC), **{key: value}))
    state.load()  # raised ValueError, or accepted 1e12
    error = state.policy_error
    assert str(SPEC / "kernel.json") in error, error
    assert f"metadata.kernel_provisioner.config.{key}" in error and "30 d" in error, error
    assert 0 < state.idle_timeout_s <= 30 * 86400 and 0 < state.launch_timeout_s <= 30 * 86400


@pytest.mark.parametrize(("key", "value"), [("idle_timeout", "1e12"), ("launch_timeout", "0")])
def test_the_admin_page_refuses_what_the_gateway_refuses(key, value):
    spec = json.loads((SPEC / "kernel.json").read_text())
    spec["metadata"]["kernel_provisioner"]["config"][key] = value
    issues = validate_kernel_json(json.dumps(spec, indent=2))
    assert [i.field for i in issues] == [f"metadata.kernel_provisioner.config.{key}"], issues


@pytest.mark.parametrize(
    ("key", "value", "seconds"),
    [("idle_timeout", "0", 0.0), ("idle_timeout", "30d", 30 * 86400.0), ("launch_timeout", "90s", 90.0)],
)
def test_values_in_range_are_used(key, value, seconds):
    state = RequestState(GatewayConfig(kernelspec_dir=str(SPEC), **{key: value}))
    assert state.policy_error == ""
    assert getattr(state, f"{key}_s") == seconds


@pytest.mark.timeout(120)
async def test_a_gateway_with_a_bad_kernel_json_timeout_answers_every_cell_with_what_to_fix(start_kernel):
    k = await start_kernel(idle_timeout="1e12")
    for code in ("%gpu", "1 + 1"):  # a magic, and a cell that would start a GPU kernel
        reply, outputs = await k.run(code, timeout=30)
        assert reply["content"]["status"] == "error", (code, text_of(outputs))
        assert reply["content"]["ename"] == "GpuPolicyError", reply["content"]
        assert "kernel.json" in reply["content"]["evalue"], reply["content"]
        assert "config.idle_timeout" in reply["content"]["evalue"], reply["content"]
        assert k.record() is None, "nothing may start on a broken kernelspec"
    reply = await k.kc.kernel_info(reply=True, timeout=10)
    assert reply["content"]["status"] == "ok"
