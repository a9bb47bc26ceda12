"""API errors as Kubernetes `Status` objects: kubectl prints `Error from server (<reason>): <message>`.

The messages follow Kubernetes' wording, because users (and kubectl's own code) recognise them.
"""

from __future__ import annotations

from typing import Any

from orchestrator.api.resources import Resource


class APIError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details or {}
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            out["details"] = self.details
        return out


def _details(resource: Resource | None, name: str | None) -> dict:
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if resource is not None:
        if resource.group:
            out["group"] = resource.group
        out["kind"] = resource.plural
    return out


def not_found(resource: Resource, name: str) -> APIError:
    return APIError(404, "NotFound", f'{resource.group_resource} "{name}" not found', _details(resource, name))


def no_such_path(path: str) -> APIError:
    return APIError(404, "NotFound", "the server could not find the requested resource", {"causes": [
        {"reason": "UnexpectedServerResponse", "message": f"404 page not found: {path}"}]})


def already_exists(resource: Resource, name: str) -> APIError:
    return APIError(409, "AlreadyExists", f'{resource.group_resource} "{name}" already exists',
                    _details(resource, name))


def conflict(resource: Resource, name: str, why: str = "the object has been modified; please apply your "
             "changes to the latest version and try again") -> APIError:
    return APIError(409, "Conflict", f'Operation cannot be fulfilled on {resource.group_resource} "{name}": {why}',
                    _details(resource, name))


def invalid(resource: Resource, name: str, causes: list[tuple[str, str, str]]) -> APIError:
    """causes: (field, reason, message), e.g. ("spec.containers", "FieldValueRequired", "Required value")."""
    text = "; ".join(f"{field}: {message}" for field, _, message in causes)
    details = {**_details(resource, name),
               "kind": resource.kind,
               "causes": [{"reason": reason, "message": message, "field": field} for field, reason, message in causes]}
    return APIError(422, "Invalid", f'{resource.kind} "{name}" is invalid: {text}', details)


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def forbidden(user: str, verb: str, resource: Resource | str, namespace: str | None, name: str | None = None,
              subresource: str | None = None) -> APIError:
    plural = resource if isinstance(resource, str) else resource.plural
    group = "" if isinstance(resource, str) else resource.group
    named = resource if isinstance(resource, str) else resource.group_resource
    sub = f"/{subresource}" if subresource else ""
    quoted = f' "{name}"' if name else ""
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return APIError(
        403,
        "Forbidden",
        f'{named}{sub}{quoted} is forbidden: User "{user}" cannot {verb} resource '
        f'"{plural}{sub}" in API group "{group}"{scope}',
        {"name": name or "", "group": group, "kind": plural},
    )


def expired(message: str) -> APIError:
    return APIError(410, "Expired", message)


def too_large(limit: int) -> APIError:
    return APIError(413, "RequestEntityTooLarge", f"the request body is larger than the limit of {limit} bytes")


def too_many_requests(retry_after_s: int = 1) -> APIError:
    return APIError(
        429,
        "TooManyRequests",
        "too many requests in flight, please try again later",
        {"retryAfterSeconds": retry_after_s},
        {"retry-after": str(retry_after_s)},
    )


def unavailable(message: str) -> APIError:
    return APIError(503, "ServiceUnavailable", message)


def success(resource: Resource | None = None, name: str | None = None, code: int = 200, uid: str | None = None) -> dict:
    details = _details(resource, name)
    if uid:
        details["uid"] = uid
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}
    if details:
        out["details"] = details
    return out
