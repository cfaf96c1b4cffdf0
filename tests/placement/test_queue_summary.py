"""The queue summary's document (issue 15): the counters a gateway decodes from it answer placement's
questions as the Workloads they were counted from do, and a summary past its periods is stale.

The publisher and the gateways on the real API server: tests/cluster/test_queue_summary_real.py.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from mlp_kernel.cli.queue_summary import Publisher
from mlp_kernel.placement.adapters import state_from_cluster
from mlp_kernel.placement.adapters.summary import STALE_PERIODS, decode, encode
from mlp_kernel.placement.adapters.watch_cache import drop_caches
from mlp_kernel.placement.adapters.workloads import WorkloadCounters
from tests.placement.test_live import POLICY, clients, fill_bronze_and_queue_one
from tests.placement.test_watch_cache import _answers, _requests, _workload

NOW = datetime(2026, 1, 1, 1, tzinfo=timezone.utc)  # the time _answers asks at


@pytest.mark.parametrize("seed", range(20))
def test_decoded_counters_give_the_answers_of_the_workloads(seed: int) -> None:
    rng = random.Random(seed)
    counters = WorkloadCounters.of(_workload(rng, step) for step in range(rng.randrange(1, 40)))
    doc = json.loads(json.dumps(encode(counters, {}, NOW, 10.0)))  # through JSON, as the ConfigMap holds it
    summary = decode(json.dumps(doc))
    assert _answers(summary.counters) == _answers(counters)
    assert encode(summary.counters, {}, NOW, 10.0) | {"workloads": doc["workloads"]} == doc


def test_admissions_older_than_the_wait_models_window_are_not_published() -> None:
    rng = random.Random(3)
    counters = WorkloadCounters.of(_workload(rng, step) for step in range(40))
    assert counters.admissions, "the sample has no admissions to prune"
    later = NOW + timedelta(days=1)
    assert encode(counters, {}, later, 10.0)["admissions"] == []


def test_a_summary_older_than_its_periods_is_stale_and_a_bad_one_says_why() -> None:
    summary = decode(json.dumps(encode(WorkloadCounters(), {}, NOW, 10.0)))
    assert not summary.stale(NOW + timedelta(seconds=STALE_PERIODS * 10))
    assert summary.stale(NOW + timedelta(seconds=STALE_PERIODS * 10 + 1))
    with pytest.raises(ValueError, match="not a queue summary"):
        decode('{"format": 1}')
    with pytest.raises(ValueError, match="this gateway reads format 1"):
        decode('{"format": 99}')


@pytest.fixture
def _fresh_caches() -> Iterator[None]:
    drop_caches()
    yield
    drop_caches()


def test_a_gateway_reads_the_summary_and_no_workload_on_the_test_api(
    kube_members: Any, _fresh_caches: None
) -> None:
    api = clients(kube_members)
    private = kube_members.private
    fill_bronze_and_queue_one(private)
    publisher = Publisher(private.api_client(), "jupyter", "mlp-queue-summary", 1.0)
    publisher.start()
    member = dataclasses.replace(POLICY.members["private"], queue_summary="jupyter/mlp-queue-summary")
    policy = dataclasses.replace(POLICY, members={**POLICY.members, "private": member})
    try:
        gateway = {"private": private.api_client(), "public": api["public"]}
        seen = _requests(gateway["private"])

        def agree() -> bool:
            publisher.publish_once()
            now = datetime.now(timezone.utc)
            summed = state_from_cluster(policy, gateway, now=now, watch=True).members["private"]
            direct = state_from_cluster(POLICY, api, now=now).members["private"]
            assert "queue summary jupyter/mlp-queue-summary" in summed.source, summed.source
            return summed.flavors == direct.flavors and summed.flavors["bronze"].pending == 1

        private.wait_for(agree, what="the summary-fed state to match a direct read with one pending workload")
        assert seen and not [u for u in seen if re.search(r"/workloads(\?|/|$)", u)], seen
    finally:
        publisher.stop()


def test_a_gateway_that_fell_back_stops_its_own_workload_watch_once_the_summary_is_fresh_again(
    kube_members: Any, _fresh_caches: None
) -> None:
    api = clients(kube_members)
    private = kube_members.private
    fill_bronze_and_queue_one(private)
    publisher = Publisher(private.api_client(), "jupyter", "mlp-queue-summary", 10.0)
    publisher.start()  # its Workload watch; it writes only when asked here, at the times given
    try:
        _fall_back_and_recover(api, private, publisher)
    finally:
        publisher.stop()


def _fall_back_and_recover(api: dict[str, Any], private: Any, publisher: Publisher) -> None:
    from mlp_kernel.placement.adapters.watch_cache import shared_cache

    ref = "jupyter/mlp-queue-summary"
    member = dataclasses.replace(POLICY.members["private"], queue_summary=ref)
    policy = dataclasses.replace(POLICY, members={**POLICY.members, "private": member})
    gateway = {"private": private.api_client(), "public": api["public"]}
    seen = _requests(gateway["private"])
    t0 = datetime.now(timezone.utc)

    def source_at(now: datetime) -> str:
        return state_from_cluster(policy, gateway, now=now, watch=True).members["private"].source

    def workload_reads() -> int:
        return len([u for u in seen if re.search(r"/workloads(\?|/|$)", u)])

    private.wait_for(lambda: publisher.publish_once(t0), what="the publisher's watch to sync and write")
    private.wait_for(lambda: f"queue summary {ref}, " in source_at(t0), what="the summary to be read")
    cache = shared_cache(gateway["private"], member.namespace or "", lambda: "", ref)  # the one in use
    assert not cache.counting_workloads and workload_reads() == 0

    # the publisher stopped writing: 4 periods later the gateway counts Workloads itself
    stale_at = t0 + timedelta(seconds=(STALE_PERIODS + 1) * 10)
    assert "counting Workloads itself" in source_at(stale_at)
    assert cache.counting_workloads and workload_reads() >= 1

    # it writes again: the fallback stays until the summary has been fresh for STALE_PERIODS periods
    back = stale_at + timedelta(seconds=1)
    for step in range(STALE_PERIODS + 1):
        now = back + timedelta(seconds=step * 10)
        publisher.publish_once(now)
        private.wait_for(
            lambda now=now: f"queue summary {ref}, 0 s old" in source_at(now),
            what=f"the summary written at +{step * 10} s to be read",
        )
        assert cache.counting_workloads == (step < STALE_PERIODS), step
    reads = workload_reads()
    source_at(back + timedelta(seconds=STALE_PERIODS * 10 + 5))
    assert workload_reads() == reads, "a decision after the recovery read Workloads"

    # a new fallback lists them afresh: its counters equal a direct count, nothing left from before
    later = back + timedelta(seconds=(2 * STALE_PERIODS + 2) * 10)
    state = state_from_cluster(policy, gateway, now=later, watch=True).members["private"]
    direct = state_from_cluster(POLICY, api, now=later).members["private"]
    assert "counting Workloads itself" in state.source and state.flavors == direct.flavors
