"""Fixtures: a member behind a real nginx in network namespaces of its own, and the gateway's relay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from .deploy import Gateway, Member, is_root


@pytest.fixture
def member(tmp_path: Path) -> Iterator[Member]:
    if not is_root():
        pytest.fail("the transport tests build network namespaces: run them as root (CI does)")
    m = Member(tmp_path / "member")
    try:
        m.up()
        yield m
    finally:
        m.down()


@pytest.fixture
async def through_ingress(member: Member, tmp_path: Path) -> AsyncIterator[tuple[Member, Any, Any]]:
    """(member, tunnel, a ready Jupyter client of the gateway's relay): the whole path, as deployed."""
    tunnel, remote = member.tunnel()
    gateway = Gateway(remote, tmp_path)
    kc = gateway.client()
    try:
        await kc.wait_for_ready(timeout=60)
        yield member, tunnel, kc
    finally:
        kc.stop_channels()
        await gateway.close()
        tunnel.close()
