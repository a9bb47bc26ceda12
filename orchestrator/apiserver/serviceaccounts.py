"""Service account tokens: bound JWTs as the TokenRequest API issues them, checked on every request.

A token is a JWT (ES256, signed with the API server's service-account key) with Kubernetes'
claims: `iss`, `sub` = system:serviceaccount:NS:NAME, `aud`, `iat`, `nbf`, `exp`, and
`kubernetes.io` = {namespace, serviceaccount {name, uid}, pod or secret {name, uid}}. It
authenticates as user system:serviceaccount:NS:NAME with the groups system:serviceaccounts and
system:serviceaccounts:NS (Kubernetes' rules, pkg/serviceaccount):
- the signature is this cluster's, the issuer is ours, one audience is one the API server accepts;
- the token is inside its lifetime, with a minute of leeway for clocks (go-jose's DefaultLeeway);
- the service account still exists with the uid in the token, and so does the pod or secret the
  token is bound to; an object deleted (deletionTimestamp) more than the leeway ago counts as gone,
  so a terminating pod's token keeps working while the pod shuts down (check_bound).
Everything here is pure: keys, the time and the objects looked up are arguments.

TokenRequest (POST serviceaccounts/NAME/token) is checked as Kubernetes' validation and token
REST do: expirationSeconds of at least 10 minutes and at most 2^32 seconds (422), default 3600;
a bound object of kind Pod or Secret (400 otherwise) that exists (404), whose uid matches the one
given (409) and, for a pod, that runs as this service account (400).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from orchestrator.api import timestamps

ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES = (ISSUER,)  # what the API server accepts, and what a TokenRequest without audiences gets
DEFAULT_EXPIRY_S = 3600
MAX_EXPIRY_S = 48 * 3600  # Ketch's --service-account-max-token-expiration: longer requests are shortened
MIN_EXPIRY_S = 600  # Kubernetes refuses shorter expirationSeconds
LARGEST_EXPIRY_S = 1 << 32  # ... and longer than 2^32 seconds
LEEWAY_S = 60
BOUND_KINDS = ("Pod", "Secret")


class TokenError(ValueError):
    """Not a valid service account token (the caller answers 401)."""


class TokenRequestError(ValueError):
    """A TokenRequest Kubernetes refuses: code 400 (BadRequest), 404 (NotFound), 409 (Conflict) or
    422 (Invalid, with `field`)."""

    def __init__(self, code: int, message: str, field: str = "", value=None) -> None:
        super().__init__(message)
        self.code, self.message, self.field, self.value = code, message, field, value


@dataclass(frozen=True)
class Claims:
    namespace: str
    service_account: str
    service_account_uid: str
    pod: str = ""
    pod_uid: str = ""
    secret: str = ""
    secret_uid: str = ""

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    @property
    def groups(self) -> tuple[str, ...]:
        return ("system:serviceaccounts", f"system:serviceaccounts:{self.namespace}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def load_key(pem: bytes):
    """The private key of a PEM (ValueError if it is not an ECDSA P-256 key: tokens are ES256)."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the service-account key must be an ECDSA P-256 private key (tokens are signed ES256)")
    return key


def looks_like_jwt(token: str) -> bool:
    """Three base64url parts, the first a JSON object: worth a signature check."""
    return token.count(".") == 2 and token.startswith("eyJ")


def clamped_expiry(requested_s: int) -> int:
    return max(MIN_EXPIRY_S, min(MAX_EXPIRY_S, int(requested_s)))


def issue(key, claims: Claims, now: float, expiry_s: int = DEFAULT_EXPIRY_S,
          audiences: tuple[str, ...] = API_AUDIENCES) -> tuple[str, int]:
    """A signed token and its expiry (epoch seconds)."""
    expires = int(now) + clamped_expiry(expiry_s)
    info: dict = {"namespace": claims.namespace,
                  "serviceaccount": {"name": claims.service_account, "uid": claims.service_account_uid}}
    if claims.pod:
        info["pod"] = {"name": claims.pod, "uid": claims.pod_uid}
    elif claims.secret:
        info["secret"] = {"name": claims.secret, "uid": claims.secret_uid}
    payload = {"iss": ISSUER, "sub": claims.user, "aud": list(audiences), "iat": int(now), "nbf": int(now),
               "exp": expires, "kubernetes.io": info}
    header = {"alg": "ES256", "typ": "JWT", "kid": "ketch"}
    signing_input = f"{_b64(json.dumps(header, separators=(',', ':')).encode())}." \
                    f"{_b64(json.dumps(payload, separators=(',', ':')).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS ES256: raw r || s
    return f"{signing_input}.{_b64(signature)}", expires


