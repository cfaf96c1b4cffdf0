"""Faults on demand: failing the next N matching requests, slow responses, dropped watches."""

from __future__ import annotations

import time
import uuid

import pytest
import urllib3
from kubernetes import client, watch


@pytest.fixture
def core(kube_member):
    return client.CoreV1Api(kube_member.api_client())


def test_fail_next_n_matching_requests(kube_member, core):
    kube_member.faults.fail_next(2, path=r"/secrets$", method="POST", code=500)
    body = {"metadata": {"name": "s"}}
    for _ in range(2):
        with pytest.raises(client.ApiException) as err:
            core.create_namespaced_secret("default", body)
        assert err.value.status == 500
    core.list_namespaced_secret("default")  # other requests are unaffected
    assert core.create_namespaced_secret("default", body).metadata.name == "s"


def test_slow_responses(kube_member, core):
    kube_member.faults.slow(0.5, path=r"/configmaps", count=1)
    started = time.monotonic()
    core.list_namespaced_config_map("default")
    assert time.monotonic() - started >= 0.5
    started = time.monotonic()
    core.list_namespaced_config_map("default")
    assert time.monotonic() - started < 5  # only the first one was delayed (generous bound)


def _name(what: str) -> str:
    """A name no earlier test used (the real plane's default namespace outlives a test)."""
    return f"{what}-{uuid.uuid4().hex[:8]}"


def test_aborted_watch_surfaces_as_protocol_error(kube_member, core):
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": _name("first")}})
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError)):
        stream = watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=20
        )
        for (
            _
        ) in stream:  # an event came through the stream: it is open, cut it now (not after a guessed delay)
            kube_member.faults.drop_watches(r"/configmaps", clean=False)
    assert ("drop", "GET", "/api/v1/namespaces/default/configmaps") in kube_member.faults.fired


def test_cleanly_closed_watch_is_resumed_by_the_client(kube_member, core):
    start = core.list_namespaced_config_map("default").metadata.resource_version
    first, second = _name("first"), _name("x")
    core.create_namespaced_config_map("default", {"metadata": {"name": first}})
    w = watch.Watch()
    names = []
    for event in w.stream(core.list_namespaced_config_map, "default", resource_version=start):
        names.append(event["object"].metadata.name)
        if len(names) == 1:  # the stream is open: end it as an apiserver does, then change something
            kube_member.faults.drop_watches(r"/configmaps", clean=True)
            core.create_namespaced_config_map("default", {"metadata": {"name": second}})
        else:
            w.stop()
    assert names == [first, second]
    assert ("drop", "GET", "/api/v1/namespaces/default/configmaps") in kube_member.faults.fired
