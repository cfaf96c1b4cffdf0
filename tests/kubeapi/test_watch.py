"""Watches through ``watch.Watch().stream``: resume from a resourceVersion, bookmarks, 410 Gone, selectors."""

from __future__ import annotations

import asyncio
import threading

import pytest
from kubernetes import client, watch


@pytest.fixture
def core(kube_member):
    return client.CoreV1Api(kube_member.api_client())


def _cm(name: str, labels: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": {"v": "0"}}


def test_watch_resumes_from_resource_version(core):
    listed = core.list_namespaced_config_map("default")
    core.create_namespaced_config_map("default", _cm("a"))
    core.patch_namespaced_config_map("a", "default", {"data": {"v": "1"}})
    core.delete_namespaced_config_map("a", "default")
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map,
            "default",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=1,
        )
    ]
    assert events == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


def test_watch_without_resource_version_starts_with_current_state(core):
    core.create_namespaced_config_map("default", _cm("existing"))
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=1)
    ]
    assert events == [("ADDED", "existing")]


def test_bookmarks_carry_the_latest_resource_version(kube_member, core):
    kube_member.rest.bookmark_interval = 0.2
    created = core.create_namespaced_config_map("default", _cm("b"))
    stream = watch.Watch().stream(
        core.list_namespaced_config_map,
        "default",
        label_selector="none=here",
        resource_version=created.metadata.resource_version,
        allow_watch_bookmarks=True,
        timeout_seconds=2,
    )
    bookmarks = [e for e in stream if e["type"] == "BOOKMARK"]
    assert bookmarks, "no BOOKMARK event within 2 s although the interval is 0.2 s"
    rv = bookmarks[-1]["object"]["metadata"]["resourceVersion"]
    assert int(rv) >= int(created.metadata.resource_version)


def test_expired_resource_version_gets_410_gone(kube_member, core):
    created = core.create_namespaced_config_map("default", _cm("old"))
    core.patch_namespaced_config_map("old", "default", {"data": {"v": "2"}})
    kube_member.store.compact()
    w = watch.Watch()
    with pytest.raises(client.ApiException) as err:
        for _ in w.stream(
            core.list_namespaced_config_map,
            "default",
            timeout_seconds=1,
            resource_version=created.metadata.resource_version,
        ):
            pass
    assert err.value.status == 410


def test_label_selector_watch_sees_objects_enter_and_leave(core):
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", _cm("x"))
    core.patch_namespaced_config_map("x", "default", {"metadata": {"labels": {"team": "gpu"}}})
    core.patch_namespaced_config_map("x", "default", {"metadata": {"labels": {"team": "cpu"}}})
    events = [
        e["type"]
        for e in watch.Watch().stream(
            core.list_namespaced_config_map,
            "default",
            label_selector="team=gpu",
            resource_version=start,
            timeout_seconds=1,
        )
    ]
    assert events == ["ADDED", "DELETED"]


def test_live_events_arrive_while_streaming(core):
    start = core.list_namespaced_config_map("default").metadata.resource_version
    timer = threading.Timer(0.3, lambda: core.create_namespaced_config_map("default", _cm("late")))
    timer.start()
    w = watch.Watch()
    seen = []
    for event in w.stream(
        core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=10
    ):
        seen.append(event["object"].metadata.name)
        w.stop()
    timer.join()
    assert seen == ["late"]


async def test_server_is_usable_from_asyncio_code(kube_member, core):
    """The server runs in its own threads, so a coroutine can drive it through a worker thread."""
    await asyncio.to_thread(core.create_namespaced_config_map, "default", _cm("from-async"))
    got = await asyncio.to_thread(core.read_namespaced_config_map, "from-async", "default")
    assert got.metadata.name == "from-async"


async def test_event_loop_is_not_blocked_by_the_server(kube_member):
    """An asyncio HTTP client in the test's own event loop talks to the server directly."""
    import httpx

    async with httpx.AsyncClient(base_url=kube_member.url) as http:
        first, second = await asyncio.gather(http.get("/api/v1/namespaces"), http.get("/version"))
    assert first.status_code == 200 and first.json()["kind"] == "NamespaceList"
    assert second.json()["gitVersion"].startswith("v1.")
