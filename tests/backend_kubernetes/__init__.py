"""Tests of the Kubernetes backend: rendering, validation, samples, and end to end against tests/kubeapi."""
