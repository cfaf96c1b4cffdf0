"""Controllers that run inside a test apiserver: scheduler, kubelet, Kueue, Karmada."""
