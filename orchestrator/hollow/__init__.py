"""Hollow nodes: simulated kubelets for scheduler and control-plane benchmarks (`ketch hollow-nodes`)."""
