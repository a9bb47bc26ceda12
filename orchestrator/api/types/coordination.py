"""coordination.k8s.io/v1: Lease.

Facts from k8s.io/api coordination/v1 at v0.33: field numbers from generated.proto; JSON names, omitempty,
pointers and list/map markers from types.go. The descriptions are ours.
"""

from __future__ import annotations

from orchestrator.api.types.model import F, Message

MESSAGES = [
    Message("coordination.v1.Lease", "A lock with a holder and an expiry: leader election and node heartbeats.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "spec", "LeaseSpec", "The lease's state."),
    ], gvk=("coordination.k8s.io", "v1", "Lease")),
    Message("coordination.v1.LeaseSpec", "The state of a lease.", [
        F(1, "holderIdentity", "*string", "Who holds the lease."),
        F(2, "leaseDurationSeconds", "*int32", "How long the holder keeps it without renewing."),
        F(3, "acquireTime", "*MicroTime", "When the current holder took the lease."),
        F(4, "renewTime", "*MicroTime", "When the holder last renewed it."),
        F(5, "leaseTransitions", "*int32", "How many times the holder changed."),
        F(6, "strategy", "*string", "The strategy for picking a holder (coordinated leader election)."),
        F(7, "preferredHolder", "*string", "The holder the lease should pass to next."),
    ]),
]
