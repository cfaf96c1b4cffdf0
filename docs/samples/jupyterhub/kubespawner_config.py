"""KubeSpawner for GPU (auto): each user's server is a pod in the user's own namespace, as its ServiceAccount.

Load it after jupyterhub_config.py (this directory): that file's ``pre_spawn_hook`` gives the server its team
(``MLP_KERNEL_TEAM``) and the user's groups; JupyterHub sets ``JUPYTERHUB_USER``. Here:

- ``user-{username}``: the namespace of alice's server pod is the one the per-user samples set up
  (docs/samples/rbac/per-user/user-alice.yaml: the Namespace, the ``notebook`` ServiceAccount with the
  launcher Role, the LocalQueue ``kernels``). The policy's ``tenancy: {namespace: "user-{username}"}`` puts
  her kernel pods there too, so the server and its kernels share one namespace and one RBAC boundary.
- ``service_account: notebook``: the server pod runs as ``user-alice/notebook`` and its token is mounted
  (KubeSpawner mounts it when a service account is named). GPU (auto) reaches the API server with it: the
  policy's member says ``in_cluster: true``, so no kubeconfig or token is handed to the server. bob's server
  runs as ``user-bob/notebook``, which has no binding in ``user-alice``: it cannot read, list or exec into
  alice's kernel pods or their Secrets.
- ``delete_grace_period``: stopping a server deletes its pod; the server then shuts its kernels down, and each
  GPU (auto) gateway deletes its kernel pod. KubeSpawner's default of 1 s is shorter than that: the container
  would be killed with the gateway, and the kernel pod would stay until ``mlp-kernel gc`` finds its lease
  expired.
- Storage and services are left at KubeSpawner's defaults (no PVC, no Service: the hub reaches the pod at its
  IP); add ``storage_pvc_ensure`` and a ``volumes``/``volume_mounts`` pair for persistent homes as usual.

The hub's own ServiceAccount needs kubespawner-rbac.yaml (this directory): with a namespace per user,
KubeSpawner creates, watches and deletes pods in every user namespace. With Zero to JupyterHub, put the
``c.KubeSpawner`` lines into ``hub.extraConfig`` (or the chart's ``singleuser`` values) and the RBAC next
to the release. tests/cluster/test_hub_kubespawner_real.py runs this file as it is on the real API server.
"""

c = get_config()  # noqa: F821 (JupyterHub's config loader provides get_config)

c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.enable_user_namespaces = True
c.KubeSpawner.user_namespace_template = "user-{username}"
c.KubeSpawner.service_account = "notebook"
# The single-user image: jupyterhub-singleuser, JupyterLab and `pip install mlp-kernel` (the GPU (auto)
# kernelspec and its policy with `in_cluster: true` baked in, read-only to users). CPU only: GPUs are for the
# kernel pods GPU (auto) starts.
c.KubeSpawner.image = "registry.example.com/notebooks/mlp-kernel-singleuser:1.0"
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
c.KubeSpawner.cpu_guarantee = 0.5
c.KubeSpawner.mem_guarantee = "1G"
c.KubeSpawner.delete_grace_period = 30
