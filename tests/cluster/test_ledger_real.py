"""The budget ledger's ConfigMap on the real API server: concurrent gateways add up exactly.

Two ledgers (two API clients, as two users' gateways have) race 50 records each of one cent on new kernels;
the month's object ends with exactly $1.00 and each user's exact share, because every update is a replace
with the resourceVersion that was read and a 409 Conflict is redone. A conflict is also made on purpose (a
second gateway writes between a read and its replace) to show it is retried rather than lost or doubled, and
a kernel recorded again (a gateway restarted) adds nothing.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlp_kernel.backends.kubernetes.ledger import ConfigMapLedger, configmap_name
from mlp_kernel.backends.ledger import LedgerDoc

from .members import RealMembers

pytestmark = pytest.mark.timeout(240)
CENT = 10_000  # micro-dollars
POLICY = """
members:
  private: {{backend: kubernetes, namespace: jupyter, local_queue: kernels, kubeconfig_context: private}}
flavors:
  silver: {{member: private, tier: silver, gpu_models: [V100], price_per_gpu_hour: 0,
           node_labels: {{mlp.io/gpu-tier: silver}}}}
budgets: {{team_monthly: 1.5, ledger_member: private, ledger_namespace: {namespace}}}
"""


@pytest.fixture
def namespace(kube_members: RealMembers) -> str:
    name = f"budget-{uuid.uuid4().hex[:8]}"
    kube_members.private.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def test_two_writers_racing_end_with_the_exact_total(kube_members: RealMembers, namespace: str) -> None:
    a = ConfigMapLedger(kube_members.private.api_client(), namespace)
    b = ConfigMapLedger(kube_members.private.api_client(), namespace)

    async def writer(ledger: ConfigMapLedger, user: str) -> None:
        for i in range(50):
            assert await ledger.record("ml-vision", "2026-12", user, f"{user}-kernel-{i}", CENT) == CENT

    async def race() -> None:
        await asyncio.gather(writer(a, "ada@example.com"), writer(b, "bob"))

    asyncio.run(race())
    doc = asyncio.run(a.read("ml-vision", "2026-12"))
    assert doc.total == 100 * CENT
    assert doc.users == {"ada@example.com": 50 * CENT, "bob": 50 * CENT}
    assert len(doc.kernels) == 100
    cm = kube_members.private.get("v1", "ConfigMap", configmap_name("ml-vision", "2026-12"), namespace)
    assert cm["data"]["u.ada_40example.com"] == str(50 * CENT)  # micro-dollars as strings, a key per user
    assert cm["metadata"]["labels"]["mlp.io/month"] == "2026-12"
    print(f"conflicts retried: {a.conflicts + b.conflicts}")

    # the admin's view of the same object: mlp-kernel budget reads the policy's ledger_member
    policy = Path(kube_members.root) / f"{namespace}-policy.yaml"
    policy.write_text(POLICY.format(namespace=namespace))
    cmd = [sys.executable, "-m", "mlp_kernel.cli", "budget", "--policy", str(policy), "--team", "ml-vision"]
    cmd += ["--month", "2026-12", "--kubeconfig", kube_members.kubeconfig_path, "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["spent_usd"], report["left_usd"], report["users"]) == (1.0, 0.5, 2)


class Interleaved(ConfigMapLedger):
    """A ledger whose first read is followed, before its own replace, by another gateway's write."""

    def __init__(self, other: ConfigMapLedger, *args: Any) -> None:
        super().__init__(*args)
        self.other, self.reads = other, 0

    async def _get(self, name: str) -> dict[str, Any] | None:
        obj = await super()._get(name)
        self.reads += 1
        if self.reads == 1:
            await self.other.record("ml-vision", "2026-12", "bob", "bob-late", 3 * CENT)
        return obj


def test_a_conflict_is_retried_not_lost_and_a_kernel_is_counted_once(
    kube_members: RealMembers, namespace: str
) -> None:
    api = kube_members.private.api_client()
    other = ConfigMapLedger(kube_members.private.api_client(), namespace)
    asyncio.run(other.record("ml-vision", "2026-12", "bob", "bob-1", 5 * CENT))  # the object exists
    ledger = Interleaved(other, api, namespace)
    assert asyncio.run(ledger.record("ml-vision", "2026-12", "ada", "ada-1", 7 * CENT)) == 7 * CENT
    assert ledger.conflicts == 1 and ledger.reads == 2  # the stale replace got 409; read again, replaced
    # ada's gateway restarts and records the same kernel's cumulative cost: only the growth is added
    assert asyncio.run(ledger.record("ml-vision", "2026-12", "ada", "ada-1", 7 * CENT)) == 0
    assert asyncio.run(ledger.record("ml-vision", "2026-12", "ada", "ada-1", 9 * CENT)) == 2 * CENT
    doc: LedgerDoc = asyncio.run(other.read("ml-vision", "2026-12"))
    assert doc.users == {"bob": 8 * CENT, "ada": 9 * CENT}
    assert asyncio.run(other.read("ml-vision", "2027-01")).total == 0  # a new month starts at zero
