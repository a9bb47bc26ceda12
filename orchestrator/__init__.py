"""Ketch's control plane: API server, scheduler, controllers, kubelet, lab and the `ketch` CLI."""

__version__ = "0.1.0"
