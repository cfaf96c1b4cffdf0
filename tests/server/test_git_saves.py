"""Admin saves through Git (issue 15): a real jupyter_server, a real bare "remote" repository, a clone.

The remote is a bare repository in a temp directory seeded with the shipped gpu-auto kernelspec under
``kernels/gpu-auto``; the server's clone of it is the deployed checkout, and the kernelspec that
jupyter_client finds is a symlink into that checkout (the checkout setup of docs/admin-guide.md). Every check
reads the remote with ``git`` itself: what the server claims in its answer is never the evidence.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from mlp_kernel.server.gitrepo import GitConflict, GitRepo, author_of, review_branch

from .conftest import ADMIN, REPO_SPEC, USER

F = "kernelspecs/gpu-auto/files"
POLICY = "kernels/gpu-auto/policy.yaml"
HOSTILE_ADMIN = "Eve <root@evil> --author=x"
SEED = ("-c", "user.name=Platform Team", "-c", "user.email=platform@example.com")


def git(cwd: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *SEED, *args], input=stdin, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository (the Git server) whose main branch holds kernels/gpu-auto."""
    seed, bare = tmp_path / "seed", tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(seed)], check=True)
    for name in ("kernel.json", "policy.yaml", "pod-template.yaml.j2"):
        target = seed / "kernels" / "gpu-auto" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((REPO_SPEC / name).read_text())
    git(seed, "add", ".")
    git(seed, "commit", "-q", "-m", "GPU (auto) as shipped")
    git(seed, "push", "-q", str(bare), "main")
    return bare


@pytest.fixture
def clone(tmp_path: Path, remote: Path) -> Path:
    path = tmp_path / "server-clone"
    subprocess.run(["git", "clone", "-q", str(remote), str(path)], check=True)
    return path


@pytest.fixture
def git_mode() -> str:
    return "direct"


@pytest.fixture
def spec_dir(jp_data_dir: Path, clone: Path, tmp_path: Path, git_mode: str) -> Path:
    """The installed kernelspec is the checkout's directory (the kernels read the deployed revision), or in
    ``configmap`` mode a read-only directory laid out as the kubelet mounts a ConfigMap (``..data`` -> a
    timestamped directory, each key a symlink through it) holding what Argo CD deployed."""
    link = jp_data_dir / "kernels" / "gpu-auto"
    link.parent.mkdir(parents=True, exist_ok=True)
    target = clone / "kernels" / "gpu-auto"
    if git_mode == "configmap":
        target = tmp_path / "configmap-mount"
        data = target / "..2026_12_05_08_00_00.000000001"
        data.mkdir(parents=True)
        (target / "..data").symlink_to(data.name)
        for f in (clone / "kernels" / "gpu-auto").iterdir():
            (data / f.name).write_text(f.read_text())
            (target / f.name).symlink_to(f"..data/{f.name}")
        for p in (data, target):
            p.chmod(0o555)
    link.symlink_to(target, target_is_directory=True)
    return link


@pytest.fixture
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("MLP_KERNEL_AUDIT_LOG", str(path))
    return path


@pytest.fixture
def jp_server_config(spec_dir: Path, clone: Path, history_dir: Path, git_mode: str, audit_log: Path) -> Any:
    return {
        "ServerApp": {
            "jpserver_extensions": {"mlp_kernel": True},
            "identity_provider_class": "tests.server.header_identity.HeaderIdentityProvider",
        },
        "MlpKernelExtension": {
            "admin_users": [ADMIN, HOSTILE_ADMIN],
            "history_dir": str(history_dir),
            "metrics_interval": 0,
            "git_repo": str(clone),
            "git_branch": "no-such-branch" if git_mode == "broken" else "main",
            "git_remote": "origin",
            "git_review": git_mode == "review",
            "git_email_domain": "example.com",
        },
    }


def edited(text: str) -> str:
    after = text.replace("idle_timeout: 15m", "idle_timeout: 20m")
    assert after != text
    return after


