"""Admin saves as Git commits, so that a GitOps platform (Argo CD) deploys what the admin page changes.

Without this, a save writes the kernelspec's file on the server's disk, and Argo CD, which owns that file
through the repository it syncs, puts its own version back at the next sync. With ``MlpKernelExtension.
git_repo`` set, a save is a commit on the configured branch of that repository (the server's clone of it)
instead: author the admin, message their note, pushed to the remote when one is configured, or pushed to a
new branch ``mlp-kernel/<user>/<time>`` for a merge request in review mode. What the kernels use is the
*deployed* revision: the checkout itself (the kernelspec directory lies inside it, and a direct save
fast-forwards it), or a ConfigMap that Argo CD builds from the repository and mounts as the kernelspec
directory (docs/samples/gitops). docs/design.md, "Admin changes through Git", says why.

How Git is run: ``git`` as a subprocess with a fixed argv (no shell). No text an admin typed is ever an
argument: the file's content and the note reach Git on stdin (``hash-object --stdin``, ``commit-tree -F -``),
the author in ``GIT_AUTHOR_NAME``/``GIT_AUTHOR_EMAIL`` (never parsed as an option, unlike ``--author``), built
from the identity's name with control characters and ``<>`` removed. Paths come from allow-listed kernelspec
and file names (``files.py``), branch names from configuration checked with ``git check-ref-format`` at
start-up, review branches from a slug of the user name. The commit is built with plumbing in a temporary
index (``read-tree``, ``update-index``, ``write-tree``, ``commit-tree``), so the clone's own index and work
tree are never half-written, and published with a compare-and-swap: ``push`` (refused unless it fast-forwards)
or ``update-ref <new> <old>``. Whoever changed the file or the branch since the admin loaded it gets a
conflict that says so; nothing is ever force-pushed or overwritten.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .files import sha256

REVIEW_PREFIX = "mlp-kernel"
COMMIT_ID = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")  # SHA-1 or SHA-256 repositories
ZERO = "0" * 40
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f<>]")
_SLUG = re.compile(r"[^a-z0-9_-]+")  # no dots: ".." or a trailing ".lock" is not a ref
MAX_NOTE = 4000
_CREDENTIAL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


class GitError(Exception):
    """Git failed for a reason the admin cannot fix by reloading (HTTP 500, or 502 for the remote)."""

    def __init__(self, message: str, status: int = 500, detail: str = "") -> None:
        super().__init__(redact(message))
        self.status = status
        self.detail = redact(detail)  # all Git printed, for the server log


class GitConflict(GitError):
    """Someone changed the file or the branch since the admin loaded it (HTTP 409): nothing was written."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 409)


@dataclass(frozen=True)
class Saved:
    commit: str  # the new commit ("" when the content was already the branch's)
    branch: str  # where it went: the configured branch, or the review branch
    review: bool
    pushed: bool
    deployed: bool  # the checkout was fast-forwarded to it (checkout mode, direct saves)


@dataclass(frozen=True)
class Author:
    name: str
    email: str


def redact(text: str) -> str:
    """``scheme://user:token@host`` -> ``scheme://***@host``: a remote's URL may carry a credential, and Git
    names the URL in its errors, which reach the log and the admin page."""
    return _CREDENTIAL.sub(r"\1***@", text)


def author_of(name: str, username: str, email_domain: str) -> Author:
    """A Git author from the identity: its name with control characters and ``<>`` removed (they would end
    or forge the header), and ``username@email_domain`` unless the user name is an address already."""
    clean_user = _UNSAFE_NAME.sub("", username or "").strip() or "unknown"
    clean_name = " ".join(_UNSAFE_NAME.sub("", name or "").split())[:200] or clean_user
    email = clean_user if "@" in clean_user else f"{clean_user}@{email_domain}"
    return Author(clean_name, email.replace(" ", "")[:254])


