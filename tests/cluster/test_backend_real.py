"""The Kubernetes backend's end-to-end tests (``tests/backend_kubernetes/test_e2e_*.py``) on the real plane.

The same test functions, imported: the backend launches kernel pods that real Kueue admits and queues,
the real scheduler binds, the process kubelet runs, the real garbage collector cleans up; the product's
kubeconfig goes through the fault proxies (``faulty.py``), so the fault tests arm real-looking failures in
front of a real API server. Left on the test API, and why (docs/test-kube-api.md lists them too):

- ``test_a_slow_image_pull_is_reported_while_it_happens``, ``..._longer_than_its_timeout_fails_...``: the
  process kubelet pulls no images (``pull_delays`` is the test kubelet's).
- ``test_preemption_mid_run_says_preempted``: it forces a preemption with a chosen message; real Kueue
  preempts on its own terms (``test_e2e_real`` and the preemption test show that path).
- ``test_oom_kill_says_oomkilled_with_the_memory_limit``: no cgroup limits in the process kubelet; the OOM
  kill is the kubelet's report either way, so the test API's kubelet shows it as well.
- the Karmada tests: Karmada stays on the in-repo API (issue 12's note).
- ``test_gc_with_a_bad_duration_...``, ``..._unknown_context_...``: command-line checks that send no request.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tests.backend_kubernetes import test_e2e_queue
from tests.backend_kubernetes.conftest import backend, test_policy  # noqa: F401
from tests.backend_kubernetes.test_e2e_curve import (  # noqa: F401
    curve_backend,
    test_curve_kernel_answers_curve_clients_only,
)
from tests.backend_kubernetes.test_e2e_exit import (  # noqa: F401
    test_pod_deleted_by_someone_else_is_reported,
    test_release_deletes_pod_secret_lease_and_frees_quota_at_once,
    test_released_kernel_wait_exit_returns_released,
    test_secret_is_owned_by_the_pod_and_holds_the_only_copy_of_the_key,
)
from tests.backend_kubernetes.test_e2e_faults import (  # noqa: F401
    test_500s_on_create_are_retried_and_make_one_pod,
    test_a_create_whose_answer_was_lost_is_adopted,
    test_a_leftover_pod_of_another_gateway_is_not_adopted,
    test_dropped_watches_resume_and_the_launch_completes,
    test_forbidden_watch_fails_fast_with_rbac_advice,
    test_persistent_500s_end_with_a_clear_error_and_no_pod,
    test_pod_deleted_while_the_watch_was_down_and_history_expired_is_noticed,
)
from tests.backend_kubernetes.test_e2e_gc import (  # noqa: F401
    test_gc_deletes_the_kernel_whose_lease_expired_and_keeps_the_renewed_one,
    test_list_orphans_respects_an_explicit_expiry,
    test_renew_moves_the_lease_forward,
)
from tests.backend_kubernetes.test_e2e_launch import (  # noqa: F401
    test_a_kernel_that_cannot_start_shows_why_from_its_output,
    test_free_silver_quota_runs_a_kernel_that_answers,
)
from tests.backend_kubernetes.test_e2e_queue import (  # noqa: F401
    test_abandoned_launch_iterator_is_cleaned_up_by_the_loop,
    test_aclose_of_the_launch_iterator_cleans_up,
    test_cancelling_a_queued_launch_deletes_its_pod_and_secret,
    test_cancelling_the_pending_next_event_withdraws_the_queued_pod,
    test_full_private_queue_reports_position_reason_and_eta,
    test_queue_timeout_fails_with_a_clear_message_and_withdraws,
    test_queued_kernel_starts_when_quota_frees,
)
from tests.cluster.faulty import kube_members  # noqa: F401 - the members behind the fault proxies

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(autouse=True)
def kernels_queue_a_second_after_the_blockers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real Kueue orders pending Workloads of equal priority by ``creationTimestamp``, which has whole
    seconds, and then by UID (``baseCompareFunc`` in pkg/cache/queue/cluster_queue.go): a kernel created in
    the same second as ``blocker-waiting`` is ahead of it half the time. The queue tests fill the queue and
    launch at once, so here ``fill_silver`` returns only once that second is over."""
    fill = test_e2e_queue.fill_silver

    def fill_silver(member) -> None:  # type: ignore[no-untyped-def]
        fill(member)
        wl = member.wait_for(
            lambda: member.workload_for("jupyter", "blocker-waiting"), 30, what="its Workload"
        )
        created = dt.datetime.fromisoformat(wl["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        time.sleep(
            max(0.0, (created + dt.timedelta(seconds=1) - dt.datetime.now(dt.timezone.utc)).total_seconds())
        )

    monkeypatch.setattr(test_e2e_queue, "fill_silver", fill_silver)
