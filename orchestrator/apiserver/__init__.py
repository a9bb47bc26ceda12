"""The Kubernetes-compatible API server: REST over the kv store, good enough for real kubectl."""
