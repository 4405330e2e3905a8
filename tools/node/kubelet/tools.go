//go:build tools

// Package tools records the commands this module builds, so that go.mod and go.sum pin
// everything they import.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
