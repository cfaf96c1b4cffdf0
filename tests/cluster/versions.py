"""The pinned versions of the real control plane (see build.py; k8s/go.mod must agree with KUBERNETES
and ETCD)."""

#: k8s.io/kubernetes: kube-apiserver, kube-controller-manager, kube-scheduler (staging modules v0.35.4)
KUBERNETES = "v1.35.4"
#: go.etcd.io/etcd/server/v3: the version k8s.io/kubernetes v1.35.4 itself requires
ETCD = "v3.6.5"
#: sigs.k8s.io/kueue: the newest release the module proxy serves (built against k8s.io/* v0.35.3)
KUEUE = "v0.17.0"
