"""The gateway kernel process (one per open GPU (auto) notebook).

Entry point: ``python -m mlp_kernel.gateway``.
"""
