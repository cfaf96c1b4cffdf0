"""Registers the test Kubernetes API fixtures for this directory's own tests."""

from tests.kubeapi.fixtures import *  # noqa: F401,F403
