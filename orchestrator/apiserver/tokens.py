"""Service account tokens in the API server (adapter): issuing them (TokenRequest), accepting them
as bearer tokens, and the ServiceAccount admission of new pods. The rules are in the pure modules
serviceaccounts.py (tokens, TokenRequest) and serviceaccount_admission.py (pods); this one looks
objects up and answers.

Lookups come from the watch cache (Store.lookup), so checking a token on every request costs no kv
round trip while its account and pod exist; only an object the cache lacks (just created, or gone)
is read from the kv store. Without a signing key (no --service-account-key-file) the server issues
no tokens (TokenRequest answers 503), accepts none, and mounts none into pods.
"""

from __future__ import annotations

import logging
import secrets
import time

from orchestrator.api import types
from orchestrator.api.resources import BY_PATH
from orchestrator.apiserver import auth, errors, serviceaccount_admission, serviceaccounts
from orchestrator.apiserver.request import Request, Route
from orchestrator.apiserver.storage import Store

log = logging.getLogger("ketch.apiserver.tokens")

ACCOUNTS = BY_PATH[("", "v1", "serviceaccounts")]
PODS = BY_PATH[("", "v1", "pods")]
SECRETS = BY_PATH[("", "v1", "secrets")]
BOUND = {"Pod": PODS, "Secret": SECRETS}
TOKEN_REQUEST = types.kind("authentication.k8s.io", "v1", "TokenRequest")


def request_error(err: serviceaccounts.TokenRequestError, name: str) -> errors.APIError:
    """A refused TokenRequest as Kubernetes' Status."""
    if err.code == 422:
        shown = "" if err.value is None else f"Invalid value: {err.value}: "
        return errors.APIError(422, "Invalid", f'TokenRequest.authentication.k8s.io "{name}" is invalid: '
                               f"{err.field}: {shown}{err.message}", {
                                   "name": name, "group": "authentication.k8s.io", "kind": "TokenRequest",
                                   "causes": [{"reason": "FieldValueInvalid" if shown else "FieldValueRequired",
                                               "message": f"{shown}{err.message}", "field": err.field}]})
    reason = {400: "BadRequest", 404: "NotFound", 409: "Conflict"}[err.code]
    return errors.APIError(err.code, reason, err.message)


class ServiceAccountTokens:
    def __init__(self, store: Store, key=None) -> None:
        """key: the service-account signing key (serviceaccounts.load_key), or None."""
        self.store, self.key = store, key
        self.public_key = key.public_key() if key is not None else None

    async def _find(self, resource, namespace: str, name: str) -> dict | None:
        if not name:
            return None
        try:
            return await self.store.lookup(resource, namespace, name)
        except errors.APIError as err:
            if err.code == 404:
                return None
            raise

    # --- authentication -------------------------------------------------------------------------

    async def authenticate(self, token: str) -> auth.User | None:
        """The service account a token speaks for, or None (the caller answers 401)."""
        if self.public_key is None or not serviceaccounts.looks_like_jwt(token):
            return None
        now = time.time()
        try:
            claims = serviceaccounts.verify(self.public_key, token, now)
            account = await self._find(ACCOUNTS, claims.namespace, claims.service_account)
            pod = await self._find(PODS, claims.namespace, claims.pod)
            secret = await self._find(SECRETS, claims.namespace, claims.secret)
            serviceaccounts.check_bound(claims, account, pod, secret, now)
        except serviceaccounts.TokenError as err:
            log.info("event=token_refused reason=%r", str(err))
            return None
        return auth.User(claims.user, claims.service_account_uid, claims.groups)

    # --- TokenRequest ---------------------------------------------------------------------------

    async def create(self, request: Request, route: Route, directive: str) -> None:
        """POST serviceaccounts/NAME/token: 201 with the TokenRequest and its token."""
        if self.key is None:
            raise errors.unavailable("this API server issues no service account tokens (start it with "
                                     "--service-account-key-file)")
        body = await request.body_object(msg=TOKEN_REQUEST, directive=directive)
        if body.get("kind") not in (None, "", "TokenRequest"):
            raise errors.bad_request(f"the body must be a TokenRequest, got {body.get('kind')!r}")
        namespace, name = route.namespace, route.name
        try:
            spec = serviceaccounts.token_spec(body)
        except serviceaccounts.TokenRequestError as err:
            raise request_error(err, name) from None
        account = await self._find(ACCOUNTS, namespace, name)
        if account is None:
            raise errors.not_found(ACCOUNTS, name)
        bound = await self._find(BOUND[spec.bound_kind], namespace, spec.bound_name) if spec.bound_kind else None
        node = request.user.node if request.user is not None else None
        if node is not None:
            why = auth.node_token_refusal(node, spec.bound_kind, spec.bound_name, spec.bound_uid, bound)
            if why:
                raise errors.APIError(403, "Forbidden", f'serviceaccounts "{name}" is forbidden: {why}',
                                      {"name": name, "kind": "serviceaccounts"})
        try:
            claims = serviceaccounts.bound_claims(account, spec, bound)
        except serviceaccounts.TokenRequestError as err:
            raise request_error(err, name) from None
        now = time.time()
        token, expires = serviceaccounts.issue(self.key, claims, now, spec.expiration_s, spec.audiences)
        if spec.expiration_s > serviceaccounts.MAX_EXPIRY_S:
            request.warn([f"requested expiration of {spec.expiration_s} seconds shortened to "
                          f"{serviceaccounts.MAX_EXPIRY_S} seconds"])
        await request.json(201, serviceaccounts.token_request_answer(account, spec, token, expires, now))

    # --- admission ------------------------------------------------------------------------------

    async def admit_pod(self, pod: dict) -> None:
        """The ServiceAccount admission of a pod being created (serviceaccount_admission.py)."""
        spec = pod.get("spec")
        if not isinstance(spec, dict):
            return
        namespace = (pod.get("metadata") or {}).get("namespace") or ""
        account = await self._find(ACCOUNTS, namespace, serviceaccount_admission.account_name(spec))
        suffix = serviceaccount_admission.suffix_from(
            [secrets.randbelow(len(serviceaccount_admission.NAME_ALPHABET))
             for _ in range(serviceaccount_admission.SUFFIX_LENGTH)])
        serviceaccount_admission.admit_pod(pod, account, suffix, mount_token=self.key is not None)
