"""discovery.k8s.io/v1: EndpointSlice.

Facts from k8s.io/api discovery/v1 at v0.33: field numbers from generated.proto; JSON names, omitempty,
pointers and list/map markers from types.go. The descriptions are ours.
"""

from __future__ import annotations

from orchestrator.api.types.model import F, Message

MESSAGES = [
    Message("discovery.v1.Endpoint", "One backend of a Service.", [
        F(1, "addresses", "[]string", "The backend's addresses (usually one).", required=True, list_type="set"),
        F(2, "conditions", "EndpointConditions", "Whether the backend is ready, serving or terminating."),
        F(3, "hostname", "*string", "The backend's DNS host name."),
        F(4, "targetRef", "*core.v1.ObjectReference", "The object behind the backend, usually a Pod."),
        F(5, "deprecatedTopology", "map[string]string", "Deprecated topology labels; use nodeName and zone."),
        F(6, "nodeName", "*string", "The node the backend runs on."),
        F(7, "zone", "*string", "The zone the backend is in."),
        F(8, "hints", "*EndpointHints", "Where the backend should be used (topology-aware routing)."),
    ]),
    Message("discovery.v1.EndpointConditions", "The state of a backend.", [
        F(1, "ready", "*bool", "Whether it should receive new connections."),
        F(2, "serving", "*bool", "Whether it is ready, even while terminating."),
        F(3, "terminating", "*bool", "Whether it is terminating."),
    ]),
    Message("discovery.v1.EndpointHints", "Routing hints for a backend.", [
        F(1, "forZones", "[]ForZone", "Zones that should use it.", list_type="atomic"),
        F(2, "forNodes", "[]ForNode", "Nodes that should use it.", list_type="atomic"),
    ]),
    Message("discovery.v1.EndpointPort", "A port of the backends.", [
        F(1, "name", "*string", "The port's name, matching the Service port's."),
        F(2, "protocol", "*string", "TCP (default), UDP or SCTP."),
        F(3, "port", "*int32", "The port number."),
        F(4, "appProtocol", "*string", "The application protocol."),
    ], atomic=True),
    Message("discovery.v1.EndpointSlice", "A slice of a Service's backends.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(4, "addressType", "string", "IPv4, IPv6 or FQDN.", required=True),
        F(2, "endpoints", "[]Endpoint", "The backends.", required=True, list_type="atomic"),
        F(3, "ports", "[]EndpointPort", "The ports every backend serves.", keep_zero=True, list_type="atomic"),
    ], gvk=("discovery.k8s.io", "v1", "EndpointSlice")),
    Message("discovery.v1.ForNode", "A node to route to.", [
        F(1, "name", "string", "The node's name.", required=True),
    ]),
    Message("discovery.v1.ForZone", "A zone to route to.", [
        F(1, "name", "string", "The zone's name.", required=True),
    ]),
]
