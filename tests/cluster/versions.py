"""The pinned versions of the real control plane (see build.py; k8s/go.mod must agree with KUBERNETES
and ETCD)."""

#: k8s.io/kubernetes: kube-apiserver, kube-controller-manager, kube-scheduler (staging modules v0.35.4)
KUBERNETES = "v1.35.4"
#: go.etcd.io/etcd/server/v3: the version k8s.io/kubernetes v1.35.4 itself requires
ETCD = "v3.6.5"
#: sigs.k8s.io/kueue: the newest release the module proxy serves (built against k8s.io/* v0.35.3)
KUEUE = "v0.17.0"
#: github.com/karmada-io/karmada: the newest release the module proxy serves (it refuses the version list,
#: 403; v1.16.0 is served, v1.16.1, v1.16.2, v1.17.0 are not); built against k8s.io/* v0.34.1 (karmada/go.mod)
KARMADA = "v1.16.0"
#: sigs.k8s.io/gateway-api: its standard-channel CRDs (Gateway, HTTPRoute) are installed by the samples' dry
#: run only, for docs/samples/transport; v1.2 made WebSocket backends (appProtocol kubernetes.io/ws) standard
GATEWAY_API = "v1.2.1"
#: github.com/seaweedfs/seaweedfs (Apache-2.0): its S3 gateway stands in for MinIO, which is AGPL-3.0 (see
#: docs/test-kube-api.md, "MinIO"); SeaweedFS 4.53, the only version the module proxy serves (a
#: pseudo-version: the project tags releases without a Go module version); built through seaweedfs/go.mod
SEAWEEDFS = "v0.0.0-20261109003541-7506e5f91cd6"
