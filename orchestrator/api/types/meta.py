"""meta/v1: the metadata every object carries, selectors, owner references, managedFields,
delete options and Status.

Facts from k8s.io/apimachinery pkg/apis/meta/v1 at v0.33: field numbers from generated.proto; JSON names, omitempty,
pointers and list/map markers from types.go. The descriptions are ours.
"""

from __future__ import annotations

from orchestrator.api.types.model import F, Message

MESSAGES = [
    Message("meta.v1.Condition", "One aspect of an object's current state, as observed by its controller.", [
        F(1, "type", "string", "The condition's name, in CamelCase (e.g. Available).", required=True),
        F(2, "status", "string", "True, False or Unknown.", required=True),
        F(3, "observedGeneration", "int64", "The metadata.generation this condition was computed from."),
        F(4, "lastTransitionTime", "Time", "When the status last changed.", required=True),
        F(5, "reason", "string", "A CamelCase word for why the condition is in this state.", required=True),
        F(6, "message", "string", "Human-readable details.", required=True),
    ]),
    Message("meta.v1.DeleteOptions", "Options of a DELETE request.", [
        F(1, "gracePeriodSeconds", "*int64", "Seconds to wait before the object is deleted; 0 deletes at once."),
        F(2, "preconditions", "*Preconditions", "What must still hold for the deletion to go ahead."),
        F(3, "orphanDependents", "*bool", "Deprecated: use propagationPolicy. Whether dependents are orphaned."),
        F(4, "propagationPolicy", "*string", "How dependents are garbage collected: Orphan, Background or Foreground."),
        F(5, "dryRun", "[]string", "\"All\" to check the request without storing anything.", list_type="atomic"),
        F(6, "ignoreStoreReadErrorWithClusterBreakingPotential", "*bool",
          "Delete an object even when it cannot be read from storage (dangerous)."),
    ], gvk=("", "v1", "DeleteOptions")),
    Message("meta.v1.FieldSelectorRequirement", "One requirement on a field's value.", [
        F(1, "key", "string", "The field path the requirement applies to.", required=True),
        F(2, "operator", "string", "In, NotIn, Exists or DoesNotExist.", required=True),
        F(3, "values", "[]string", "The values for In and NotIn; empty for Exists and DoesNotExist.",
          list_type="atomic"),
    ]),
    Message("meta.v1.LabelSelector",
            "Selects objects by their labels; all requirements are ANDed. An empty selector matches everything.", [
        F(1, "matchLabels", "map[string]string",
          "Label pairs that must all be present (each is a key In [value] requirement)."),
        F(2, "matchExpressions", "[]LabelSelectorRequirement", "Requirements on label keys and values.",
          list_type="atomic"),
    ], atomic=True),
    Message("meta.v1.LabelSelectorRequirement", "One requirement on a label.", [
        F(1, "key", "string", "The label key.", required=True),
        F(2, "operator", "string", "In, NotIn, Exists or DoesNotExist.", required=True),
        F(3, "values", "[]string", "The values for In and NotIn; must be empty for Exists and DoesNotExist.",
          list_type="atomic"),
    ]),
    Message("meta.v1.ListMeta", "Metadata of a list of objects.", [
        F(1, "selfLink", "string", "Deprecated and always empty."),
        F(2, "resourceVersion", "string", "The store's version at which the list was read; a watch can start from it."),
        F(3, "continue", "string", "A token that fetches the next page when the list was limited."),
        F(4, "remainingItemCount", "*int64", "How many items are left after this page, if known."),
    ]),
    Message("meta.v1.ManagedFieldsEntry", "Which fields one manager owns, and through which operation it set them.", [
        F(1, "manager", "string", "The name of the managing workflow (the request's fieldManager)."),
        F(2, "operation", "string", "Apply or Update."),
        F(3, "apiVersion", "string", "The API version the field set is expressed in."),
        F(4, "time", "*Time", "When this manager last changed the object."),
        F(6, "fieldsType", "string", "The format of the field set; always FieldsV1."),
        F(7, "fieldsV1", "*FieldsV1", "The owned fields, as a FieldsV1 tree."),
        F(8, "subresource", "string", "The subresource the manager wrote through (e.g. status), or empty."),
    ]),
    Message("meta.v1.ObjectMeta", "Metadata that every persisted object carries.", [
        F(1, "name", "string", "Unique within a namespace (or the cluster, for cluster-scoped kinds); cannot change."),
        F(2, "generateName", "string", "A prefix from which the server makes a unique name when name is empty."),
        F(3, "namespace", "string", "The namespace the object lives in; empty for cluster-scoped objects."),
        F(4, "selfLink", "string", "Deprecated and always empty."),
        F(5, "uid", "string", "Unique in time and space, set by the server on create."),
        F(6, "resourceVersion", "string",
          "An opaque version, changed on every write; used for optimistic concurrency and watches."),
        F(7, "generation", "int64", "Counts changes to the desired state (spec); set by the server."),
        F(8, "creationTimestamp", "Time", "When the object was created; set by the server."),
        F(9, "deletionTimestamp", "*Time",
          "When deletion was requested; the object goes once its finalizers are removed."),
        F(10, "deletionGracePeriodSeconds", "*int64",
          "Seconds allowed for graceful termination once deletion was requested."),
        F(11, "labels", "map[string]string", "String pairs to organise and select objects."),
        F(12, "annotations", "map[string]string",
          "Arbitrary string metadata for tools and people; not used for selection."),
        F(13, "ownerReferences", "[]OwnerReference",
          "The objects this one depends on; when all are gone it is garbage collected.", map_keys=("uid",),
          patch="merge", merge_key="uid"),
        F(14, "finalizers", "[]string", "Keys that must all be removed before the object is deleted.", list_type="set",
          patch="merge"),
        F(17, "managedFields", "[]ManagedFieldsEntry",
          "Which fields each manager owns (server-side apply); maintained by the server.", list_type="atomic"),
    ]),
    Message("meta.v1.OwnerReference", "A reference to an owning object in the same namespace.", [
        F(5, "apiVersion", "string", "The owner's API version.", required=True),
        F(1, "kind", "string", "The owner's kind.", required=True),
        F(3, "name", "string", "The owner's name.", required=True),
        F(4, "uid", "string", "The owner's uid.", required=True),
        F(6, "controller", "*bool", "Whether the owner is the managing controller; at most one owner may be."),
        F(7, "blockOwnerDeletion", "*bool", "Whether foreground deletion of the owner waits for this object."),
    ], atomic=True),
    Message("meta.v1.Preconditions", "Must hold for an operation to proceed.", [
        F(1, "uid", "*string", "The object's uid."),
        F(2, "resourceVersion", "*string", "The object's resourceVersion."),
    ]),
    Message("meta.v1.Status", "The result of an operation that does not return an object, or an error.", [
        F(1, "metadata", "ListMeta", "Standard list metadata."),
        F(2, "status", "string", "Success or Failure."),
        F(3, "message", "string", "Human-readable description of the result."),
        F(4, "reason", "string", "A CamelCase word for why the operation failed (e.g. NotFound)."),
        F(5, "details", "*StatusDetails", "More about the reason; depends on it.", list_type="atomic"),
        F(6, "code", "int32", "The HTTP status code."),
    ], gvk=("", "v1", "Status")),
    Message("meta.v1.StatusCause", "One cause of an error.", [
        F(1, "reason", "string", "A machine-readable description of the cause (e.g. FieldValueRequired)."),
        F(2, "message", "string", "Human-readable description of the cause."),
        F(3, "field", "string", "The field that caused the error, as a path (e.g. spec.containers[0].name)."),
    ]),
    Message("meta.v1.StatusDetails", "The details of a Status's reason.", [
        F(1, "name", "string", "The name of the object concerned."),
        F(2, "group", "string", "The group of the object concerned."),
        F(3, "kind", "string", "The kind (or resource) of the object concerned."),
        F(6, "uid", "string", "The uid of the object concerned."),
        F(4, "causes", "[]StatusCause", "The individual causes, e.g. one per invalid field.", list_type="atomic"),
        F(5, "retryAfterSeconds", "int32", "Seconds to wait before trying again."),
    ]),
]
