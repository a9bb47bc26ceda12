"""The kubelet: runs the pods bound to its node (issue 11). Pure cores (plan, podstatus, probes,
envvars, volumes, nodeinfo, crilog, stats, backoff) and the adapters that do the I/O."""
