"""The walk and the globs of ``workspace_sync``, shared by the gateway and the in-kernel agent.

Why a file of its own, with the standard library only and no dataclasses: the gateway imports it
(``sync_select``) to choose what goes to a public member, and ``sync_code`` sends its source into the remote
kernel (which has no mlp_kernel) to choose what comes back, so both sides skip the same directories, secrets
and links by the same code.
"""

from __future__ import annotations  # annotations are never evaluated: any Python 3 kernel runs this

import fnmatch
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator

# never entered: tools' state, caches, virtualenvs (also any directory holding pyvenv.cfg) and credentials
SKIP_DIRS = (
    ".git", ".hg", ".svn", ".ipynb_checkpoints", "__pycache__", "node_modules", ".ssh", ".aws", ".gnupg",
    ".kube", ".mlp-kernel", ".venv", "venv", ".tox", ".mypy_cache", ".pytest_cache",
)  # fmt: skip
# never taken: files that usually hold a secret
SECRET_FILES = (
    ".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", "id_ecdsa*", ".netrc", ".pgpass",
    ".git-credentials", "*.kubeconfig", "kubeconfig",
)  # fmt: skip


def matches(rel: str, patterns: Iterable[str]) -> bool:
    """Whether ``rel`` (a POSIX path from the root) or one of its parts matches a glob of ``patterns``."""
    parts = rel.split("/")
    for raw in patterns:
        pattern = raw.strip("/")
        if "/" in pattern:  # a path from the root; a directory's pattern covers what is inside it
            if fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(rel, pattern + "/*"):
                return True
        elif any(fnmatch.fnmatchcase(part, pattern) for part in parts):
            return True
    return False


def walk(root: str) -> Iterator[tuple[str, int, str]]:
    """``(relative path, size, kind)`` for every entry under ``root``; kind is file, link or special.

    Skipped directories are not entered; symbolic links (to files or directories) are reported, never
    followed; ``lstat`` is used throughout so a link swapped in meanwhile is seen as a link.
    """
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        kept = []
        for name in sorted(dirnames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if os.path.islink(path):
                yield rel, 0, "link"
            elif name in SKIP_DIRS or os.path.exists(os.path.join(path, "pyvenv.cfg")):
                continue
            else:
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                yield rel, 0, "link"
            elif not stat.S_ISREG(st.st_mode):
                yield rel, 0, "special"
            else:
                yield rel, st.st_size, "file"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The file's sha256 (hex), read in 1 MiB chunks: how both sides tell a changed file from the one sent."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