def test_a_save_is_a_commit_by_the_admin_with_their_note_pushed_and_deployed(
    api: Any, remote: Path, spec_dir: Path, audit_log: Path
) -> None:
    status, loaded = api("GET", f"{F}/policy.yaml")
    assert status == 200 and loaded["git"]["path"] == POLICY
    assert loaded["git"]["commit"] == loaded["git"]["deployed"] == git(remote, "rev-parse", "main").strip()
    text = edited(loaded["content"])
    note = "Idle GPUs go back after 20 minutes: users asked for longer breaks"
    status, body = api(
        "PUT", f"{F}/policy.yaml", body={"content": text, "note": note, "base_sha256": loaded["sha256"]}
    )
    assert status == 200, body
    head = git(remote, "rev-parse", "main").strip()
    assert body["git"]["commit"] == head
    assert (
        git(remote, "log", "-1", "--format=%an|%ae|%cn", "main").strip()
        == f"{ADMIN}|{ADMIN}@example.com|mlp-kernel"
    )
    assert git(remote, "log", "-1", "--format=%B", "main").strip() == note
    assert git(remote, "show", f"main:{POLICY}") == text
    assert git(remote, "diff", "--name-only", "main~1", "main").split() == [POLICY]
    assert (spec_dir / "policy.yaml").read_text() == text  # the checkout the kernels read moved with it
    _, reloaded = api("GET", f"{F}/policy.yaml")
    assert reloaded["git"]["commit"] == reloaded["git"]["deployed"] == head  # what the page shows as deployed
    (record,) = [json.loads(line) for line in audit_log.read_text().splitlines()]
    assert (record["event"], record["user"], record["why"]) == ("admin_change", ADMIN, note)
    assert (record["commit"], record["file"], record["review"]) == (head, "policy.yaml", False)


@pytest.mark.parametrize("git_mode", ["review"])
def test_review_mode_pushes_a_new_branch_and_leaves_main_and_the_checkout(
    api: Any, remote: Path, spec_dir: Path
) -> None:
    before = git(remote, "rev-parse", "main").strip()
    deployed = (spec_dir / "policy.yaml").read_text()
    _, loaded = api("GET", f"{F}/policy.yaml")
    status, body = api(
        "PUT", f"{F}/policy.yaml", body={"content": edited(loaded["content"]), "note": "Longer idle"}
    )
    assert status == 200, body
    branch = body["git"]["branch"]
    assert branch.startswith(f"mlp-kernel/{ADMIN}/") and body["git"]["review"] is True
    assert f"Sent for review as {branch}" in body["message"]
    assert git(remote, "rev-parse", f"refs/heads/{branch}").strip() == body["git"]["commit"]
    assert git(remote, "rev-parse", f"{branch}~1").strip() == before
    assert git(remote, "show", f"{branch}:{POLICY}") == edited(loaded["content"])
    assert git(remote, "rev-parse", "main").strip() == before
    assert (spec_dir / "policy.yaml").read_text() == deployed


def test_a_change_pushed_meanwhile_is_a_conflict_not_an_overwrite(
    api: Any, remote: Path, tmp_path: Path
) -> None:
    _, loaded = api("GET", f"{F}/policy.yaml")
    other = tmp_path / "colleague"
    subprocess.run(["git", "clone", "-q", str(remote), str(other)], check=True)
    theirs = loaded["content"].replace("idle_timeout: 15m", "idle_timeout: 45m")
    (other / POLICY).write_text(theirs)
    git(other, "commit", "-q", "-am", "Colleague: 45 minutes")
    git(other, "push", "-q", "origin", "main")
    status, body = api(
        "PUT",
        f"{F}/policy.yaml",
        body={"content": edited(loaded["content"]), "note": "mine", "base_sha256": loaded["sha256"]},
    )
    assert status == 409, body
    assert "changed on branch main since you loaded it" in body["message"]
    assert "Colleague: 45 minutes" in body["message"] and "reload" in body["message"]
    assert git(remote, "show", f"main:{POLICY}") == theirs


def test_a_change_to_another_file_meanwhile_is_kept(api: Any, remote: Path, tmp_path: Path) -> None:
    _, loaded = api("GET", f"{F}/policy.yaml")
    other = tmp_path / "colleague"
    subprocess.run(["git", "clone", "-q", str(remote), str(other)], check=True)
    template = other / "kernels/gpu-auto/pod-template.yaml.j2"
    template.write_text(template.read_text() + "# reviewed\n")
    git(other, "commit", "-q", "-am", "Colleague: template note")
    git(other, "push", "-q", "origin", "main")
    body = {"content": edited(loaded["content"]), "note": "mine", "base_sha256": loaded["sha256"]}
    status, answer = api("PUT", f"{F}/policy.yaml", body=body)
    assert status == 200, answer
    assert git(remote, "log", "--format=%s", "main").splitlines()[:2] == ["mine", "Colleague: template note"]
    assert git(remote, "show", "main:kernels/gpu-auto/pod-template.yaml.j2").endswith("# reviewed\n")


