"""core/v1: Namespace, Node, Service, Endpoints, Event, ConfigMap, Secret, ServiceAccount.

Facts from k8s.io/api core/v1 at v0.33: field numbers from generated.proto; JSON names, omitempty,
pointers and list/map markers from types.go. The descriptions are ours.
"""

from __future__ import annotations

from orchestrator.api.types.model import F, Message

MESSAGES = [
    Message("core.v1.AttachedVolume", "A volume attached to a node.", [
        F(1, "name", "string", "The volume's name.", required=True),
        F(2, "devicePath", "string", "Where the volume is attached.", required=True),
    ]),
    Message("core.v1.ClientIPConfig", "Client-IP session affinity settings.", [
        F(1, "timeoutSeconds", "*int32", "How long a client sticks to a backend (default 10800)."),
    ]),
    Message("core.v1.ConfigMap", "Configuration data for pods, as strings or bytes.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(4, "immutable", "*bool", "When true, data cannot change (only deletion)."),
        F(2, "data", "map[string]string", "String values by key."),
        F(3, "binaryData", "map[string]bytes", "Byte values by key (base64 in JSON)."),
    ], gvk=("", "v1", "ConfigMap")),
    Message("core.v1.ConfigMapNodeConfigSource", "Deprecated: a ConfigMap holding a node's configuration.", [
        F(1, "namespace", "string", "The ConfigMap's namespace.", required=True),
        F(2, "name", "string", "The ConfigMap's name.", required=True),
        F(3, "uid", "string", "The ConfigMap's uid."),
        F(4, "resourceVersion", "string", "The ConfigMap's resourceVersion."),
        F(5, "kubeletConfigKey", "string", "The key holding the kubelet configuration.", required=True),
    ]),
    Message("core.v1.ContainerImage", "An image present on a node.", [
        F(1, "names", "[]string", "The image's names and digests.", keep_zero=True, list_type="atomic"),
        F(2, "sizeBytes", "int64", "The image's size."),
    ]),
    Message("core.v1.DaemonEndpoint", "A port a node daemon listens on.", [
        F(1, "Port", "int32", "The port number.", required=True),
    ]),
    Message("core.v1.EndpointAddress", "An address of a Service backend.", [
        F(1, "ip", "string", "The backend's IP.", required=True),
        F(3, "hostname", "string", "The backend's host name."),
        F(4, "nodeName", "*string", "The node the backend runs on."),
        F(2, "targetRef", "*ObjectReference", "The object behind the address, usually a Pod."),
    ], atomic=True),
    Message("core.v1.EndpointPort", "A port of Service backends.", [
        F(1, "name", "string", "The port's name, matching the Service port's."),
        F(2, "port", "int32", "The port number.", required=True),
        F(3, "protocol", "string", "TCP (default), UDP or SCTP."),
        F(4, "appProtocol", "*string", "The application protocol."),
    ], atomic=True),
    Message("core.v1.EndpointSubset", "Addresses that share a set of ports.", [
        F(1, "addresses", "[]EndpointAddress", "Ready addresses.", list_type="atomic"),
        F(2, "notReadyAddresses", "[]EndpointAddress", "Addresses not ready yet.", list_type="atomic"),
        F(3, "ports", "[]EndpointPort", "The ports of every address.", list_type="atomic"),
    ]),
    Message("core.v1.Endpoints", "The backends of a Service (superseded by EndpointSlices).", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "subsets", "[]EndpointSubset", "The backends, grouped by ports.", list_type="atomic"),
    ], gvk=("", "v1", "Endpoints")),
    Message("core.v1.Event", "A report of something that happened to an object (core/v1 form).", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata.", required=True),
        F(2, "involvedObject", "ObjectReference", "The object the event is about.", required=True),
        F(3, "reason", "string", "A CamelCase word for why (e.g. Scheduled)."),
        F(4, "message", "string", "Human-readable description."),
        F(5, "source", "EventSource", "The component that reported it."),
        F(6, "firstTimestamp", "Time", "When it first happened."),
        F(7, "lastTimestamp", "Time", "When it last happened."),
        F(8, "count", "int32", "How many times it happened."),
        F(9, "type", "string", "Normal or Warning."),
        F(10, "eventTime", "MicroTime", "When it first happened, with microseconds."),
        F(11, "series", "*EventSeries", "Counts repeats of the event."),
        F(12, "action", "string", "What was done (or failed) about the object."),
        F(13, "related", "*ObjectReference", "A second object involved."),
        F(14, "reportingComponent", "string", "The controller that reported it.", keep_zero=True),
        F(15, "reportingInstance", "string", "The instance of that controller.", keep_zero=True),
    ], gvk=("", "v1", "Event")),
    Message("core.v1.EventSeries", "Repeats of an event.", [
        F(1, "count", "int32", "How many times it happened."),
        F(2, "lastObservedTime", "MicroTime", "When it last happened."),
    ]),
    Message("core.v1.EventSource", "The component that reported an event.", [
        F(1, "component", "string", "The component's name."),
        F(2, "host", "string", "The node it runs on."),
    ]),
    Message("core.v1.LoadBalancerIngress", "An address of a load balancer.", [
        F(1, "ip", "string", "Its IP."),
        F(2, "hostname", "string", "Its DNS name."),
        F(3, "ipMode", "*string", "VIP or Proxy: how traffic reaches the backends."),
        F(4, "ports", "[]PortStatus", "The state of each port.", list_type="atomic"),
    ]),
    Message("core.v1.LoadBalancerStatus", "The state of a load balancer.", [
        F(1, "ingress", "[]LoadBalancerIngress", "Its addresses.", list_type="atomic"),
    ]),
    Message("core.v1.Namespace", "A scope for names; deleting it deletes what it holds.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "spec", "NamespaceSpec", "The desired state."),
        F(3, "status", "NamespaceStatus", "The observed state."),
    ], gvk=("", "v1", "Namespace")),
    Message("core.v1.NamespaceCondition", "One aspect of a namespace's state.", [
        F(1, "type", "string", "The condition's name.", required=True),
        F(2, "status", "string", "True, False or Unknown.", required=True),
        F(4, "lastTransitionTime", "Time", "When the status last changed."),
        F(5, "reason", "string", "A CamelCase word for the last change."),
        F(6, "message", "string", "Human-readable details."),
    ]),
    Message("core.v1.NamespaceSpec", "The desired state of a namespace.", [
        F(1, "finalizers", "[]string", "Must be empty before the namespace is removed.", list_type="atomic"),
    ]),
    Message("core.v1.NamespaceStatus", "The observed state of a namespace.", [
        F(1, "phase", "string", "Active or Terminating."),
        F(2, "conditions", "[]NamespaceCondition", "The latest observations of the namespace's state.",
          map_keys=("type",), patch="merge", merge_key="type"),
    ]),
    Message("core.v1.Node", "A machine that runs pods.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "spec", "NodeSpec", "The desired state."),
        F(3, "status", "NodeStatus", "The observed state, reported by the node's kubelet."),
    ], gvk=("", "v1", "Node")),
    Message("core.v1.NodeAddress", "An address of a node.", [
        F(1, "type", "string", "Hostname, InternalIP, ExternalIP, InternalDNS or ExternalDNS.", required=True),
        F(2, "address", "string", "The address.", required=True),
    ]),
    Message("core.v1.NodeCondition", "One aspect of a node's state (Ready, MemoryPressure, ...).", [
        F(1, "type", "string", "The condition's name.", required=True),
        F(2, "status", "string", "True, False or Unknown.", required=True),
        F(3, "lastHeartbeatTime", "Time", "When the kubelet last reported it."),
        F(4, "lastTransitionTime", "Time", "When the status last changed."),
        F(5, "reason", "string", "A CamelCase word for the last change."),
        F(6, "message", "string", "Human-readable details."),
    ]),
    Message("core.v1.NodeConfigSource", "Deprecated: where a node's configuration comes from.", [
        F(2, "configMap", "*ConfigMapNodeConfigSource", "A ConfigMap holding it."),
    ]),
    Message("core.v1.NodeConfigStatus", "Deprecated: the state of a node's dynamic configuration.", [
        F(1, "assigned", "*NodeConfigSource", "The assigned configuration."),
        F(2, "active", "*NodeConfigSource", "The configuration in use."),
        F(3, "lastKnownGood", "*NodeConfigSource", "The fallback configuration."),
        F(4, "error", "string", "The last error."),
    ]),
    Message("core.v1.NodeDaemonEndpoints", "The ports of a node's daemons.", [
        F(1, "kubeletEndpoint", "DaemonEndpoint", "The kubelet's port."),
    ]),
    Message("core.v1.NodeFeatures", "Features the node's runtime supports.", [
        F(1, "supplementalGroupsPolicy", "*bool", "Whether the runtime honours supplementalGroupsPolicy."),
    ]),
    Message("core.v1.NodeRuntimeHandler", "A container runtime handler on the node.", [
        F(1, "name", "string", "The handler's name; empty for the default.", keep_zero=True),
        F(2, "features", "*NodeRuntimeHandlerFeatures", "What the handler supports."),
    ]),
    Message("core.v1.NodeRuntimeHandlerFeatures", "What a runtime handler supports.", [
        F(1, "recursiveReadOnlyMounts", "*bool", "Recursive read-only mounts."),
        F(2, "userNamespaces", "*bool", "User namespaces."),
    ]),
    Message("core.v1.NodeSpec", "The desired state of a node.", [
        F(1, "podCIDR", "string", "The pod IP range assigned to the node."),
        F(7, "podCIDRs", "[]string", "The pod IP ranges (one per IP family).", list_type="set", patch="merge"),
        F(3, "providerID", "string", "The node's ID at its cloud provider."),
        F(4, "unschedulable", "bool", "When true, no new pods are scheduled on the node (kubectl cordon)."),
        F(5, "taints", "[]Taint", "Taints that repel pods without matching tolerations.", list_type="atomic"),
        F(6, "configSource", "*NodeConfigSource", "Deprecated: where the kubelet's configuration comes from."),
        F(2, "externalID", "string", "Deprecated."),
    ]),
    Message("core.v1.NodeStatus", "The observed state of a node.", [
        F(1, "capacity", "map[string]Quantity", "The node's total resources."),
        F(2, "allocatable", "map[string]Quantity", "The resources available to pods."),
        F(3, "phase", "string", "Deprecated."),
        F(4, "conditions", "[]NodeCondition", "The latest observations (Ready and pressure conditions).",
          map_keys=("type",), patch="merge", merge_key="type"),
        F(5, "addresses", "[]NodeAddress", "The node's addresses.", map_keys=("type",), patch="merge",
          merge_key="type"),
        F(6, "daemonEndpoints", "NodeDaemonEndpoints", "The ports of the node's daemons."),
        F(7, "nodeInfo", "NodeSystemInfo", "Versions and identifiers of the node."),
        F(8, "images", "[]ContainerImage", "Images present on the node.", list_type="atomic"),
        F(9, "volumesInUse", "[]string", "Volumes in use on the node.", list_type="atomic"),
        F(10, "volumesAttached", "[]AttachedVolume", "Volumes attached to the node.", list_type="atomic"),
        F(11, "config", "*NodeConfigStatus", "Deprecated: the state of dynamic configuration."),
        F(12, "runtimeHandlers", "[]NodeRuntimeHandler", "The runtime handlers available.", list_type="atomic"),
        F(13, "features", "*NodeFeatures", "Features the runtime supports."),
    ]),
    Message("core.v1.NodeSwapStatus", "The node's swap memory.", [
        F(1, "capacity", "*int64", "The swap capacity in bytes."),
    ]),
    Message("core.v1.NodeSystemInfo", "Versions and identifiers of a node.", [
        F(1, "machineID", "string", "The machine ID.", required=True),
        F(2, "systemUUID", "string", "The system UUID.", required=True),
        F(3, "bootID", "string", "Changes on every boot.", required=True),
        F(4, "kernelVersion", "string", "The kernel version (uname -r).", required=True),
        F(5, "osImage", "string", "The OS image (from /etc/os-release).", required=True),
        F(6, "containerRuntimeVersion", "string", "The container runtime and its version.", required=True),
        F(7, "kubeletVersion", "string", "The kubelet's version.", required=True),
        F(8, "kubeProxyVersion", "string", "Deprecated: the kube-proxy version.", required=True),
        F(9, "operatingSystem", "string", "The operating system (linux).", required=True),
        F(10, "architecture", "string", "The CPU architecture (amd64).", required=True),
        F(11, "swap", "*NodeSwapStatus", "The node's swap memory."),
    ]),
    Message("core.v1.PortStatus", "The state of a load balancer port.", [
        F(1, "port", "int32", "The port number.", required=True),
        F(2, "protocol", "string", "TCP, UDP or SCTP.", required=True),
        F(3, "error", "*string", "Why the port is not working, if it is not."),
    ]),
    Message("core.v1.Secret", "Sensitive data for pods, such as passwords and keys.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(5, "immutable", "*bool", "When true, data cannot change (only deletion)."),
        F(2, "data", "map[string]bytes", "Byte values by key (base64 in JSON)."),
        F(4, "stringData", "map[string]string", "Write-only string values, merged into data by the server."),
        F(3, "type", "string", "What the secret holds (default Opaque; e.g. kubernetes.io/tls)."),
    ], gvk=("", "v1", "Secret")),
    Message("core.v1.Service", "Exposes a set of pods under one address and name.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "spec", "ServiceSpec", "The desired state."),
        F(3, "status", "ServiceStatus", "The observed state."),
    ], gvk=("", "v1", "Service")),
    Message("core.v1.ServiceAccount", "An identity for processes in pods.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "secrets", "[]ObjectReference", "Deprecated: secrets for the account's tokens.", map_keys=("name",),
          patch="merge", merge_key="name"),
        F(3, "imagePullSecrets", "[]LocalObjectReference",
          "Secrets added to the pods that use the account, for pulling images.", list_type="atomic"),
        F(4, "automountServiceAccountToken", "*bool", "Whether pods mount a token of the account by default."),
    ], gvk=("", "v1", "ServiceAccount")),
    Message("core.v1.ServicePort", "A port a Service exposes.", [
        F(1, "name", "string", "The port's name; required when there are several."),
        F(2, "protocol", "string", "TCP (default), UDP or SCTP.", default="TCP"),
        F(6, "appProtocol", "*string", "The application protocol."),
        F(3, "port", "int32", "The port the Service listens on.", required=True),
        F(4, "targetPort", "IntOrString", "The pods' port: a number or a container port's name (default: port)."),
        F(5, "nodePort", "int32", "The port on every node, for NodePort and LoadBalancer services."),
    ]),
    Message("core.v1.ServiceSpec", "The desired state of a Service.", [
        F(1, "ports", "[]ServicePort", "The ports the Service exposes.", map_keys=("port", "protocol"), patch="merge",
          merge_key="port"),
        F(2, "selector", "map[string]string", "Labels of the pods that back the Service.", map_type="atomic"),
        F(3, "clusterIP", "string", "The virtual IP; \"None\" makes a headless Service. Assigned when empty."),
        F(18, "clusterIPs", "[]string", "The virtual IPs (one per IP family).", list_type="atomic"),
        F(4, "type", "string", "ClusterIP (default), NodePort, LoadBalancer or ExternalName."),
        F(5, "externalIPs", "[]string", "Extra IPs the nodes accept traffic for.", list_type="atomic"),
        F(7, "sessionAffinity", "string", "None (default) or ClientIP."),
        F(8, "loadBalancerIP", "string", "Deprecated: the requested load balancer IP."),
        F(9, "loadBalancerSourceRanges", "[]string", "Client ranges the load balancer allows.", list_type="atomic"),
        F(10, "externalName", "string", "The DNS name an ExternalName Service aliases."),
        F(11, "externalTrafficPolicy", "string", "Cluster (default) or Local: where external traffic may go."),
        F(12, "healthCheckNodePort", "int32", "The health check port for Local external traffic."),
        F(13, "publishNotReadyAddresses", "bool", "Whether backends that are not ready get DNS records."),
        F(14, "sessionAffinityConfig", "*SessionAffinityConfig", "Session affinity settings."),
        F(19, "ipFamilies", "[]string", "The IP families of the Service.", list_type="atomic"),
        F(17, "ipFamilyPolicy", "*string", "SingleStack, PreferDualStack or RequireDualStack."),
        F(20, "allocateLoadBalancerNodePorts", "*bool", "Whether LoadBalancer services get node ports (default true)."),
        F(21, "loadBalancerClass", "*string", "The load balancer implementation to use."),
        F(22, "internalTrafficPolicy", "*string", "Cluster (default) or Local: where in-cluster traffic may go."),
        F(23, "trafficDistribution", "*string", "A preference for how traffic is spread (PreferClose)."),
    ]),
    Message("core.v1.ServiceStatus", "The observed state of a Service.", [
        F(1, "loadBalancer", "LoadBalancerStatus", "The load balancer, if any."),
        F(2, "conditions", "[]meta.v1.Condition", "The latest observations of the Service's state.", map_keys=("type",),
          patch="merge", merge_key="type"),
    ]),
    Message("core.v1.SessionAffinityConfig", "Session affinity settings.", [
        F(1, "clientIP", "*ClientIPConfig", "Settings of ClientIP affinity."),
    ]),
    Message("core.v1.Taint", "Repels pods that do not tolerate it.", [
        F(1, "key", "string", "The taint's key.", required=True),
        F(2, "value", "string", "The taint's value."),
        F(3, "effect", "string", "NoSchedule, PreferNoSchedule or NoExecute.", required=True),
        F(4, "timeAdded", "*Time", "When a NoExecute taint was added."),
    ]),
    Message("core.v1.TopologySelectorLabelRequirement", "A topology label requirement.", [
        F(1, "key", "string", "The label key.", required=True),
        F(2, "values", "[]string", "Allowed values.", required=True, list_type="atomic"),
    ]),
    Message("core.v1.TopologySelectorTerm", "Topology requirements, ANDed.", [
        F(1, "matchLabelExpressions", "[]TopologySelectorLabelRequirement", "The requirements.", list_type="atomic"),
    ], atomic=True),
]
