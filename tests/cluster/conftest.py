from tests.cluster.fixtures import *  # noqa: F401,F403