def test_a_push_that_would_not_fast_forward_is_refused_by_the_remote(clone: Path, remote: Path) -> None:
    """The race the conflict check cannot see (a push between our fetch and our push): the remote refuses."""
    repo = GitRepo(clone, "main", remote="origin")
    stale = repo.tip()
    other = clone.parent / "racer"
    subprocess.run(["git", "clone", "-q", str(remote), str(other)], check=True)
    git(other, "commit", "-q", "--allow-empty", "-m", "racer")
    git(other, "push", "-q", "origin", "main")
    racer = git(remote, "rev-parse", "main").strip()
    ours = git(clone, "commit-tree", f"{stale}^{{tree}}", "-p", stale, "-m", "ours").strip()
    with pytest.raises(GitConflict, match="someone pushed to main"):
        repo._push(ours, "main")
    assert git(remote, "rev-parse", "main").strip() == racer


def test_an_invalid_policy_is_not_committed(api: Any, remote: Path) -> None:
    before = git(remote, "rev-parse", "main").strip()
    status, body = api("PUT", f"{F}/policy.yaml", body={"content": "version: [\n", "note": "broken"})
    assert status == 400 and body["issues"][0]["line"]
    assert git(remote, "rev-parse", "main").strip() == before


def test_a_non_admin_is_refused_and_nothing_is_committed(api: Any, remote: Path, clone: Path) -> None:
    before = git(remote, "rev-parse", "main").strip()
    text = (clone / POLICY).read_text() + "# mine\n"
    status, body = api("PUT", f"{F}/policy.yaml", user=USER, body={"content": text, "note": "x"})
    assert status == 403 and "admin" in body["message"]
    status, _ = api("POST", f"{F}/policy.yaml/rollback", user=USER, body={"version": before, "note": "x"})
    assert status == 403
    assert git(remote, "rev-parse", "main").strip() == before
    assert git(remote, "branch", "--list", "mlp-kernel/*") == ""


def test_a_note_is_required(api: Any, remote: Path, clone: Path) -> None:
    before = git(remote, "rev-parse", "main").strip()
    status, body = api("PUT", f"{F}/policy.yaml", body={"content": edited((clone / POLICY).read_text())})
    assert status == 400 and "commit message" in body["message"]
    assert git(remote, "rev-parse", "main").strip() == before


def test_hostile_names_and_notes_are_data_not_options(api: Any, remote: Path, clone: Path) -> None:
    note = "--author=Mallory <m@x>\n\n$(touch /tmp/pwned) `id`; -c core.hooksPath=/tmp"
    text = edited((clone / POLICY).read_text())
    status, body = api("PUT", f"{F}/policy.yaml", user=HOSTILE_ADMIN, body={"content": text, "note": note})
    assert status == 200, body
    author = git(remote, "log", "-1", "--format=%an|%ae", "main").strip()
    assert author == "Eve root@evil --author=x|Everoot@evil--author=x"  # no <>: no forged header
    assert git(remote, "log", "-1", "--format=%B", "main").strip() == note
    assert not Path("/tmp/pwned").exists()


def test_history_lists_commits_and_rollback_is_a_new_commit(api: Any, remote: Path) -> None:
    _, loaded = api("GET", f"{F}/policy.yaml")
    original = loaded["content"]
    api("PUT", f"{F}/policy.yaml", body={"content": edited(original), "note": "twenty"})
    status, hist = api("GET", f"{F}/policy.yaml/history")
    assert status == 200
    versions = hist["versions"]
    assert [v["action"] for v in versions] == ["twenty", "GPU (auto) as shipped"]
    assert versions[0]["user"] == ADMIN and versions[1]["user"] == "Platform Team"
    status, old = api("GET", f"{F}/policy.yaml/history/{versions[1]['version']}")
    assert status == 200 and old["content"] == original
    assert api("GET", f"{F}/policy.yaml/history/{'../' * 3}")[0] == 404
    status, body = api(
        "POST", f"{F}/policy.yaml/rollback", body={"version": versions[1]["version"], "note": "back to 15m"}
    )
    assert status == 200, body
    assert git(remote, "log", "-1", "--format=%s", "main").strip() == "back to 15m"
    assert git(remote, "show", f"main:{POLICY}") == original


