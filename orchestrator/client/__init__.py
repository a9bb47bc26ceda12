"""The control plane's client library: an async API client, informers, a work queue and leader election."""
