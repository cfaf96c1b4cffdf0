"""A real GPU (auto) kernel fed out-of-range ``%gpu`` values: each cell gets a GpuMagicError, nothing else.

The parser's own tests (test_magic.py) prove only MagicError leaves it; this proves the gateway answers every
such cell and stays usable after them: before, ``deadline=+1e308`` left the cell without a reply and
``idle=1e12`` ended the pump's serving task, so every later cell hung.
"""

from __future__ import annotations

import pytest

from .conftest import text_of

BAD = [
    "deadline=+1e308",
    "deadline=+99999999d",
    "deadline=1900-01-01",
    "idle=1e12",
    "idle=nan",
    "keep=" + "9" * 300,
    "memory=" + "9" * 300,
    "gpus=" + "9" * 5000,
]


@pytest.mark.timeout(240)
async def test_out_of_range_values_are_answered_and_the_kernel_stays_usable(start_kernel):
    k = await start_kernel()
    for option in BAD:
        reply, outputs = await k.run(f"%gpu {option}", timeout=20)
        assert reply["content"]["status"] == "error", option
        assert reply["content"]["ename"] == "GpuMagicError", (option, reply["content"])
        assert k.record() is None, f"%gpu {option} must not start a GPU kernel"
    reply, outputs = await k.run("%gpu idle=30d\n6 * 7", timeout=90)
    assert reply["content"]["status"] == "ok", text_of(outputs)
    results = [m for m in outputs if m["msg_type"] == "execute_result"]
    assert results and results[0]["content"]["data"]["text/plain"] == "42"
    reply, outputs = await k.run("%gpu", timeout=20)
    assert reply["content"]["status"] == "ok" and "30 d" in text_of(outputs), text_of(outputs)
