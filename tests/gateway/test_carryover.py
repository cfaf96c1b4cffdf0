"""Variables survive a GPU release: the end-to-end path through the gateway and a real remote kernel."""

from __future__ import annotations

import asyncio

from .conftest import text_of
from .test_lifecycle import wait_until


def result(outputs):
    return [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"]


async def test_variables_and_functions_survive_an_idle_release(start_kernel):
    k = await start_kernel(idle_timeout="2s")
    await k.run(
        "import math as m\ndata = {'a': [1, 2, 3]}\ndef double(x):\n    return 2 * x\nf = open('/dev/null')"
    )
    first = k.record()["pid"]
    assert await wait_until(lambda: k.record() is None, 30)
    reply, outputs = await k.run("double(len(data['a'])) + int(m.sqrt(16))")
    assert reply["content"]["status"] == "ok", text_of(outputs)
    assert result(outputs) == ["10"]
    assert k.record()["pid"] != first
    text = text_of(outputs)
    assert "Saved" in text and "Restored" in text, text
    assert "f (" in text, "an unpicklable variable must be reported by name"


async def test_user_release_reports_what_was_saved(start_kernel):
    k = await start_kernel()
    await k.run("x = list(range(1000))")
    reply, outputs = await k.run("%gpu release")
    assert reply["content"]["status"] == "ok"
    assert "Saved" in text_of(outputs) and k.record() is None
    _, outputs = await k.run("sum(x)")
    assert result(outputs) == ["499500"]


async def test_keep_off_and_forget_start_fresh(start_kernel):
    k = await start_kernel()
    await k.run("x = 1")
    await k.run("%gpu keep=off\n%gpu release")
    _, outputs = await k.run("'x' in globals()")
    assert result(outputs) == ["False"]
    await k.run("%gpu keep=on\ny = 2")
    await k.run("%gpu release")
    _, outputs = await k.run("%gpu forget")
    assert "dropped" in text_of(outputs)
    _, outputs = await k.run("'y' in globals()")
    assert result(outputs) == ["False"]


async def test_restart_means_a_fresh_kernel_even_with_a_snapshot(start_kernel):
    k = await start_kernel()
    await k.run("x = 1")
    await k.run("%gpu release")
    await k.km.restart_kernel()
    await k.kc.wait_for_ready(timeout=60)
    await asyncio.sleep(0.5)
    _, outputs = await k.run("'x' in globals()")
    assert result(outputs) == ["False"]
