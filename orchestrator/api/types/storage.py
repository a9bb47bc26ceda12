"""storage.k8s.io/v1: StorageClass.

Facts from k8s.io/api storage/v1 at v0.33: field numbers from generated.proto; JSON names, omitempty,
pointers and list/map markers from types.go. The descriptions are ours.
"""

from __future__ import annotations

from orchestrator.api.types.model import F, Message

MESSAGES = [
    Message("storage.v1.StorageClass", "A class of storage that volumes can be provisioned from.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "provisioner", "string", "The volume plugin that provisions volumes.", required=True),
        F(3, "parameters", "map[string]string", "Parameters for the provisioner."),
        F(4, "reclaimPolicy", "*string", "Delete (default) or Retain: what happens to a released volume."),
        F(5, "mountOptions", "[]string", "Mount options of the provisioned volumes.", list_type="atomic"),
        F(6, "allowVolumeExpansion", "*bool", "Whether claims may grow."),
        F(7, "volumeBindingMode", "*string", "Immediate (default) or WaitForFirstConsumer."),
        F(8, "allowedTopologies", "[]core.v1.TopologySelectorTerm", "Where volumes may be provisioned.",
          list_type="atomic"),
    ], gvk=("storage.k8s.io", "v1", "StorageClass")),
]
