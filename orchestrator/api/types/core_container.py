"""core/v1: Container and what it is made of: ports, environment, resources, probes,
lifecycle hooks, security context, and its status.

Facts from k8s.io/api core/v1 at v0.33: field numbers from generated.proto; JSON names, omitempty,
pointers and list/map markers from types.go. The descriptions are ours.
"""

from __future__ import annotations

from orchestrator.api.types.model import F, Message

# The fields of Container, shared with EphemeralContainerCommon (Kubernetes keeps them identical).
CONTAINER_FIELDS = [
    F(1, "name", "string", "The container's name, unique in the pod (a DNS label).", required=True),
    F(2, "image", "string", "The image to run."),
    F(3, "command", "[]string", "The entrypoint (default: the image's ENTRYPOINT).", list_type="atomic"),
    F(4, "args", "[]string", "Arguments to the entrypoint (default: the image's CMD).", list_type="atomic"),
    F(5, "workingDir", "string", "The working directory (default: the image's)."),
    F(6, "ports", "[]ContainerPort", "Ports the container exposes (informational).",
      map_keys=("containerPort", "protocol"), patch="merge", merge_key="containerPort"),
    F(19, "envFrom", "[]EnvFromSource", "Sources of environment variables.", list_type="atomic"),
    F(7, "env", "[]EnvVar", "Environment variables.", map_keys=("name",), patch="merge", merge_key="name"),
    F(8, "resources", "ResourceRequirements", "Compute resources requested and limited."),
    F(23, "resizePolicy", "[]ContainerResizePolicy", "How each resource may be resized.", list_type="atomic"),
    F(24, "restartPolicy", "*string",
      "Always, for an init container that keeps running beside the others (a sidecar)."),
    F(9, "volumeMounts", "[]VolumeMount", "Volumes mounted into the container.", map_keys=("mountPath",), patch="merge",
      merge_key="mountPath"),
    F(21, "volumeDevices", "[]VolumeDevice", "Block devices for the container.", map_keys=("devicePath",),
      patch="merge", merge_key="devicePath"),
    F(10, "livenessProbe", "*Probe", "Restarts the container when it fails."),
    F(11, "readinessProbe", "*Probe", "Takes the pod out of Service endpoints when it fails."),
    F(22, "startupProbe", "*Probe", "Holds the other probes off until it succeeds."),
    F(12, "lifecycle", "*Lifecycle", "Actions after start and before stop."),
    F(13, "terminationMessagePath", "string", "The file the container writes its termination message to."),
    F(20, "terminationMessagePolicy", "string", "File (default) or FallbackToLogsOnError."),
    F(14, "imagePullPolicy", "string", "Always, Never or IfNotPresent."),
    F(15, "securityContext", "*SecurityContext", "Security settings."),
    F(16, "stdin", "bool", "Keep stdin open."),
    F(17, "stdinOnce", "bool", "Close stdin after the first attach."),
    F(18, "tty", "bool", "Allocate a TTY."),
]

