"""The product's end-to-end Kubernetes tests, run on the real control plane (see conftest.py).

Each test below is the same function as in ``tests/e2e_kubernetes``: a real GPU (auto) kernel (provisioner,
gateway, Kubernetes backend) whose kernel pods real Kueue admits, the real scheduler binds and the process
kubelet runs; the carry-over tests' snapshot claim is bound by the real PV binder to a volume of our
local-path provisioner (``provisioner.py``). Tests that need what only the test API can do stay there;
docs/test-kube-api.md lists them and why.
"""

from tests.e2e_kubernetes.test_carryover import (  # noqa: F401
    test_a_kernel_that_bursts_starts_fresh_and_sensitive_variables_are_never_saved_on_public,
    test_a_missing_snapshot_claim_is_named_in_the_cell_and_the_kernel_starts_once_it_exists,
    test_forget_after_a_release_deletes_the_snapshot_on_the_volume,
    test_forget_without_a_view_of_the_volume_deletes_through_the_next_kernel,
    test_interrupt_while_the_pod_waits_for_its_claim_withdraws_the_pod,
    test_shutdown_deletes_the_snapshot_on_the_volume,
    test_variables_and_a_function_survive_an_idle_release_through_the_snapshot_volume,
)
from tests.e2e_kubernetes.test_lifecycle import (  # noqa: F401
    test_a_kernel_that_crashes_mid_cell_shows_its_last_output_and_the_next_cell_starts_again,
    test_idle_release_frees_pod_secret_and_quota_and_the_next_cell_starts_a_new_pod,
    test_preemption_mid_cell_ends_it_with_the_reason_and_the_next_cell_places_again,
)
from tests.e2e_kubernetes.test_orphans import (  # noqa: F401
    test_a_queued_kernel_is_not_an_orphan,
    test_killed_gateway_leaves_an_orphan_that_gc_deletes_after_the_lease_expires,
    test_shutdown_leaves_no_pod_secret_or_lease,
)
from tests.e2e_kubernetes.test_queue_burst import (  # noqa: F401
    test_an_observed_long_private_wait_bursts_at_once,
    test_budget_fixed_stays_queued_saying_why_and_interrupt_withdraws,
    test_full_private_queues_then_bursts_to_public_with_reason_and_price,
)
from tests.e2e_kubernetes.test_run_private import (  # noqa: F401
    test_free_silver_quota_runs_the_cell_in_a_private_pod,
)
from tests.e2e_kubernetes.test_workspace import (  # noqa: F401
    test_the_kernel_pod_works_in_the_notebooks_directory_on_the_users_workspace,
)
