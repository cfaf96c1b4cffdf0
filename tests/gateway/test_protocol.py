"""From the client's side GPU (auto) behaves like ipykernel: every message kind a frontend uses."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import time
import uuid

import jsonschema

from mlp_kernel import protocol
from mlp_kernel.gateway.status_comm import TRANSITIONS

from .conftest import text_of
from .test_lifecycle import wait_until


def msgs(outputs, kind):
    return [m["content"] for m in outputs if m["msg_type"] == kind]


async def test_outputs_of_every_kind_are_relayed(start_kernel):
    k = await start_kernel()
    await k.run("pass")  # start the remote kernel so its progress output is not part of what we check
    code = (
        "import sys\n"
        "from IPython.display import display, clear_output\n"
        "print('out'); print('err', file=sys.stderr)\n"
        "h = display({'text/plain': 'first'}, raw=True, display_id='d1')\n"
        "h.update({'text/plain': 'second'}, raw=True)\n"
        "clear_output(wait=False)\n"
        "42"
    )
    reply, outputs = await k.run(code)
    assert reply["content"]["status"] == "ok"
    assert {"name": "stdout", "text": "out\n"} in msgs(outputs, "stream")
    assert any(c["name"] == "stderr" and "err" in c["text"] for c in msgs(outputs, "stream"))
    assert msgs(outputs, "display_data")[-1]["data"]["text/plain"] == "first"
    assert msgs(outputs, "update_display_data")[0]["data"]["text/plain"] == "second"
    assert msgs(outputs, "clear_output")
    assert msgs(outputs, "execute_result")[0]["data"]["text/plain"] == "42"
    assert msgs(outputs, "execute_input")[0]["code"] == code


async def test_errors_in_user_code_are_relayed_and_the_kernel_stays_usable(start_kernel):
    k = await start_kernel()
    reply, outputs = await k.run("1/0")
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "ZeroDivisionError"
    assert msgs(outputs, "error")[0]["ename"] == "ZeroDivisionError"
    reply, _ = await k.run("2")
    assert reply["content"]["status"] == "ok"


async def test_execution_count_continues_across_a_release(start_kernel):
    k = await start_kernel()
    await k.run("a = 1")
    reply, _ = await k.run("a")
    before = reply["content"]["execution_count"]
    await k.run("%gpu release")
    reply, _ = await k.run("b = 2")
    assert reply["content"]["execution_count"] > before


async def test_input_over_stdin(start_kernel):
    k = await start_kernel()

    def answer(msg):
        k.kc.input(f"hello {msg['content']['prompt']}")

    outputs: list = []
    reply = await k.kc.execute_interactive(
        "name = input('who? ')\nprint('got', name)",
        allow_stdin=True,
        stdin_hook=answer,
        output_hook=outputs.append,
        timeout=60,
    )
    assert reply["content"]["status"] == "ok"
    assert "got hello who? " in text_of(outputs)


async def test_complete_inspect_is_complete_and_history_without_and_with_remote(start_kernel):
    k = await start_kernel()
    r = await k.kc.complete("pri", 3, reply=True, timeout=10)
    assert r["content"]["status"] == "ok" and r["content"]["matches"] == []
    r = await k.kc.is_complete("for i in range(3):", reply=True, timeout=10)
    assert r["content"]["status"] == "incomplete"
    r = await k.kc.is_complete("x = 1", reply=True, timeout=10)
    assert r["content"]["status"] == "complete"
    assert k.record() is None, "completion and friends must not start a GPU kernel"
    await k.run("my_variable = 3")
    r = await k.kc.complete("my_var", 6, reply=True, timeout=30)
    assert "my_variable" in r["content"]["matches"]
    r = await k.kc.inspect("my_variable", 11, reply=True, timeout=30)
    assert r["content"]["found"] is True
    r = await k.kc.history(hist_access_type="tail", n=5, reply=True, timeout=10)
    assert [h[2] for h in r["content"]["history"]][-1] == "my_variable = 3"
    # relayed straight to the running kernel: kept as IPython keeps them (silent and unstored cells are not)
    await k.run("other = 4")
    await k.kc.execute("hidden = 5", silent=True, reply=True, timeout=30)
    await k.kc.execute("unstored = 6", store_history=False, reply=True, timeout=30)
    r = await k.kc.history(hist_access_type="tail", n=5, reply=True, timeout=10)
    assert [h[2] for h in r["content"]["history"]][-2:] == ["my_variable = 3", "other = 4"]


async def test_the_kernel_keeps_its_input_history_in_memory_and_it_still_works(start_kernel):
    """No history.sqlite write per cell (the gateway keeps the history), yet ``In``, ``_i`` and ``%history``
    answer as in any IPython kernel."""
    k = await start_kernel()
    await k.run("a = 1")
    await k.run("b = a + 1")
    reply, outputs = await k.run(
        "print(get_ipython().history_manager.hist_file, repr(In[1]), repr(_i))\n%history -n 1-2"
    )
    text = text_of(outputs)
    assert reply["content"]["status"] == "ok", text
    assert ":memory: 'a = 1' 'b = a + 1'" in text and "1: a = 1" in text and "2: b = a + 1" in text, text


async def test_local_kernel_args_replace_the_default_options(start_kernel, tmp_path):
    k = await start_kernel(local_kernel_args=[f"--HistoryManager.hist_file={tmp_path / 'own.sqlite'}"])
    reply, outputs = await k.run("print(get_ipython().history_manager.hist_file)")
    assert str(tmp_path / "own.sqlite") in text_of(outputs), text_of(outputs)


async def test_interrupt_while_running_interrupts_the_cell(start_kernel):
    k = await start_kernel()
    await k.run("import time")

    async def interrupt_soon() -> None:
        await asyncio.sleep(1.5)
        await k.km.interrupt_kernel()

    task = asyncio.ensure_future(interrupt_soon())
    reply, _ = await k.run("time.sleep(60)")
    await task
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
    reply, _ = await k.run("'alive'")
    assert reply["content"]["status"] == "ok"


async def test_interrupt_while_starting_cancels_the_start(start_kernel, tmp_path):
    slow = tmp_path / "slow-python"
    slow.write_text(f'#!/bin/sh\nsleep 30\nexec {sys.executable} "$@"\n')
    slow.chmod(slow.stat().st_mode | stat.S_IEXEC)
    k = await start_kernel(local_python=str(slow))

    async def interrupt_soon() -> None:
        await asyncio.sleep(2)
        await k.km.interrupt_kernel()

    task = asyncio.ensure_future(interrupt_soon())
    reply, outputs = await k.run("print('never')", timeout=25)
    await task
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
    assert "cancelled" in text_of(outputs)
    assert k.record() is None
    # the gateway writes its status file just after replying: give a loaded machine a moment
    assert await wait_until(lambda: k.status_file()["state"] == "cpu_only", 10), k.status_file()["state"]


async def test_status_comm_publishes_snapshots_and_takes_actions(start_kernel):
    k = await start_kernel()
    comm_id = uuid.uuid4().hex
    seen: list[dict] = []

    async def collect_until(pred, timeout=60.0):
        end = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < end:
            msg = await k.kc.get_iopub_msg(timeout=timeout)
            if msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] == comm_id:
                seen.append(msg["content"]["data"])
                if pred(msg["content"]["data"]):
                    return msg["content"]["data"]
        raise AssertionError(f"no matching status among {seen}")

    k.kc.shell_channel.send(
        k.kc.session.msg("comm_open", {"comm_id": comm_id, "target_name": "mlp_kernel.status", "data": {}})
    )
    first = await collect_until(lambda d: d.get("type") == "status")
    assert first["state"] == "cpu_only" and first["choices"]["gpu_models"] == ["local"]
    assert first["choices"]["member_labels"] == {"local": "this machine"}  # the shipped display_name
    k.kc.execute("z = 1")
    running = await collect_until(lambda d: d.get("state") == "running")
    assert running["member"] == "local" and running["decision"]["action"] == "run"
    k.kc.shell_channel.send(k.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"action": "release"}}))
    event = await collect_until(lambda d: d.get("type") == "event" and d["kind"] == "released")
    assert "released" in event["message"]
    k.kc.shell_channel.send(
        k.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"action": "request", "options": "zz9"}})
    )
    err = await collect_until(lambda d: d.get("type") == "error")
    assert "zz9" in err["message"]
    r = await k.kc.comm_info(target_name="mlp_kernel.status", reply=True, timeout=10)
    assert comm_id in r["content"]["comms"]
    validator = jsonschema.Draft202012Validator(protocol.json_schema())
    for data in seen:  # every message the live gateway sent is one the declared protocol allows
        assert not list(validator.iter_errors(data)), (data, [e.message for e in validator.iter_errors(data)])
    assert {d["type"] for d in seen} == {"status", "event", "error"}
    states = [d["state"] for d in seen if d["type"] == "status"]
    moves = {(a, b) for a, b in zip(states, states[1:], strict=False) if a != b}
    assert moves and all(
        b == "cpu_only" or protocol.KernelState(b) in TRANSITIONS[protocol.KernelState(a)] for a, b in moves
    ), moves
    declared = protocol.Status.__required_keys__ | protocol.Status.__optional_keys__
    assert set(seen[0]) == declared, "a snapshot has every declared key and no other"


async def test_ipywidgets_comms_work_through_the_gateway(start_kernel):
    k = await start_kernel()
    reply, outputs = await k.run("import ipywidgets as w\ns = w.IntSlider(value=3)\ns")
    assert reply["content"]["status"] == "ok"
    opens = msgs(outputs, "comm_open")
    assert any(o["target_name"] == "jupyter.widget" for o in opens)
    slider = next(o for o in opens if o["data"]["state"].get("_model_name") == "IntSliderModel")
    # the frontend moves the slider: a comm_msg from client to kernel
    k.kc.shell_channel.send(
        k.kc.session.msg(
            "comm_msg",
            {
                "comm_id": slider["comm_id"],
                "data": {"method": "update", "state": {"value": 7}, "buffer_paths": []},
            },
        )
    )
    await asyncio.sleep(1)
    reply, outputs = await k.run("s.value")
    assert msgs(outputs, "execute_result")[0]["data"]["text/plain"] == "7"
    r = await k.kc.comm_info(target_name="jupyter.widget", reply=True, timeout=10)
    assert slider["comm_id"] in r["content"]["comms"]


async def test_debugger_requests_on_control(start_kernel):
    k = await start_kernel()
    info = k.kc.session.msg(
        "debug_request", {"type": "request", "seq": 1, "command": "debugInfo", "arguments": {}}
    )
    k.kc.control_channel.send(info)
    reply = await k.kc.control_channel.get_msg(timeout=10)
    assert reply["content"]["success"] is True and reply["content"]["body"]["isStarted"] is False
    assert k.record() is None, "debugInfo must not start a GPU kernel"
    await k.run("v = 1")
    init = k.kc.session.msg(
        "debug_request",
        {
            "type": "request",
            "seq": 2,
            "command": "initialize",
            "arguments": {
                "clientID": "test",
                "adapterID": "python",
                "pathFormat": "path",
                "linesStartAt1": True,
                "columnsStartAt1": True,
                "supportsVariableType": True,
            },
        },
    )
    k.kc.control_channel.send(init)
    reply = await k.kc.control_channel.get_msg(timeout=30)
    assert reply["msg_type"] == "debug_reply" and reply["content"]["success"] is True


async def test_shell_message_with_a_bad_signature_is_dropped(start_kernel):
    k = await start_kernel()
    bad = k.kc.session.msg("kernel_info_request", {})
    k.kc.session.key = b"not-the-key"
    k.kc.shell_channel.send(bad)
    k.kc.session.key = k.km.session.key
    try:
        await k.kc.shell_channel.get_msg(timeout=2)
        raise AssertionError("a forged message was answered")
    except Exception as exc:  # queue.Empty / TimeoutError
        assert not isinstance(exc, AssertionError)
    assert os.path.exists(k.km.connection_file)


# A remote kernel that never publishes the ``idle`` after its ``shutdown_reply``: ipykernel does so only
# sometimes (its loop stops right after replying), so the gateway must not wait for it.
NO_IDLE_AFTER_SHUTDOWN = """
from ipykernel import kernelapp, kernelbase
publish = kernelbase.Kernel._publish_status
def _publish_status(self, status, channel, parent=None):
    msg = parent or self.get_parent(channel) or {}
    if status == "idle" and msg.get("header", {}).get("msg_type") == "shutdown_request":
        return
    publish(self, status, channel, parent)
kernelbase.Kernel._publish_status = _publish_status
kernelapp.launch_new_instance()
"""


async def test_a_shutdown_does_not_wait_for_the_remote_kernels_idle(start_kernel, tmp_path):
    wrapper = tmp_path / "no-idle-python"
    script = tmp_path / "no_idle_after_shutdown.py"
    script.write_text(NO_IDLE_AFTER_SHUTDOWN)
    # the local backend runs `<python> -m ipykernel_launcher -f ...`: the same kernel, from the script
    wrapper.write_text(f'#!/bin/sh\nshift 2\nexec {sys.executable} {script} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    k = await start_kernel(local_python=str(wrapper))
    reply, outputs = await k.run("print('remote', 6 * 7)")
    assert reply["content"]["status"] == "ok" and "remote 42" in text_of(outputs), text_of(outputs)
    started = time.monotonic()
    await k.km.shutdown_kernel(now=False)
    took = time.monotonic() - started
    # 0.2 s on the development machine; waiting for that idle took the gateway's 3 s cap every time
    assert took < 2.5, f"the shutdown took {took:.1f} s"
    assert not await k.km.is_alive()
