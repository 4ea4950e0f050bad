//go:build tools

// Package tools pins kwok (simulated nodes and pod lifecycle), built by
// scripts/build-cluster.sh. kwok has its own module because its k8s.io
// dependencies are newer than the control plane's.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
