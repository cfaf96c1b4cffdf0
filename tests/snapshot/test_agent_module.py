"""The in-kernel agent is a module like any other for tests and type checkers (``mypy mlp_kernel`` checks
it), and the same files still run where mlp_kernel is not installed: exec'd by ``codegen`` in one dictionary.
"""

from __future__ import annotations

import json
import subprocess
import sys

from mlp_kernel.snapshot import agent, agent_s3, codegen

SIGNED = {"url": "http://bucket.invalid/x", "bytes": 1}


def plan(owner: str) -> dict:
    manifest = {"format": agent.FORMAT, "owner": owner, "data": "data-1", "entries": [], "skipped": {}}
    return {"manifest": manifest, "files": {"0000.pkl": SIGNED}}


def test_agent_s3_imported_on_its_own_runs_with_agent_py_names():
    """Imported as a module, the bucket half reaches agent.py's checks: another user's snapshot is refused,
    an own empty one restores nothing and says so."""
    refused = json.loads(agent_s3.restore_s3(json.dumps({"user": "alice", **plan("mallory")})))
    assert refused["kind"] == "restore" and not refused["ok"]
    assert "belongs to another user" in refused["error"]
    done = json.loads(agent_s3.restore_s3(json.dumps({"user": "alice", **plan("alice")})))
    assert done["ok"] and done["saved"] == [] and done["error"] is None


def test_the_shipped_program_runs_without_mlp_kernel(tmp_path):
    """The source codegen sends into a kernel runs in a Python without site-packages (no mlp_kernel, no
    typing_extensions): the agent's annotations are never evaluated there."""
    code = codegen.restore_s3_code(plan("mallory"), user="alice")
    probe = "import sys\ntry:\n    import mlp_kernel\nexcept ImportError:\n    pass\nelse:\n    sys.exit(3)\n"
    program = probe + code + f"\nprint({codegen.REPORT_NAME})\n"
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", program], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert not report["ok"] and "belongs to another user" in report["error"]