def test_me_says_saves_go_through_git(api: Any) -> None:
    status, me = api("GET", "me")
    assert status == 200
    assert me["saves"] == {"git": True, "review": False, "branch": "main", "remote": "origin", "problem": ""}


def test_author_and_review_branch_names_are_cleaned() -> None:
    assert author_of("A\nB <x@y>", "a@b.c", "ex.com").email == "a@b.c"
    assert author_of("", "bob", "ex.com") == author_of("bob", "bob", "ex.com")
    when = datetime(2026, 12, 5, 8, 30, 1, tzinfo=timezone.utc)
    for name in ("Ada Lovelace/../x.lock", "ada@example.com", "-", "--force"):
        branch = review_branch(name, when)
        subprocess.run(["git", "check-ref-format", "--branch", branch], check=True, capture_output=True)
    assert review_branch("Ada Lovelace/../x.lock", when) == "mlp-kernel/ada-lovelace-x-lock/20261205T083001Z"
    assert review_branch("--force", when) == "mlp-kernel/force/20261205T083001Z"


@pytest.mark.parametrize("git_mode", ["broken"])
def test_a_broken_git_setup_refuses_saves_and_never_writes_the_disk(api: Any, spec_dir: Path) -> None:
    before = (spec_dir / "policy.yaml").read_text()
    status, me = api("GET", "me")
    assert "no-such-branch" in me["saves"]["problem"]
    status, body = api("PUT", f"{F}/policy.yaml", body={"content": edited(before), "note": "x"})
    assert status == 503 and "no-such-branch" in body["message"]
    assert (spec_dir / "policy.yaml").read_text() == before


def test_a_local_repository_without_a_remote(clone: Path) -> None:
    """``git_remote = ""``: the commit lands on the checked-out branch (files included); review makes a local
    branch; a branch that moved under the save is a conflict."""
    subprocess.run(["git", "-C", str(clone), "remote", "remove", "origin"], check=True)
    me = author_of("Alice Adams", ADMIN, "example.com")
    repo = GitRepo(clone, "main")
    text = edited((clone / POLICY).read_text())
    saved = repo.save(POLICY, text, author=me, note="local", base_sha256=None)
    assert (saved.pushed, saved.deployed) == (False, True)
    assert git(clone, "rev-parse", "HEAD").strip() == saved.commit
    assert (clone / POLICY).read_text() == text and git(clone, "status", "--porcelain") == ""
    assert repo.save(POLICY, text, author=me, note="again", base_sha256=None).commit == ""  # no empty commit
    review = GitRepo(clone, "main", review=True).save(
        POLICY, text + "# more\n", author=me, note="please review", base_sha256=None
    )
    assert review.branch.startswith("mlp-kernel/alice/")
    assert git(clone, "log", "-1", "--format=%an|%s", review.branch).strip() == "Alice Adams|please review"
    assert git(clone, "rev-parse", "main").strip() == saved.commit
    git(clone, "switch", "-q", "--detach")  # branch no longer checked out: moved by compare-and-swap
    git(clone, "update-ref", "refs/heads/main", review.commit)
    stale = GitRepo(clone, "main")
    stale.tip = lambda fetch=True: saved.commit  # type: ignore[method-assign]  # loaded before the move
    with pytest.raises(GitConflict, match="moved while saving"):
        stale.save(POLICY, text + "# other\n", author=me, note="late", base_sha256=None)
    assert git(clone, "rev-parse", "main").strip() == review.commit


@pytest.mark.parametrize("git_mode", ["configmap"])
def test_with_a_configmap_mounted_kernelspec_saves_commit_at_git_path_and_leave_the_mount(
    api: Any, remote: Path, spec_dir: Path
) -> None:
    """The Argo CD setup: the kernelspec is a ConfigMap mount outside the clone; the file goes to git_path."""
    deployed = (spec_dir / "policy.yaml").read_text()
    _, loaded = api("GET", f"{F}/policy.yaml")
    assert loaded["git"]["path"] == POLICY and loaded["content"] == deployed
    assert loaded["git"]["deployed"] == ""  # the sync deploys it: no commit id the server could know
    text = edited(deployed)
    status, body = api("PUT", f"{F}/policy.yaml", body={"content": text, "note": "via Argo CD"})
    assert status == 200, body
    assert "deployed when the GitOps sync applies it" in body["message"]
    assert git(remote, "show", f"main:{POLICY}") == text
    assert (spec_dir / "policy.yaml").read_text() == deployed  # Argo CD, not the server, updates the mount
