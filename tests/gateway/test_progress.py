"""What a GPU start leaves in the user's cell (and so in the saved notebook): one line, not the plumbing.

While the kernel starts, one progress line is updated in place; once it runs, that line says where and how
long the start took; a start that fails leaves the error once (the cell's error), not a progress line that
repeats it. Outputs are folded the way a frontend folds them (``update_display_data`` replaces the output
with the same ``display_id``), so the test sees what the notebook keeps.
"""

from __future__ import annotations

from typing import Any


def kept(outputs: list[dict[str, Any]]) -> list[str]:
    """The texts a notebook keeps from these iopub messages, in order."""
    shown: list[tuple[str | None, str]] = []
    for m in outputs:
        c, t = m["content"], m["msg_type"]
        if t in ("display_data", "update_display_data"):
            did = c.get("transient", {}).get("display_id")
            text = str(c["data"].get("text/plain", ""))
            if t == "update_display_data":
                shown = [(d, text if d == did else s) for d, s in shown]
            else:
                shown.append((did, text))
        elif t == "stream":
            shown.append((None, c["text"]))
        elif t == "error":
            shown.append((None, f"{c['ename']}: {c['evalue']}"))
    return [s for _, s in shown if s]


async def test_a_started_kernel_leaves_one_line_saying_where_it_runs(start_kernel):
    k = await start_kernel()
    reply, outputs = await k.run("print('hello')")
    assert reply["content"]["status"] == "ok"
    texts = kept(outputs)
    progress = [t for t in texts if t.startswith("[GPU (auto)]")]
    assert len(progress) == 1 and "\n" not in progress[0], texts
    assert progress[0].startswith("[GPU (auto)] Running on local/local") and "ready in" in progress[0], texts
    updates = [m for m in outputs if m["msg_type"] == "update_display_data"]
    assert updates, "the line was updated in place while the kernel started"
    assert texts[-1] == "hello\n", texts


async def test_a_failed_start_shows_its_error_once(start_kernel, tmp_path):
    k = await start_kernel(local_python=str(tmp_path / "no-such-python"))
    reply, outputs = await k.run("1")
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "GpuStartError"
    texts = kept(outputs)
    assert len(texts) == 1 and texts[0].startswith("GpuStartError: Could not start a local kernel"), texts
    assert not any("Failed:" in t for t in texts), texts
