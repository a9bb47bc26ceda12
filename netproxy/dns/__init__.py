"""Cluster DNS (`ketch dns`), in CoreDNS's role: Service and pod names of the cluster domain from
Service and EndpointSlice informers, other names forwarded upstream. `view` and `answer` are pure;
`server` does the sockets and informers; `cli` is the command."""
