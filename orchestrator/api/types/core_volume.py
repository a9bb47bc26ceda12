"""core/v1: volumes (the sources Ketch describes; the deprecated in-tree cloud and
network plugins are left out), PersistentVolume and PersistentVolumeClaim.

Facts from k8s.io/api core/v1 at v0.33: field numbers from generated.proto; JSON names, omitempty,
pointers and list/map markers from types.go. The descriptions are ours.
"""

from __future__ import annotations

from orchestrator.api.types.model import F, Message

MESSAGES = [
    Message("core.v1.CSIPersistentVolumeSource", "A volume provided by a CSI driver.", [
        F(1, "driver", "string", "The driver's name.", required=True),
        F(2, "volumeHandle", "string", "The volume's ID at the driver.", required=True),
        F(3, "readOnly", "bool", "Mount read-only."),
        F(4, "fsType", "string", "The file system type (e.g. ext4)."),
        F(5, "volumeAttributes", "map[string]string", "Driver-specific attributes."),
        F(6, "controllerPublishSecretRef", "*SecretReference", "Secret for ControllerPublishVolume."),
        F(7, "nodeStageSecretRef", "*SecretReference", "Secret for NodeStageVolume."),
        F(8, "nodePublishSecretRef", "*SecretReference", "Secret for NodePublishVolume."),
        F(9, "controllerExpandSecretRef", "*SecretReference", "Secret for ControllerExpandVolume."),
        F(10, "nodeExpandSecretRef", "*SecretReference", "Secret for NodeExpandVolume."),
    ]),
    Message("core.v1.CSIVolumeSource", "An inline volume provided by a CSI driver.", [
        F(1, "driver", "string", "The driver's name.", required=True),
        F(2, "readOnly", "*bool", "Mount read-only."),
        F(3, "fsType", "*string", "The file system type."),
        F(4, "volumeAttributes", "map[string]string", "Driver-specific attributes."),
        F(5, "nodePublishSecretRef", "*LocalObjectReference", "Secret for NodePublishVolume."),
    ]),
    Message("core.v1.ClusterTrustBundleProjection", "Certificates from ClusterTrustBundles, as a file.", [
        F(1, "name", "*string", "One bundle by name."),
        F(2, "signerName", "*string", "Bundles of this signer."),
        F(3, "labelSelector", "*meta.v1.LabelSelector", "Bundles with these labels."),
        F(5, "optional", "*bool", "Whether the bundles may be missing."),
        F(4, "path", "string", "The file's path in the volume.", required=True),
    ]),
    Message("core.v1.ConfigMapProjection", "A ConfigMap's keys as files in a projected volume.", [
        F(1, "localObjectReference", "LocalObjectReference", inline=True),
        F(2, "items", "[]KeyToPath", "Which keys, to which paths (default: all, by key).", list_type="atomic"),
        F(4, "optional", "*bool", "Whether the ConfigMap may be missing."),
    ]),
    Message("core.v1.ConfigMapVolumeSource", "A ConfigMap's keys as files.", [
        F(1, "localObjectReference", "LocalObjectReference", inline=True),
        F(2, "items", "[]KeyToPath", "Which keys, to which paths (default: all, by key).", list_type="atomic"),
        F(3, "defaultMode", "*int32", "The files' mode (default 0644)."),
        F(4, "optional", "*bool", "Whether the ConfigMap may be missing."),
    ]),
    Message("core.v1.DownwardAPIProjection", "Pod fields as files in a projected volume.", [
        F(1, "items", "[]DownwardAPIVolumeFile", "The files.", list_type="atomic"),
    ]),
    Message("core.v1.DownwardAPIVolumeFile", "A file holding a pod field or container resource.", [
        F(1, "path", "string", "The file's path in the volume.", required=True),
        F(2, "fieldRef", "*ObjectFieldSelector", "A pod field."),
        F(3, "resourceFieldRef", "*ResourceFieldSelector", "A container resource."),
        F(4, "mode", "*int32", "The file's mode."),
    ]),
    Message("core.v1.DownwardAPIVolumeSource", "Pod fields as files.", [
        F(1, "items", "[]DownwardAPIVolumeFile", "The files.", list_type="atomic"),
        F(2, "defaultMode", "*int32", "The files' mode (default 0644)."),
    ]),
    Message("core.v1.EmptyDirVolumeSource", "A directory that starts empty and lives as long as the pod.", [
        F(1, "medium", "string", "\"\" (the node's disk) or Memory (tmpfs)."),
        F(2, "sizeLimit", "*Quantity", "The most it may hold."),
    ]),
    Message("core.v1.EphemeralVolumeSource", "A volume claim created for the pod and deleted with it.", [
        F(1, "volumeClaimTemplate", "*PersistentVolumeClaimTemplate", "The claim to create."),
    ]),
    Message("core.v1.GitRepoVolumeSource", "A git repository cloned into a directory (deprecated).", [
        F(1, "repository", "string", "The repository URL.", required=True),
        F(2, "revision", "string", "The commit to check out."),
        F(3, "directory", "string", "The directory to clone into."),
    ]),
    Message("core.v1.HostPathVolumeSource", "A file or directory of the node.", [
        F(1, "path", "string", "Its path on the node.", required=True),
        F(2, "type", "*string",
          "What must exist at the path: \"\" (no check), DirectoryOrCreate, Directory, FileOrCreate, File, ..."),
    ]),
    Message("core.v1.ImageVolumeSource", "An OCI image's content, mounted read-only.", [
        F(1, "reference", "string", "The image."),
        F(2, "pullPolicy", "string", "Always, Never or IfNotPresent."),
    ]),
    Message("core.v1.KeyToPath", "Maps a key to a file.", [
        F(1, "key", "string", "The key.", required=True),
        F(2, "path", "string", "The file's relative path.", required=True),
        F(3, "mode", "*int32", "The file's mode."),
    ]),
    Message("core.v1.LocalVolumeSource", "A local disk or directory of a node.", [
        F(1, "path", "string", "Its path on the node.", required=True),
        F(2, "fsType", "*string", "The file system type, for block devices."),
    ]),
    Message("core.v1.ModifyVolumeStatus", "The state of a change of volume attributes class.", [
        F(1, "targetVolumeAttributesClassName", "string", "The class being changed to."),
        F(2, "status", "string", "Pending, InProgress or Infeasible.", required=True),
    ]),
    Message("core.v1.NFSVolumeSource", "An NFS export.", [
        F(1, "server", "string", "The NFS server.", required=True),
        F(2, "path", "string", "The exported path.", required=True),
        F(3, "readOnly", "bool", "Mount read-only."),
    ]),
    Message("core.v1.PersistentVolume",
            "A piece of storage in the cluster, provisioned by an administrator or a StorageClass.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "spec", "PersistentVolumeSpec", "The desired state."),
        F(3, "status", "PersistentVolumeStatus", "The observed state."),
    ], gvk=("", "v1", "PersistentVolume")),
    Message("core.v1.PersistentVolumeClaim", "A request for storage by a user.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "spec", "PersistentVolumeClaimSpec", "The desired state."),
        F(3, "status", "PersistentVolumeClaimStatus", "The observed state."),
    ], gvk=("", "v1", "PersistentVolumeClaim")),
    Message("core.v1.PersistentVolumeClaimCondition", "One aspect of a claim's state.", [
        F(1, "type", "string", "The condition's name.", required=True),
        F(2, "status", "string", "True, False or Unknown.", required=True),
        F(3, "lastProbeTime", "Time", "When the condition was last checked."),
        F(4, "lastTransitionTime", "Time", "When the status last changed."),
        F(5, "reason", "string", "A CamelCase word for the last change."),
        F(6, "message", "string", "Human-readable details."),
    ]),
    Message("core.v1.PersistentVolumeClaimSpec", "The storage a claim asks for.", [
        F(1, "accessModes", "[]string", "ReadWriteOnce, ReadOnlyMany, ReadWriteMany or ReadWriteOncePod.",
          list_type="atomic"),
        F(4, "selector", "*meta.v1.LabelSelector", "Which volumes may be bound."),
        F(2, "resources", "VolumeResourceRequirements", "How much storage."),
        F(3, "volumeName", "string", "A specific volume to bind."),
        F(5, "storageClassName", "*string", "The StorageClass to provision from."),
        F(6, "volumeMode", "*string", "Filesystem (default) or Block."),
        F(7, "dataSource", "*TypedLocalObjectReference",
          "An object to populate the volume from (a snapshot or claim)."),
        F(8, "dataSourceRef", "*TypedObjectReference", "An object to populate the volume from, in any API group."),
        F(9, "volumeAttributesClassName", "*string", "The VolumeAttributesClass to use."),
    ]),
    Message("core.v1.PersistentVolumeClaimStatus", "The observed state of a claim.", [
        F(1, "phase", "string", "Pending, Bound or Lost."),
        F(2, "accessModes", "[]string", "The bound volume's access modes.", list_type="atomic"),
        F(3, "capacity", "map[string]Quantity", "The bound volume's size."),
        F(4, "conditions", "[]PersistentVolumeClaimCondition", "The latest observations of the claim's state.",
          map_keys=("type",), patch="merge", merge_key="type"),
        F(5, "allocatedResources", "map[string]Quantity", "The storage allocated, including a resize in progress."),
        F(7, "allocatedResourceStatuses", "map[string]string", "The state of each resize.", map_type="granular"),
        F(8, "currentVolumeAttributesClassName", "*string", "The VolumeAttributesClass in use."),
        F(9, "modifyVolumeStatus", "*ModifyVolumeStatus", "The state of a change of class."),
    ]),
    Message("core.v1.PersistentVolumeClaimTemplate", "The claim an ephemeral volume creates.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Metadata of the claim."),
        F(2, "spec", "PersistentVolumeClaimSpec", "The claim's spec.", required=True),
    ]),
    Message("core.v1.PersistentVolumeClaimVolumeSource", "Mounts a claimed volume.", [
        F(1, "claimName", "string", "The claim, in the pod's namespace.", required=True),
        F(2, "readOnly", "bool", "Mount read-only."),
    ]),
    Message("core.v1.PersistentVolumeSource", "Where a persistent volume's storage is; exactly one member.", [
        F(3, "hostPath", "*HostPathVolumeSource", "A directory of a node (single-node clusters and tests)."),
        F(5, "nfs", "*NFSVolumeSource", "An NFS export."),
        F(20, "local", "*LocalVolumeSource", "A local disk of a node."),
        F(22, "csi", "*CSIPersistentVolumeSource", "A CSI driver's volume."),
    ]),
    Message("core.v1.PersistentVolumeSpec", "The desired state of a persistent volume.", [
        F(1, "capacity", "map[string]Quantity", "The volume's size."),
        F(2, "persistentVolumeSource", "PersistentVolumeSource", inline=True),
        F(3, "accessModes", "[]string", "How the volume can be mounted.", list_type="atomic"),
        F(4, "claimRef", "*ObjectReference", "The claim it is bound to."),
        F(5, "persistentVolumeReclaimPolicy", "string", "Retain, Delete or Recycle: what happens when its claim goes."),
        F(6, "storageClassName", "string", "Its StorageClass."),
        F(7, "mountOptions", "[]string", "Mount options.", list_type="atomic"),
        F(8, "volumeMode", "*string", "Filesystem (default) or Block."),
        F(9, "nodeAffinity", "*VolumeNodeAffinity", "Which nodes can reach it."),
        F(10, "volumeAttributesClassName", "*string", "Its VolumeAttributesClass."),
    ]),
    Message("core.v1.PersistentVolumeStatus", "The observed state of a persistent volume.", [
        F(1, "phase", "string", "Available, Bound, Released or Failed."),
        F(2, "message", "string", "Human-readable details."),
        F(3, "reason", "string", "A CamelCase word for a failure."),
        F(4, "lastPhaseTransitionTime", "*Time", "When the phase last changed."),
    ]),
    Message("core.v1.ProjectedVolumeSource", "Several sources in one directory.", [
        F(1, "sources", "[]VolumeProjection", "The sources.", keep_zero=True, list_type="atomic"),
        F(2, "defaultMode", "*int32", "The files' mode (default 0644)."),
    ]),
    Message("core.v1.SecretProjection", "A Secret's keys as files in a projected volume.", [
        F(1, "localObjectReference", "LocalObjectReference", inline=True),
        F(2, "items", "[]KeyToPath", "Which keys, to which paths (default: all, by key).", list_type="atomic"),
        F(4, "optional", "*bool", "Whether the Secret may be missing."),
    ]),
    Message("core.v1.SecretReference", "Names a Secret in any namespace.", [
        F(1, "name", "string", "The Secret's name."),
        F(2, "namespace", "string", "The Secret's namespace."),
    ], atomic=True),
    Message("core.v1.SecretVolumeSource", "A Secret's keys as files.", [
        F(1, "secretName", "string", "The Secret, in the pod's namespace."),
        F(2, "items", "[]KeyToPath", "Which keys, to which paths (default: all, by key).", list_type="atomic"),
        F(3, "defaultMode", "*int32", "The files' mode (default 0644)."),
        F(4, "optional", "*bool", "Whether the Secret may be missing."),
    ]),
    Message("core.v1.ServiceAccountTokenProjection", "A service account token, as a file.", [
        F(1, "audience", "string", "The token's audience (default: the API server)."),
        F(2, "expirationSeconds", "*int64", "The token's lifetime (default 1 hour)."),
        F(3, "path", "string", "The file's path in the volume.", required=True),
    ]),
    Message("core.v1.TypedLocalObjectReference", "Names an object of any kind in the same namespace.", [
        F(1, "apiGroup", "*string", "The object's API group (empty: core)."),
        F(2, "kind", "string", "The object's kind.", required=True),
        F(3, "name", "string", "The object's name.", required=True),
    ], atomic=True),
    Message("core.v1.TypedObjectReference", "Names an object of any kind, in any namespace.", [
        F(1, "apiGroup", "*string", "The object's API group (empty: core)."),
        F(2, "kind", "string", "The object's kind.", required=True),
        F(3, "name", "string", "The object's name.", required=True),
        F(4, "namespace", "*string", "The object's namespace."),
    ]),
    Message("core.v1.Volume", "A named volume that a pod's containers can mount.", [
        F(1, "name", "string", "The volume's name, unique in the pod.", required=True),
        F(2, "volumeSource", "VolumeSource", inline=True),
    ]),
    Message("core.v1.VolumeNodeAffinity", "The nodes that can reach a volume.", [
        F(1, "required", "*NodeSelector", "Nodes must match."),
    ]),
    Message("core.v1.VolumeProjection", "One source of a projected volume.", [
        F(1, "secret", "*SecretProjection", "A Secret."),
        F(2, "downwardAPI", "*DownwardAPIProjection", "Pod fields."),
        F(3, "configMap", "*ConfigMapProjection", "A ConfigMap."),
        F(4, "serviceAccountToken", "*ServiceAccountTokenProjection", "A service account token."),
        F(5, "clusterTrustBundle", "*ClusterTrustBundleProjection", "Trusted certificates."),
    ]),
    Message("core.v1.VolumeResourceRequirements", "The storage a claim asks for.", [
        F(1, "limits", "map[string]Quantity", "The most storage."),
        F(2, "requests", "map[string]Quantity", "The least storage."),
    ]),
    Message("core.v1.VolumeSource", "Where a volume's content comes from; exactly one member.", [
        F(1, "hostPath", "*HostPathVolumeSource", "A file or directory of the node."),
        F(2, "emptyDir", "*EmptyDirVolumeSource", "An empty directory that lives as long as the pod."),
        F(5, "gitRepo", "*GitRepoVolumeSource", "A git repository (deprecated; no kubelet here runs it)."),
        F(6, "secret", "*SecretVolumeSource", "A Secret's keys as files."),
        F(7, "nfs", "*NFSVolumeSource", "An NFS export."),
        F(10, "persistentVolumeClaim", "*PersistentVolumeClaimVolumeSource", "A claimed persistent volume."),
        F(16, "downwardAPI", "*DownwardAPIVolumeSource", "Pod fields as files."),
        F(19, "configMap", "*ConfigMapVolumeSource", "A ConfigMap's keys as files."),
        F(26, "projected", "*ProjectedVolumeSource", "Several sources in one directory."),
        F(28, "csi", "*CSIVolumeSource", "An inline CSI volume."),
        F(29, "ephemeral", "*EphemeralVolumeSource", "A claim created for the pod and deleted with it."),
        F(30, "image", "*ImageVolumeSource", "An OCI image's content."),
    ]),
]
