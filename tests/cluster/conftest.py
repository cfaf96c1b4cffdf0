"""tests/cluster: the real control plane, and the product's end-to-end Kubernetes tests run on it.

``kube_members`` here is the real members (reset between tests), so the end-to-end fixtures of
``tests/e2e_kubernetes`` (``start_kube_kernel``) and its test functions, imported into
``test_e2e_real.py``, run unchanged against real kube-apiservers with real Kueue.
"""

import pytest

from tests.cluster.fixtures import *  # noqa: F401,F403
from tests.cluster.members import RealMembers
from tests.e2e_kubernetes.conftest import start_kube_kernel  # noqa: F401
from tests.gateway.conftest import runtime_dir  # noqa: F401


@pytest.fixture
def kube_members(real_kube_members: RealMembers) -> RealMembers:
    return real_kube_members


from tests.cluster.faulty import fault_members, faulty_kube_members  # noqa: E402,F401
