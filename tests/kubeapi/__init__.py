"""In-repo Kubernetes test API: a real HTTP server the official ``kubernetes`` client talks to unmodified.

There is no kube-apiserver binary on the machines that run this project's tests, yet the Kubernetes backend,
the placement adapters and the CLI must be exercised against real HTTP, real watches and real Kueue/Karmada
object shapes. This package provides that server (``server.KubeApiServer``), the controllers that play
kubelet, scheduler, Kueue and Karmada inside it, and pytest fixtures (``fixtures``) that start a private and a
public member plus a Karmada control plane. See docs/test-kube-api.md for what is and is not implemented.
"""
