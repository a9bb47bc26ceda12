"""What every component knows about Kubernetes objects, pure and standard-library only: the
resource table, selectors, quantities, timestamps, and typed accessors for the shapes that the
scheduler, controllers, kubelet, proxy and API server all read."""
