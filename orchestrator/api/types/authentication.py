"""authentication.k8s.io/v1: TokenRequest (POST serviceaccounts/NAME/token; `kubectl create token`) and
SelfSubjectReview (`kubectl auth whoami`).

Facts from k8s.io/api authentication/v1 generated.proto and types.go: field numbers, JSON names
(BoundObjectReference's `uid` is proto field uID), omitempty and pointers. The descriptions are ours.
"""

from __future__ import annotations

from orchestrator.api.types.model import F, Message

MESSAGES = [
    Message("authentication.v1.BoundObjectReference", "The object a token is bound to.", [
        F(1, "kind", "string", "Pod or Secret."),
        F(2, "apiVersion", "string", "The referent's API version (v1)."),
        F(3, "name", "string", "The referent's name."),
        F(4, "uid", "string", "The referent's uid (checked when given)."),
    ]),
    Message("authentication.v1.SelfSubjectReview", "Who the server takes the caller to be.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "status", "SelfSubjectReviewStatus", "The caller's user."),
    ], gvk=("authentication.k8s.io", "v1", "SelfSubjectReview")),
    Message("authentication.v1.SelfSubjectReviewStatus", "The answer of a SelfSubjectReview.", [
        F(1, "userInfo", "UserInfo", "The caller's user."),
    ]),
    Message("authentication.v1.UserInfo", "A user as the server authenticated it.", [
        F(1, "username", "string", "The user's name."),
        F(2, "uid", "string", "The user's uid."),
        F(3, "groups", "[]string", "The user's groups.", list_type="atomic"),
    ]),
    Message("authentication.v1.TokenRequest", "Asks for a token of a service account.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "spec", "TokenRequestSpec", "What kind of token.", required=True),
        F(3, "status", "TokenRequestStatus", "The token."),
    ], gvk=("authentication.k8s.io", "v1", "TokenRequest")),
    Message("authentication.v1.TokenRequestSpec", "The parameters of a token request.", [
        F(1, "audiences", "[]string", "Who the token is for (default: the API server).", list_type="atomic"),
        F(4, "expirationSeconds", "*int64", "How long the token is valid (default 3600, at least 600)."),
        F(3, "boundObjectRef", "*BoundObjectReference", "The object the token lives only as long as."),
    ]),
    Message("authentication.v1.TokenRequestStatus", "The token issued.", [
        F(1, "token", "string", "The bearer token.", required=True),
        F(2, "expirationTimestamp", "Time", "When the token expires.", required=True),
    ]),
]
