from tests.gateway.conftest import runtime_dir, start_kernel  # noqa: F401
