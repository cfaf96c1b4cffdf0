"""GPU (auto) answers as the kernel the client connected to: nothing but code starts a GPU kernel, and
``%connect_info`` names the gateway, not the hidden remote kernel."""

from __future__ import annotations

import json
import os
import re

import psutil
from jupyter_core.paths import jupyter_runtime_dir

from .conftest import text_of
from .test_lifecycle import wait_until
from .test_wire_attacks import control_request

NOT_CODE = [
    ("create_subshell_request", {}),
    ("list_subshell_request", {}),
    ("delete_subshell_request", {"subshell_id": "abc"}),
    ("usage_request", {}),  # jupyter-resource-usage asks every few seconds
    ("debug_request", {"type": "request", "seq": 1, "command": "initialize", "arguments": {}}),
]


async def assert_answered_locally(k) -> None:
    for msg_type, content in NOT_CODE:
        reply = await control_request(k.kc, msg_type, content, timeout=10)
        assert reply["msg_type"] == msg_type.replace("_request", "_reply")
        c = reply["content"]
        assert c.get("status") == "error" or c.get("success") is False, c
    assert k.record() is None, "a request that runs no code started a GPU kernel"
    assert psutil.Process(k.gateway_pid).children(recursive=True) == []


async def test_requests_that_run_no_code_never_start_a_gpu_kernel(start_kernel):
    k = await start_kernel()
    await assert_answered_locally(k)
    assert k.status_file()["state"] == "cpu_only"
    reply, _ = await k.run("x = 1")  # a GPU kernel, whose kernel_info tells JupyterLab subshells exist
    assert reply["content"]["status"] == "ok"
    reply, outputs = await k.run("%gpu release")
    assert "released" in text_of(outputs).lower()
    await assert_answered_locally(k)
    assert await wait_until(lambda: k.status_file()["state"] == "released", 10), k.status_file()
    reply, _ = await k.run("'code still starts one'")  # and running code still does
    assert reply["content"]["status"] == "ok" and k.record() is not None


async def test_connect_info_shows_the_gateways_connection(start_kernel):
    k = await start_kernel()
    reply, outputs = await k.run("%connect_info")
    text = text_of(outputs)
    assert reply["content"]["status"] == "ok", text
    start = text.index("{\n")
    shown = json.loads(text[start : text.index("\n}", start) + 2])
    with open(k.km.connection_file) as f:
        ours = json.load(f)
    assert shown == ours, (shown, ours)
    assert "ipc" not in text
    names = re.findall(r"--existing (\S+)\n", text)  # <file>, then ours (as ipykernel: the name alone
    cf = k.km.connection_file  # when the file is in the runtime directory)
    expected = os.path.basename(cf) if os.path.dirname(cf) == jupyter_runtime_dir() else cf
    assert names[:2] == ["<file>", expected], text


def test_connect_info_names_a_file_in_the_runtime_directory_by_its_name(tmp_path, monkeypatch):
    from mlp_kernel.gateway.launch import connect_info_code

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    code = connect_info_code({"key": "k"}, str(tmp_path / "kernel-1.json"))
    assert "'kernel-1.json')" in code and str(tmp_path) not in code
    code = connect_info_code({"key": "k"}, "/elsewhere/kernel-1.json")
    assert "'/elsewhere/kernel-1.json')" in code
