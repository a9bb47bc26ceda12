"""Ketch's kube-proxy: Services and EndpointSlices to nftables rulesets, and the pod network."""