MESSAGES = [
    Message("core.v1.AppArmorProfile", "An AppArmor profile.", [
        F(1, "type", "string", "RuntimeDefault, Localhost or Unconfined.", required=True),
        F(2, "localhostProfile", "*string", "The profile's name on the node, for Localhost."),
    ]),
    Message("core.v1.Capabilities", "Linux capabilities to add and drop.", [
        F(1, "add", "[]string", "Capabilities to add.", list_type="atomic"),
        F(2, "drop", "[]string", "Capabilities to drop.", list_type="atomic"),
    ]),
    Message("core.v1.ConfigMapEnvSource", "Environment variables from all keys of a ConfigMap.", [
        F(1, "localObjectReference", "LocalObjectReference", inline=True),
        F(2, "optional", "*bool", "Whether the ConfigMap may be missing."),
    ]),
    Message("core.v1.ConfigMapKeySelector", "One key of a ConfigMap.", [
        F(1, "localObjectReference", "LocalObjectReference", inline=True),
        F(2, "key", "string", "The key.", required=True),
        F(3, "optional", "*bool", "Whether the ConfigMap or key may be missing."),
    ], atomic=True),
    Message("core.v1.Container", "An application container in a pod.", CONTAINER_FIELDS),
    Message("core.v1.ContainerPort", "A port a container listens on.", [
        F(1, "name", "string", "The port's name, which Services can use as targetPort."),
        F(2, "hostPort", "int32", "A port on the node mapped to this one."),
        F(3, "containerPort", "int32", "The port number.", required=True),
        F(4, "protocol", "string", "TCP (default), UDP or SCTP.", default="TCP"),
        F(5, "hostIP", "string", "The node IP to bind hostPort to."),
    ]),
    Message("core.v1.ContainerResizePolicy", "How a resource may be resized.", [
        F(1, "resourceName", "string", "cpu or memory.", required=True),
        F(2, "restartPolicy", "string", "NotRequired (default) or RestartContainer.", required=True),
    ]),
    Message("core.v1.ContainerState", "A container's state; exactly one of the members.", [
        F(1, "waiting", "*ContainerStateWaiting", "Not running yet."),
        F(2, "running", "*ContainerStateRunning", "Running."),
        F(3, "terminated", "*ContainerStateTerminated", "Finished."),
    ]),
    Message("core.v1.ContainerStateRunning", "A running container.", [
        F(1, "startedAt", "Time", "When it started."),
    ]),
    Message("core.v1.ContainerStateTerminated", "A finished container.", [
        F(1, "exitCode", "int32", "Its exit code.", required=True),
        F(2, "signal", "int32", "The signal that ended it."),
        F(3, "reason", "string", "Why it ended (e.g. Completed, OOMKilled)."),
        F(4, "message", "string", "Details."),
        F(5, "startedAt", "Time", "When it started."),
        F(6, "finishedAt", "Time", "When it ended."),
        F(7, "containerID", "string", "Its ID, as runtime://id."),
    ]),
    Message("core.v1.ContainerStateWaiting", "A container not running yet.", [
        F(1, "reason", "string", "Why (e.g. ContainerCreating, CrashLoopBackOff)."),
        F(2, "message", "string", "Details."),
    ]),
    Message("core.v1.ContainerStatus", "The observed state of a container.", [
        F(1, "name", "string", "The container's name.", required=True),
        F(2, "state", "ContainerState", "Its current state."),
        F(3, "lastState", "ContainerState", "Its previous state, e.g. before a restart."),
        F(4, "ready", "bool", "Whether its readiness probe passes.", required=True),
        F(5, "restartCount", "int32", "How many times it was restarted.", required=True),
        F(6, "image", "string", "The image it runs.", required=True),
        F(7, "imageID", "string", "The image's ID.", required=True),
        F(8, "containerID", "string", "Its ID, as runtime://id."),
        F(9, "started", "*bool", "Whether its startup probe passed."),
        F(10, "allocatedResources", "map[string]Quantity", "The resources allocated to it."),
        F(11, "resources", "*ResourceRequirements", "The resources it runs with."),
        F(12, "volumeMounts", "[]VolumeMountStatus", "The state of its mounts.", map_keys=("mountPath",), patch="merge",
          merge_key="mountPath"),
        F(13, "user", "*ContainerUser", "The identity it runs as."),
        F(14, "allocatedResourcesStatus", "[]ResourceStatus", "The health of its allocated resources.",
          map_keys=("name",), patch="merge", merge_key="name"),
        F(15, "stopSignal", "*string", "The signal that stops it."),
    ]),
    Message("core.v1.ContainerUser", "The identity a container runs as.", [
        F(1, "linux", "*LinuxContainerUser", "Its Linux identity."),
    ]),
    Message("core.v1.EnvFromSource", "A source of environment variables.", [
        F(1, "prefix", "string", "Prepended to every variable name."),
        F(2, "configMapRef", "*ConfigMapEnvSource", "A ConfigMap."),
        F(3, "secretRef", "*SecretEnvSource", "A Secret."),
    ]),
    Message("core.v1.EnvVar", "An environment variable.", [
        F(1, "name", "string", "Its name.", required=True),
        F(2, "value", "string", "Its value; $(VAR) expands earlier variables."),
        F(3, "valueFrom", "*EnvVarSource", "Where its value comes from, instead of value."),
    ]),
    Message("core.v1.EnvVarSource", "Where an environment variable's value comes from.", [
        F(1, "fieldRef", "*ObjectFieldSelector", "A field of the pod."),
        F(2, "resourceFieldRef", "*ResourceFieldSelector", "A resource of the container."),
        F(3, "configMapKeyRef", "*ConfigMapKeySelector", "A key of a ConfigMap."),
        F(4, "secretKeyRef", "*SecretKeySelector", "A key of a Secret."),
    ]),
    Message("core.v1.EphemeralContainer", "A debugging container added to a running pod.", [
        F(1, "ephemeralContainerCommon", "EphemeralContainerCommon", inline=True),
        F(2, "targetContainerName", "string", "The container whose namespaces it joins."),
    ]),
    Message("core.v1.EphemeralContainerCommon", "The fields of a Container, as an ephemeral container has them.",
            CONTAINER_FIELDS),
    Message("core.v1.ExecAction", "Runs a command in the container.", [
        F(1, "command", "[]string", "The command; not run in a shell.", list_type="atomic"),
    ]),
    Message("core.v1.GRPCAction", "A gRPC health check.", [
        F(1, "port", "int32", "The port.", required=True),
        F(2, "service", "*string", "The service name sent in the health check request.", default=""),
    ]),
    Message("core.v1.HTTPGetAction", "An HTTP GET request.", [
        F(1, "path", "string", "The path."),
        F(2, "port", "IntOrString", "The port: a number or a container port's name.", required=True),
        F(3, "host", "string", "The host to connect to (default: the pod IP)."),
        F(4, "scheme", "string", "HTTP (default) or HTTPS."),
        F(5, "httpHeaders", "[]HTTPHeader", "Extra request headers.", list_type="atomic"),
    ]),
    Message("core.v1.HTTPHeader", "An HTTP header.", [
        F(1, "name", "string", "The header's name.", required=True),
        F(2, "value", "string", "Its value.", required=True),
    ]),
    Message("core.v1.Lifecycle", "Actions run after a container starts and before it stops.", [
        F(1, "postStart", "*LifecycleHandler", "Runs right after the container is created."),
        F(2, "preStop", "*LifecycleHandler", "Runs before the container is stopped."),
        F(3, "stopSignal", "*string", "The signal that stops the container."),
    ]),
    Message("core.v1.LifecycleHandler", "An action of a lifecycle hook; exactly one member.", [
        F(1, "exec", "*ExecAction", "Runs a command."),
        F(2, "httpGet", "*HTTPGetAction", "Sends an HTTP GET."),
        F(3, "tcpSocket", "*TCPSocketAction", "Deprecated: opens a TCP connection."),
        F(4, "sleep", "*SleepAction", "Sleeps."),
    ]),
    Message("core.v1.LinuxContainerUser", "A container's Linux identity.", [
        F(1, "uid", "int64", "Its UID.", required=True),
        F(2, "gid", "int64", "Its GID.", required=True),
        F(3, "supplementalGroups", "[]int64", "Its supplemental GIDs.", list_type="atomic"),
    ]),
    Message("core.v1.ObjectFieldSelector", "A field of the pod.", [
        F(1, "apiVersion", "string", "The API version the field path is in (default v1)."),
        F(2, "fieldPath", "string", "The field, e.g. metadata.name or status.podIP.", required=True),
    ], atomic=True),
    Message("core.v1.Probe", "A health check of a container.", [
        F(1, "handler", "ProbeHandler", inline=True),
        F(2, "initialDelaySeconds", "int32", "Seconds after start before the first check."),
        F(3, "timeoutSeconds", "int32", "Seconds before a check times out (default 1)."),
        F(4, "periodSeconds", "int32", "Seconds between checks (default 10)."),
        F(5, "successThreshold", "int32", "Passes in a row to count as passing (default 1)."),
        F(6, "failureThreshold", "int32", "Failures in a row to count as failing (default 3)."),
        F(7, "terminationGracePeriodSeconds", "*int64", "Grace period when a failing probe stops the container."),
    ]),
    Message("core.v1.ProbeHandler", "What a probe does; exactly one member.", [
        F(1, "exec", "*ExecAction", "Runs a command."),
        F(2, "httpGet", "*HTTPGetAction", "Sends an HTTP GET."),
        F(3, "tcpSocket", "*TCPSocketAction", "Opens a TCP connection."),
        F(4, "grpc", "*GRPCAction", "Calls the gRPC health service."),
    ]),
    Message("core.v1.ResourceClaim", "A pod resource claim a container uses.", [
        F(1, "name", "string", "The pod resource claim's name.", required=True),
        F(2, "request", "string", "One request of the claim, or all when empty."),
    ]),
    Message("core.v1.ResourceFieldSelector", "A resource of a container.", [
        F(1, "containerName", "string", "The container (required for volumes)."),
        F(2, "resource", "string", "E.g. limits.cpu or requests.memory.", required=True),
        F(3, "divisor", "Quantity", "The unit the value is expressed in (default 1)."),
    ], atomic=True),
    Message("core.v1.ResourceHealth", "The health of one allocated resource.", [
        F(1, "resourceID", "string", "The resource's ID.", required=True),
        F(2, "health", "string", "Healthy, Unhealthy or Unknown."),
    ]),
    Message("core.v1.ResourceRequirements", "Compute resources of a container.", [
        F(1, "limits", "map[string]Quantity", "The most it may use."),
        F(2, "requests", "map[string]Quantity", "What it needs; the scheduler reserves it."),
        F(3, "claims", "[]ResourceClaim", "Pod resource claims it uses.", map_keys=("name",)),
    ]),
    Message("core.v1.ResourceStatus", "The health of a container's allocated resources.", [
        F(1, "name", "string", "The resource's name.", required=True),
        F(2, "resources", "[]ResourceHealth", "The health of each allocated resource.", map_keys=("resourceID",)),
    ]),
    Message("core.v1.SELinuxOptions", "An SELinux context.", [
        F(1, "user", "string", "The SELinux user."),
        F(2, "role", "string", "The SELinux role."),
        F(3, "type", "string", "The SELinux type."),
        F(4, "level", "string", "The SELinux level."),
    ]),
    Message("core.v1.SeccompProfile", "A seccomp profile.", [
        F(1, "type", "string", "RuntimeDefault, Localhost or Unconfined.", required=True),
        F(2, "localhostProfile", "*string", "The profile's path on the node, for Localhost."),
    ]),
    Message("core.v1.SecretEnvSource", "Environment variables from all keys of a Secret.", [
        F(1, "localObjectReference", "LocalObjectReference", inline=True),
        F(2, "optional", "*bool", "Whether the Secret may be missing."),
    ]),
    Message("core.v1.SecretKeySelector", "One key of a Secret.", [
        F(1, "localObjectReference", "LocalObjectReference", inline=True),
        F(2, "key", "string", "The key.", required=True),
        F(3, "optional", "*bool", "Whether the Secret or key may be missing."),
    ], atomic=True),
    Message("core.v1.SecurityContext", "Security settings of a container; they override the pod's.", [
        F(1, "capabilities", "*Capabilities", "Capabilities to add and drop."),
        F(2, "privileged", "*bool", "Run privileged (like root on the host)."),
        F(3, "seLinuxOptions", "*SELinuxOptions", "The SELinux context."),
        F(10, "windowsOptions", "*WindowsSecurityContextOptions", "Windows-specific settings."),
        F(4, "runAsUser", "*int64", "The UID the container runs as."),
        F(8, "runAsGroup", "*int64", "The primary GID the container runs as."),
        F(5, "runAsNonRoot", "*bool", "Refuse to start if it would run as root."),
        F(6, "readOnlyRootFilesystem", "*bool", "Mount the root file system read-only."),
        F(7, "allowPrivilegeEscalation", "*bool", "Whether a process may gain more privileges than its parent."),
        F(9, "procMount", "*string", "Default or Unmasked /proc."),
        F(11, "seccompProfile", "*SeccompProfile", "The seccomp profile."),
        F(12, "appArmorProfile", "*AppArmorProfile", "The AppArmor profile."),
    ]),
    Message("core.v1.SleepAction", "Sleeps.", [
        F(1, "seconds", "int64", "How long.", required=True),
    ]),
    Message("core.v1.TCPSocketAction", "Opens a TCP connection.", [
        F(1, "port", "IntOrString", "The port: a number or a container port's name.", required=True),
        F(2, "host", "string", "The host (default: the pod IP)."),
    ]),
    Message("core.v1.VolumeDevice", "A block device for a container.", [
        F(1, "name", "string", "The volume claim's name in the pod.", required=True),
        F(2, "devicePath", "string", "The device's path in the container.", required=True),
    ]),
    Message("core.v1.VolumeMount", "Mounts a volume into a container.", [
        F(1, "name", "string", "The volume's name in the pod.", required=True),
        F(2, "readOnly", "bool", "Mount read-only."),
        F(7, "recursiveReadOnly", "*string", "Disabled, IfPossible or Enabled: read-only for submounts too."),
        F(3, "mountPath", "string", "Where in the container.", required=True),
        F(4, "subPath", "string", "A path in the volume to mount instead of its root."),
        F(5, "mountPropagation", "*string", "None (default), HostToContainer or Bidirectional."),
        F(6, "subPathExpr", "string", "Like subPath, with $(VAR) expanded from the environment."),
    ]),
    Message("core.v1.VolumeMountStatus", "The state of a volume mount.", [
        F(1, "name", "string", "The volume's name.", required=True),
        F(2, "mountPath", "string", "Where it is mounted.", required=True),
        F(3, "readOnly", "bool", "Whether it is read-only."),
        F(4, "recursiveReadOnly", "*string", "Whether submounts are read-only too."),
    ]),
    Message("core.v1.WindowsSecurityContextOptions", "Windows-specific security settings.", [
        F(1, "gmsaCredentialSpecName", "*string", "The GMSA credential spec's name."),
        F(2, "gmsaCredentialSpec", "*string", "The GMSA credential spec."),
        F(3, "runAsUserName", "*string", "The user name to run as."),
        F(4, "hostProcess", "*bool", "Run as a host process."),
    ]),
]
