"""Mount-path rewriting and $(VAR) expansion, the two tricks that let a container spec run on the host."""

from __future__ import annotations

from .controllers.container_setup import expand, rewrite

MOUNTS = [("/etc/kernel", "/tmp/pod/fs/etc/kernel"), ("/etc", "/tmp/pod/fs/etc")]


def test_rewrite_replaces_mount_prefixes_at_path_boundaries_once():
    assert rewrite("/etc/kernel/c.json", MOUNTS) == "/tmp/pod/fs/etc/kernel/c.json"
    assert rewrite("--file=/etc/kernel", MOUNTS) == "--file=/tmp/pod/fs/etc/kernel"
    assert rewrite("/etc/hosts", MOUNTS) == "/tmp/pod/fs/etc/hosts"
    assert rewrite("/etcetera /data/etc/x", MOUNTS) == "/etcetera /data/etc/x"


def test_expand_substitutes_known_variables_only():
    env = {"A": "1"}
    assert expand("$(A)-$(B)-$$(A)", env) == "1-$(B)-$(A)"