def verify(public_key, token: str, now: float, audiences: tuple[str, ...] = API_AUDIENCES) -> Claims:
    """The token's claims if its signature, issuer, audience and times are good; TokenError otherwise.
    Whether the objects it names still exist is check_bound's question."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("not a JWT")
    try:
        header = json.loads(_unb64(parts[0]))
        payload = json.loads(_unb64(parts[1]))
        signature = _unb64(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed JWT") from None
    if not isinstance(header, dict) or header.get("alg") != "ES256" or len(signature) != 64:
        raise TokenError("unsupported JWT algorithm")
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public_key.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise TokenError("bad signature") from None
    if not isinstance(payload, dict) or payload.get("iss") != ISSUER:
        raise TokenError("not issued by this cluster")
    offered = payload.get("aud")
    offered = [offered] if isinstance(offered, str) else offered if isinstance(offered, list) else []
    if not set(offered) & set(audiences):
        raise TokenError("token audiences are not accepted by this server")
    times = [payload.get(k, 0) for k in ("nbf", "exp")]
    if not all(isinstance(t, (int, float)) for t in times):
        raise TokenError("malformed JWT times")
    if now > times[1] + LEEWAY_S:
        raise TokenError("service account token has expired")
    if now < times[0] - LEEWAY_S:
        raise TokenError("service account token is not valid yet")
    info = payload.get("kubernetes.io") if isinstance(payload.get("kubernetes.io"), dict) else {}
    account, pod, secret = (info.get(k) if isinstance(info.get(k), dict) else {}
                            for k in ("serviceaccount", "pod", "secret"))
    if not info.get("namespace") or not account.get("name"):
        raise TokenError("not a service account token")
    return Claims(info["namespace"], account["name"], account.get("uid", ""), pod.get("name", ""),
                  pod.get("uid", ""), secret.get("name", ""), secret.get("uid", ""))


def _gone(obj: dict | None, now: float) -> bool:
    """Missing, or deleted more than the leeway ago (Kubernetes' invalidIfDeletedBefore)."""
    if obj is None:
        return True
    deleted = timestamps.epoch((obj.get("metadata") or {}).get("deletionTimestamp"))
    return deleted is not None and deleted < now - LEEWAY_S


def check_bound(claims: Claims, account: dict | None, pod: dict | None, secret: dict | None, now: float) -> None:
    """TokenError unless the service account, and the pod or secret the token is bound to, still
    exist as they were when it was issued. The caller looks up the objects the claims name."""
    where = f"{claims.namespace}/{claims.service_account}"
    if _gone(account, now):
        raise TokenError(f"service account {where} has been deleted")
    if account["metadata"].get("uid") != claims.service_account_uid:
        raise TokenError(f"service account UID ({account['metadata'].get('uid')}) does not match claim "
                         f"({claims.service_account_uid})")
    for name, uid, obj, what in ((claims.secret, claims.secret_uid, secret, "secret"),
                                 (claims.pod, claims.pod_uid, pod, "pod")):
        if not name:
            continue
        if _gone(obj, now):
            raise TokenError("service account token has been invalidated")
        if obj["metadata"].get("uid") != uid:
            raise TokenError(f"{what} UID ({obj['metadata'].get('uid')}) does not match service account {what} "
                             f"ref claim ({uid})")


# --- TokenRequest ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TokenSpec:
    """A TokenRequest's spec, defaulted and validated."""
    audiences: tuple[str, ...]
    expiration_s: int
    bound_kind: str = ""  # "", Pod or Secret
    bound_name: str = ""
    bound_uid: str = ""


def token_spec(body: dict) -> TokenSpec:
    """The spec of a TokenRequest body (TokenRequestError 422 or 400 if Kubernetes refuses it)."""
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    audiences = tuple(a for a in spec.get("audiences") or () if isinstance(a, str) and a) or API_AUDIENCES
    expiration = spec.get("expirationSeconds")
    expiration = DEFAULT_EXPIRY_S if expiration in (None, 0) else expiration
    if not isinstance(expiration, int) or isinstance(expiration, bool):
        raise TokenRequestError(400, f"spec.expirationSeconds must be an integer, got {expiration!r}")
    if expiration < MIN_EXPIRY_S:
        raise TokenRequestError(422, "may not specify a duration less than 10 minutes", "spec.expirationSeconds",
                                expiration)
    if expiration > LARGEST_EXPIRY_S:
        raise TokenRequestError(422, "may not specify a duration larger than 2^32 seconds", "spec.expirationSeconds",
                                expiration)
    ref = spec.get("boundObjectRef")
    if not isinstance(ref, dict) or not ref:
        return TokenSpec(audiences, expiration)
    kind, api_version = ref.get("kind") or "", ref.get("apiVersion") or ""
    if kind not in BOUND_KINDS or api_version not in ("", "v1"):
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        version = api_version.rpartition("/")[2]
        raise TokenRequestError(400, f"cannot bind token to object of type {group}/{version}, Kind={kind}")
    if not ref.get("name"):
        raise TokenRequestError(422, "Required value", "spec.boundObjectRef.name")
    return TokenSpec(audiences, expiration, kind, ref["name"], ref.get("uid") or "")


def bound_claims(account: dict, spec: TokenSpec, bound: dict | None) -> Claims:
    """The claims of a token for `account` bound as `spec` says to `bound` (the object the caller
    found, or None when it found none: 404). TokenRequestError when Kubernetes refuses the binding."""
    meta = account["metadata"]
    claims = Claims(meta["namespace"], meta["name"], meta.get("uid", ""))
    if not spec.bound_kind:
        return claims
    plural = spec.bound_kind.lower() + "s"
    if bound is None:
        raise TokenRequestError(404, f'{plural} "{spec.bound_name}" not found')
    uid = bound["metadata"].get("uid", "")
    if spec.bound_kind == "Pod":
        runs_as = (bound.get("spec") or {}).get("serviceAccountName") or "default"
        if runs_as != meta["name"]:
            raise TokenRequestError(400, f'cannot bind token for serviceaccount "{meta["name"]}" to pod running '
                                    f'with different serviceaccount name.')
    if spec.bound_uid and spec.bound_uid != uid:
        raise TokenRequestError(409, f'Operation cannot be fulfilled on {spec.bound_kind} "{spec.bound_name}": the '
                                f"UID in the bound object reference ({spec.bound_uid}) does not match the UID in "
                                "record. The object might have been deleted and then recreated")
    if spec.bound_kind == "Pod":
        return Claims(claims.namespace, claims.service_account, claims.service_account_uid, spec.bound_name, uid)
    return Claims(claims.namespace, claims.service_account, claims.service_account_uid, secret=spec.bound_name,
                  secret_uid=uid)


def token_request_answer(account: dict, spec: TokenSpec, token: str, expires: float, now: float) -> dict:
    """The TokenRequest the API answers: the request, defaulted, with status.token and
    status.expirationTimestamp (RFC 3339)."""
    meta = account["metadata"]
    ref = None
    if spec.bound_kind:
        ref = {"kind": spec.bound_kind, "apiVersion": "v1", "name": spec.bound_name}
        if spec.bound_uid:
            ref["uid"] = spec.bound_uid
    out_spec: dict = {"audiences": list(spec.audiences), "expirationSeconds": spec.expiration_s}
    if ref:
        out_spec["boundObjectRef"] = ref
    return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "creationTimestamp": timestamps.format_epoch(now)},
            "spec": out_spec,
            "status": {"token": token, "expirationTimestamp": timestamps.format_epoch(expires)}}
