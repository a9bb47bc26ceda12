"""Streaming for `kubectl exec`, `attach` and `port-forward` (contract D): pure codecs for the
Kubernetes channel protocol (channels.py), SPDY/3.1 framing (spdy.py) and port-forward stream
pairing (portforward.py); thin adapters for the kubelet (kubelet.py) and the API server's relay
(relay.py)."""
