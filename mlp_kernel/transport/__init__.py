"""How the gateway reaches a remote kernel when pod IPs are not routable: through the member's ingress.

``tunnel.py`` is the gateway's side (loopback listeners carried as WebSockets), ``bridge.py`` the pod's
(one WebSocket port in front of the kernel's loopback ports, shipped to the pod as a single file). Neither
parses ZMTP, so the relay and CurveZMQ are unchanged (docs/design.md, "Kernels behind an ingress"). This
package imports nothing else of mlp_kernel: it sits in the bottom layer, under the backends that use it.
"""