def review_branch(username: str, when: datetime | None = None) -> str:
    """``mlp-kernel/<user>/<time>``: the user name as a ref-safe slug, UTC time to the second."""
    slug = _SLUG.sub("-", (username or "").lower()).strip("-")[:40].rstrip("-") or "unknown"
    stamp = (when or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{REVIEW_PREFIX}/{slug}/{stamp}"


def clean_note(note: str) -> str:
    """The commit message: the admin's note without NUL (Git cuts a message there), at most MAX_NOTE."""
    return note.replace("\x00", "").strip()[:MAX_NOTE]


class GitRepo:
    """The server's clone (``path``) of the repository that holds the kernelspecs, and how saves reach it."""

    def __init__(
        self,
        path: Path,
        branch: str,
        *,
        remote: str = "",
        review: bool = False,
        path_template: str = "kernels/{kernelspec}",
        committer: Author = Author("mlp-kernel", "mlp-kernel@localhost"),
        timeout: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self.branch = branch
        self.remote = remote
        self.review = review
        self.path_template = path_template
        self.committer = committer
        self.timeout = timeout
        self.top = Path(self._git("rev-parse", "--show-toplevel", what="finding the work tree").strip())
        for ref in (branch, *([remote] if remote else [])):
            self._git("check-ref-format", "--branch", ref, what=f"checking the name {ref!r}")
        if remote and remote not in self._git("remote", what="listing remotes").split():
            raise GitError(f"{self.path} has no remote {remote!r} (MlpKernelExtension.git_remote)")
        if ".." in Path(path_template).parts or Path(path_template).is_absolute():
            raise GitError(f"git_path {path_template!r} must be a relative path inside the repository")
        self.tip(fetch=False)  # the branch exists (a typo in git_branch is found at start-up, not at a save)

    # -- running git ----------------------------------------------------------------------------------------

    def _git(
        self, *args: str, what: str, stdin: bytes | str | None = None, env: dict[str, str] | None = None
    ) -> str:
        """``git -C <clone> <args>``: a fixed argv, no shell, no prompt; ``GitError`` naming ``what``."""
        data = stdin.encode() if isinstance(stdin, str) else stdin
        full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(env or {})}
        try:
            r = subprocess.run(
                ["git", "-C", str(self.path), *args],
                input=data,
                capture_output=True,
                timeout=self.timeout,
                env=full_env,
                check=False,
            )
        except FileNotFoundError:
            raise GitError(
                "git is not installed on the server (needed by MlpKernelExtension.git_repo)"
            ) from None
        except subprocess.TimeoutExpired:
            raise GitError(f"git timed out after {self.timeout:g} s while {what}", 504) from None
        if r.returncode != 0:
            err = r.stderr.decode(errors="replace").strip().splitlines()
            detail = (r.stdout + r.stderr).decode(errors="replace")
            raise GitError(
                f"git failed while {what}: {err[-1] if err else f'exit {r.returncode}'}", 500, detail
            )
        return r.stdout.decode(errors="replace")

    def _ok(self, *args: str) -> bool:
        try:
            self._git(*args, what="checking")
        except GitError:
            return False
        return True

    # -- reading ----------------------------------------------------------------------------------------

    def in_checkout(self, spec_dir: Path) -> Path | None:
        """The installed kernelspec's place in the checkout (the checkout setup), or None (a ConfigMap)."""
        try:
            return Path(os.path.realpath(spec_dir)).relative_to(os.path.realpath(self.top))
        except ValueError:
            return None

    def deployed(self, spec_dir: Path) -> str:
        """The revision the kernels use, when the server can know it: the checkout's ``HEAD`` when the
        installed kernelspec lies inside it; "" when a GitOps sync deploys it (a ConfigMap mount has no
        commit id)."""
        if self.in_checkout(spec_dir) is None:
            return ""
        return self._git("rev-parse", "--verify", "HEAD^{commit}", what="reading the checkout").strip()

    def file_path(self, spec_dir: Path, kernelspec: str, name: str) -> str:
        """Where a kernelspec file lives in the repository: the installed kernelspec's own place when it is
        inside the checkout, else ``git_path`` (the ConfigMap setup)."""
        rel = self.in_checkout(spec_dir) or Path(self.path_template.format(kernelspec=kernelspec))
        return (rel / name).as_posix()

    @property
    def tracking_ref(self) -> str:
        return f"refs/remotes/{self.remote}/{self.branch}" if self.remote else f"refs/heads/{self.branch}"

    def tip(self, fetch: bool = True) -> str:
        """The branch's newest commit (fetched from the remote first when there is one)."""
        if self.remote and fetch:
            self._git(
                "fetch", "--quiet", "--no-tags", self.remote,
                f"+refs/heads/{self.branch}:{self.tracking_ref}",
                what=f"fetching {self.branch} from {self.remote}",
            )  # fmt: skip
        try:
            return self._git(
                "rev-parse", "--verify", "--quiet", f"{self.tracking_ref}^{{commit}}", what=""
            ).strip()
        except GitError:
            raise GitError(
                f"branch {self.branch!r} does not exist in {self.remote or self.path} "
                "(MlpKernelExtension.git_branch); create it with the kernelspec files first"
            ) from None

    def read(self, rev: str, path: str) -> str | None:
        """The file at ``rev`` (None when it is not there)."""
        try:
            return self._git("cat-file", "blob", f"{rev}:{path}", what=f"reading {path}")
        except GitError:
            return None

    def history(self, path: str, limit: int = 50) -> list[dict[str, Any]]:
        """Commits of the branch that changed ``path``, newest first, shaped like ``history.Version``."""
        out = self._git(
            "log", f"--max-count={limit}", "--format=%H%x1f%aI%x1f%an%x1f%s", self.tip(), "--", path,
            what=f"listing the history of {path}",
        )  # fmt: skip
        versions = []
        for row in out.splitlines():
            commit, at, author, subject = row.split("\x1f", 3)
            text = self.read(commit, path) or ""
            versions.append(
                {"version": commit, "at": at, "user": author, "action": subject, "sha256": sha256(text),
                 "size": len(text.encode())}
            )  # fmt: skip
        return versions

    def read_version(self, path: str, commit: str) -> str:
        if not COMMIT_ID.match(commit or ""):
            raise KeyError(f"invalid commit id {commit!r}")
        if not self._ok("merge-base", "--is-ancestor", commit, self.tracking_ref):
            raise KeyError(f"commit {commit} is not on branch {self.branch}")
        text = self.read(commit, path)
        if text is None:
            raise KeyError(f"{path} does not exist at commit {commit}")
        return text

    # -- saving -----------------------------------------------------------------------------------------

    def save(self, path: str, text: str, *, author: Author, note: str, base_sha256: str | None) -> Saved:
        """Commit ``text`` as ``path`` on top of the branch and publish it (the branch, or a review branch).

        ``base_sha256`` is the digest of the file the admin loaded: a different one at the branch's tip means
        someone changed it meanwhile, and the save is refused rather than silently replacing their change.
        """
        tip = self.tip()
        current = self.read(tip, path)
        if base_sha256 is not None and base_sha256 != sha256(current or ""):
            raise GitConflict(
                f"{path} changed on branch {self.branch} since you loaded it "
                f"({self._last_change(tip, path)}): reload, re-apply your edit and save again."
            )
        blob = self._git("hash-object", "-w", "--stdin", stdin=text, what="storing the file").strip()
        with tempfile.TemporaryDirectory(prefix="mlp-kernel-index-") as tmp:
            index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self._git("read-tree", tip, env=index, what="reading the branch")
            self._git(
                "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=index, what="staging"
            )
            tree = self._git("write-tree", env=index, what="writing the tree").strip()
        if tree == self._git("rev-parse", f"{tip}^{{tree}}", what="reading the branch").strip():
            return Saved("", self.branch, self.review, False, False)
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": self.committer.name,
            "GIT_COMMITTER_EMAIL": self.committer.email,
        }
        commit = self._git(
            "commit-tree",
            tree,
            "-p",
            tip,
            "-F",
            "-",
            stdin=clean_note(note) + "\n",
            env=env,
            what="committing",
        ).strip()
        if self.review:
            return self._publish_review(commit, author)
        return self._publish(commit, tip)

    def _last_change(self, rev: str, path: str) -> str:
        out = self._git("log", "-1", "--format=%h by %an: %s", rev, "--", path, what="reading the history")
        return f"commit {out.strip()}" if out.strip() else "it was added"

    def _publish(self, commit: str, tip: str) -> Saved:
        if self.remote:
            self._push(commit, self.branch)
            self._git("update-ref", self.tracking_ref, commit, what="recording the push")
            return Saved(commit, self.branch, False, True, self._fast_forward_checkout(commit))
        if self._checked_out():
            # the branch is the checkout's: merge --ff-only moves branch, index and files together, and
            # refuses if the branch moved since `tip` (our commit would no longer descend from it)
            if not self._ok("merge-base", "--is-ancestor", "HEAD", commit):
                raise GitConflict(f"branch {self.branch} moved while saving: reload and save again.")
            self._git("merge", "--ff-only", "--quiet", commit, what="updating the checkout")
            return Saved(commit, self.branch, False, False, True)
        try:
            self._git("update-ref", f"refs/heads/{self.branch}", commit, tip, what="moving the branch")
        except GitError:
            raise GitConflict(f"branch {self.branch} moved while saving: reload and save again.") from None
        return Saved(commit, self.branch, False, False, False)

    def _publish_review(self, commit: str, author: Author) -> Saved:
        username = author.email.split("@", 1)[0]
        branch = review_branch(username)
        self._git("check-ref-format", "--branch", branch, what="naming the review branch")
        if self.remote:
            self._push(commit, branch)
        else:
            try:  # old value ZERO: create only, never move someone's branch
                self._git("update-ref", f"refs/heads/{branch}", commit, ZERO, what="creating the branch")
            except GitError:
                raise GitConflict(f"branch {branch} exists already: save again in a second.") from None
        return Saved(commit, branch, True, bool(self.remote), False)

    def _push(self, commit: str, branch: str) -> None:
        """Push ``commit`` to ``branch`` of the remote; only a fast-forward (or a new branch) is accepted."""
        try:
            self._git(
                "push", "--porcelain", "--quiet", self.remote, f"{commit}:refs/heads/{branch}",
                what=f"pushing to {self.remote} {branch}",
            )  # fmt: skip
        except GitError as e:
            if "[rejected]" in e.detail or "non-fast-forward" in e.detail or "fetch first" in e.detail:
                raise GitConflict(
                    f"someone pushed to {branch} on {self.remote} while you were saving: nothing was "
                    "pushed; reload, re-apply your edit and save again."
                ) from None
            raise GitError(f"{e} (check the server's credentials for {self.remote})", 502) from None

    def _checked_out(self) -> bool:
        if self._git("rev-parse", "--is-bare-repository", what="inspecting the clone").strip() == "true":
            return False
        try:
            head = self._git("symbolic-ref", "--quiet", "HEAD", what="").strip()
        except GitError:
            return False
        return head == f"refs/heads/{self.branch}"

    def _fast_forward_checkout(self, commit: str) -> bool:
        """Bring the checkout to the pushed commit (checkout mode); False when it cannot fast-forward (it has
        commits or edits of its own), which the save's answer says; the push stands."""
        if not self._checked_out():
            return False
        try:
            self._git("merge", "--ff-only", "--quiet", commit, what="updating the checkout")
        except GitError:
            return False
        return True
