"""tests/cluster: the real control plane, and the product's end-to-end Kubernetes tests run on it.

``kube_members`` here is the real members (reset between tests), so the end-to-end fixtures of
``tests/e2e_kubernetes`` (``start_kube_kernel``) and its test functions, imported into
``test_e2e_real.py``, run unchanged against real kube-apiservers with real Kueue.
"""

from pathlib import Path

import pytest

from tests.cluster.fixtures import *  # noqa: F401,F403
from tests.cluster.members import RealMembers
from tests.e2e_kubernetes.conftest import start_kube_kernel  # noqa: F401
from tests.gateway.conftest import runtime_dir  # noqa: F401


@pytest.fixture
def kube_members(real_kube_members: RealMembers) -> RealMembers:
    return real_kube_members


from tests.cluster.faulty import fault_members, faulty_kube_members  # noqa: E402,F401

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``, as ``.ci/run`` runs), every test here goes to one worker:
    the real plane is package-scoped, and each worker that ran a test here would start (and feed) a plane of
    its own on the same two cores."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("real-plane"))
