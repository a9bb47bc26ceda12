"""The lab: hosts (network namespaces or loopback addresses), faults, workloads, chaos runs."""
