"""End-to-end tests of the GPU (auto) kernel on the Kubernetes backend (tests/kubeapi members)."""
