"""The lab cloud controller (`ketch cloud-controller-manager`): what a cloud provider does for a
cluster, done from the lab's host list: LoadBalancer addresses, node addresses and zones, and
Nodes removed with their hosts."""
