"""An admin change is audited with the admin's team, and counted by that team on ``/metrics`` (issue 15).

A real jupyter_server with the mlp-kernel extension: admins save the policy through the REST API as
different identities, and the evidence is the audit file the server appended to and the Prometheus text it
serves. The team comes from where the kernels' does: the server owner's ``MLP_KERNEL_TEAM`` (a hub's
single-user server, ``JUPYTERHUB_USER``), or, for another identity, its one ``team-`` group.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mlp_kernel import audit

POLICY = "kernelspecs/gpu-auto/files/policy.yaml"
OWNER = "alice"  # the conftest's admin user, and here the hub user whose server this is


@pytest.fixture
def audit_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv(audit.AUDIT_ENV, str(path))
    monkeypatch.setenv("JUPYTERHUB_USER", OWNER)
    monkeypatch.setenv("MLP_KERNEL_TEAM", "vision")
    monkeypatch.delenv("MLP_KERNEL_USER_GROUPS", raising=False)
    return path


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any], audit_file: Path) -> dict[str, Any]:
    jp_server_config["MlpKernelExtension"]["admin_groups"] = ["gpu-admins"]
    return jp_server_config  # the audit file is configured before the server starts, as in production


def counter(text: str, event: str, team: str) -> float:
    m = re.search(rf'^mlp_kernel_audit_events_total{{event="{event}",team="{team}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def save(api: Any, user: str, groups: str, minutes: int) -> None:
    status, loaded = api("GET", POLICY, user=user, groups=groups)
    assert status == 200, loaded
    text = re.sub(r"idle_timeout: \d+m", f"idle_timeout: {minutes}m", loaded["content"], count=1)
    assert text != loaded["content"]
    body = {"content": text, "note": f"{user}: idle {minutes}m", "base_sha256": loaded["sha256"]}
    status, answer = api("PUT", POLICY, user=user, body=body, groups=groups)
    assert status == 200, answer


def counters(api: Any) -> dict[str, float]:
    """The admin-change counters by team; they are process-wide (one registry), so tests compare deltas."""
    status, text = api("GET", "/metrics")
    assert status == 200
    return {team: counter(text, "admin_change", team) for team in ("vision", "nlp", "none")}


def test_admin_changes_carry_the_admins_team_and_are_counted_by_it(api: Any, audit_file: Path) -> None:
    before = counters(api)
    save(api, OWNER, "", 20)  # the owner: MLP_KERNEL_TEAM, as the owner's kernels
    save(api, "carol", "gpu-admins,team-nlp", 21)  # a hub identity that is not the owner: its team group
    save(api, "carol", "gpu-admins,team-nlp", 22)
    save(api, "dave", "gpu-admins,team-a,team-b", 23)  # two teams name none
    save(api, "erin", "gpu-admins", 24)  # no team group, and not the owner: the owner's team is not erin's

    records = [r for r in audit.read(audit_file) if r["event"] == audit.ADMIN_CHANGE]
    assert [(r["user"], r["team"], r["why"]) for r in records] == [
        (OWNER, "vision", f"{OWNER}: idle 20m"),
        ("carol", "nlp", "carol: idle 21m"),
        ("carol", "nlp", "carol: idle 22m"),
        ("dave", "", "dave: idle 23m"),
        ("erin", "", "erin: idle 24m"),
    ]
    after = counters(api)
    assert {team: after[team] - before[team] for team in after} == {"vision": 1, "nlp": 2, "none": 2}

    status, me = api("GET", "me", user="carol", groups="gpu-admins,team-nlp")
    assert status == 200 and (me["team"], me["is_admin"]) == ("nlp", True)


def test_a_rollback_is_counted_for_the_admins_team_too(api: Any, audit_file: Path) -> None:
    before = counters(api)
    save(api, OWNER, "", 30)
    status, listed = api("GET", POLICY + "/history")
    assert status == 200 and listed["versions"], listed
    oldest = listed["versions"][-1]["version"]
    status, body = api(
        "POST", POLICY + "/rollback", user="carol", groups="gpu-admins,team-nlp", body={"version": oldest}
    )
    assert status == 200, body
    records = [r for r in audit.read(audit_file) if r["event"] == audit.ADMIN_CHANGE]
    assert [(r["user"], r["team"], r["action"]) for r in records] == [
        (OWNER, "vision", "save"),
        ("carol", "nlp", "rollback"),
    ]
    after = counters(api)
    assert {team: after[team] - before[team] for team in after} == {"vision": 1, "nlp": 1, "none": 0}
