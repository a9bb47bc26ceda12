"""authorization.k8s.io/v1: SelfSubjectAccessReview (kubectl auth can-i).

Facts from k8s.io/api authorization/v1 at v0.33: field numbers from generated.proto; JSON names, omitempty,
pointers and list/map markers from types.go. The descriptions are ours.
"""

from __future__ import annotations

from orchestrator.api.types.model import F, Message

MESSAGES = [
    Message("authorization.v1.FieldSelectorAttributes", "A field selector in an access review.", [
        F(1, "rawSelector", "string", "The selector as text."),
        F(2, "requirements", "[]meta.v1.FieldSelectorRequirement", "The parsed requirements.", list_type="atomic"),
    ]),
    Message("authorization.v1.LabelSelectorAttributes", "A label selector in an access review.", [
        F(1, "rawSelector", "string", "The selector as text."),
        F(2, "requirements", "[]meta.v1.LabelSelectorRequirement", "The parsed requirements.", list_type="atomic"),
    ]),
    Message("authorization.v1.NonResourceAttributes", "A request to a non-resource path.", [
        F(1, "path", "string", "The URL path."),
        F(2, "verb", "string", "The HTTP verb, lowercased."),
    ]),
    Message("authorization.v1.ResourceAttributes", "A request on a resource.", [
        F(1, "namespace", "string", "The namespace (empty: all namespaces or cluster-scoped)."),
        F(2, "verb", "string", "get, list, watch, create, update, patch, delete, ..."),
        F(3, "group", "string", "The API group."),
        F(4, "version", "string", "The API version."),
        F(5, "resource", "string", "The resource (plural)."),
        F(6, "subresource", "string", "The subresource."),
        F(7, "name", "string", "The object's name (empty: any)."),
        F(8, "fieldSelector", "*FieldSelectorAttributes", "A field selector on the request."),
        F(9, "labelSelector", "*LabelSelectorAttributes", "A label selector on the request."),
    ]),
    Message("authorization.v1.SelfSubjectAccessReview", "Asks whether the current user may do something.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "spec", "SelfSubjectAccessReviewSpec", "The request to check.", required=True),
        F(3, "status", "SubjectAccessReviewStatus", "The answer."),
    ], gvk=("authorization.k8s.io", "v1", "SelfSubjectAccessReview")),
    Message("authorization.v1.SelfSubjectAccessReviewSpec", "The request to check; exactly one of the attributes.", [
        F(1, "resourceAttributes", "*ResourceAttributes", "A request on a resource."),
        F(2, "nonResourceAttributes", "*NonResourceAttributes", "A request to a non-resource path."),
    ]),
    Message("authorization.v1.SubjectAccessReviewStatus", "The answer to an access review.", [
        F(1, "allowed", "bool", "Whether the request is allowed.", required=True),
        F(4, "denied", "bool", "Whether it is explicitly denied."),
        F(2, "reason", "string", "Why."),
        F(3, "evaluationError", "string", "An error met while checking."),
    ]),
]
