"""Kubeconfig files pointing the ``kubernetes`` client (or kubectl) at test servers, one context each."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_kubeconfig(path: str | Path, servers: dict[str, str], current: str | None = None) -> Path:
    """Write a kubeconfig with one cluster, user and context per ``{context_name: url}`` entry."""
    path = Path(path)
    names = list(servers)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": n, "cluster": {"server": url}} for n, url in servers.items()],
        "users": [{"name": f"{n}-user", "user": {"token": f"test-token-{n}"}} for n in names],
        "contexts": [
            {"name": n, "context": {"cluster": n, "user": f"{n}-user", "namespace": "default"}} for n in names
        ],
        "current-context": current or (names[0] if names else ""),
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
