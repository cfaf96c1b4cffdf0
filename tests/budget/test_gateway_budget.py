"""A real GPU (auto) kernel on the local backend (demo policy: public "aws" member at $4.10/h) with budgets.

The team's spend is in the user's file ledger, as other notebooks of the team left it. Past the soft limit a
burst happens and ``%gpu`` shows the team's line; what the public kernel ran is recorded in the ledger under
its kernel id; past the hard limit the next cell's request is refused with the budget, the spend, the limit
and what to do. The audit log has the public placement and the refusal, with user and team.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from mlp_kernel import audit
from mlp_kernel.backends.ledger import FileLedger
from mlp_kernel.placement.budget import month_of, to_micro
from tests.gateway.conftest import ROOT, text_of

pytestmark = pytest.mark.timeout(180)

POLICY = (
    (ROOT / "kernelspecs" / "gpu-auto" / "demo-policy.yaml").read_text()
    + """
budgets:
  team_monthly: 1.00
  team_soft: 0.40
  record_every: 1s
"""
)


async def test_burst_warns_past_soft_records_spend_and_is_refused_past_hard(
    start_kernel: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLP_KERNEL_TEAM", "ml-vision")
    monkeypatch.setenv(audit.AUDIT_ENV, str(tmp_path / "audit.jsonl"))
    ledger = FileLedger(tmp_path / "data" / "mlp-kernel" / "ledger")  # JUPYTER_DATA_DIR of runtime_dir
    month = month_of(time.time())
    ledger.record_sync("ml-vision", month, "colleague", "their-kernel", to_micro(0.50))

    k = await start_kernel(policy=POLICY)
    reply, outputs = await k.run("%gpu")  # before any GPU kernel: where the team stands
    assert "budget: Team ml-vision: $0.50 of $1 this month (soft limit $0.40 passed)" in text_of(outputs)
    reply, outputs = await k.run("%gpu a100 burst=on budget=flex\nimport os; os.getpid()")
    assert reply["content"]["status"] == "ok", text_of(outputs)
    reply, outputs = await k.run("%gpu")
    status = text_of(outputs)
    assert "aws / gold (public)" in status, status
    assert "budget: Team ml-vision: $0.50 of $1 this month (soft limit $0.40 passed)" in status, status
    assert k.status_file()["budget"][0]["over_soft"] is True

    await asyncio.sleep(2.5)  # record_every 1s: the running kernel's spend reaches the ledger
    reply, outputs = await k.run("%gpu release")
    doc = await ledger.read("ml-vision", month)
    mine = {kid: v for kid, v in doc.kernels.items() if kid != "their-kernel"}
    assert len(mine) == 1, doc  # one remote kernel, recorded under its id however often it was written
    ran = next(iter(mine.values()))
    assert 2.5 / 3600 * 4.10 * 1e6 <= ran <= 60 / 3600 * 4.10 * 1e6, ran  # seconds at $4.10/h, in micro-$
    assert doc.total == to_micro(0.50) + ran

    ledger.record_sync("ml-vision", month, "colleague", "their-kernel", to_micro(1.20))  # past the hard limit
    reply, outputs = await k.run("1 + 1")
    text = text_of(outputs)
    assert reply["content"]["status"] == "error", text
    assert "Team ml-vision's public GPU budget is used up: $1.20 spent of $1 this month (UTC)" in text, text
    assert "Private pools still serve this notebook" in text and "ask your platform admin" in text, text

    records = audit.read(tmp_path / "audit.jsonl")
    placed = [r for r in records if r["event"] == audit.PUBLIC_PLACEMENT]
    refused = [r for r in records if r["event"] == audit.BUDGET_REFUSAL]
    assert len(placed) == 1 and len(refused) == 1, records
    assert placed[0]["team"] == "ml-vision" and placed[0]["member"] == "aws" and placed[0]["user"]
    assert placed[0]["price_per_hour"] == 4.1 and "Burst to aws/gold" in placed[0]["why"]
    assert refused[0]["action"] == "reject" and "$1.20 spent of $1" in refused[0]["why"]


async def test_a_refusal_for_the_data_class_is_audited_once_and_an_unreadable_ledger_is_said(
    start_kernel: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLP_KERNEL_TEAM", "nlp")
    monkeypatch.setenv(audit.AUDIT_ENV, str(tmp_path / "audit.jsonl"))
    (tmp_path / "data" / "mlp-kernel").mkdir(parents=True)
    (tmp_path / "data" / "mlp-kernel" / "ledger").write_text("")  # a ledger that cannot be read
    k = await start_kernel(policy=POLICY)
    reply, outputs = await k.run("%gpu")
    assert "Budget: unknown, the budget ledger cannot be read (NotADirectoryError" in text_of(outputs)
    for _ in range(2):  # the same refusal again in a second launch is a second decision, audited again
        reply, outputs = await k.run("%gpu a100 burst=on budget=flex data=sensitive\n1 + 1")
        assert reply["content"]["status"] == "error"
        assert "data class 'sensitive' must stay private" in text_of(outputs), text_of(outputs)
    records = audit.read(tmp_path / "audit.jsonl")
    assert [(r["event"], r["team"], r["data_class"], r["action"]) for r in records] == [
        (audit.DATA_CLASS_REFUSAL, "nlp", "sensitive", "reject")
    ] * 2, records
    assert all(r["kernel"] == k.kernel_id and r["user"] for r in records)
