"""Service account tokens: bound JWTs as the TokenRequest API issues them, checked on every request.

A token is a JWT (ES256, signed with the API server's service-account key) with Kubernetes'
claims: `iss`, `sub` = system:serviceaccount:NS:NAME, `aud`, `iat`, `nbf`, `exp`, and
`kubernetes.io` = {namespace, serviceaccount {name, uid}, pod {name, uid}}. It authenticates as
user system:serviceaccount:NS:NAME with the groups system:serviceaccounts and
system:serviceaccounts:NS, and only while it has not expired and, for a bound token, the
service account and the pod it was bound to still exist with the same uids (checked by the
caller against storage: `bound_objects`). Signing and verification are pure (keys and the time
are arguments).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_EXPIRY_S = 3600
MAX_EXPIRY_S = 48 * 3600
MIN_EXPIRY_S = 600  # Kubernetes refuses shorter expirationSeconds


class TokenError(ValueError):
    """Not a valid service account token (the caller answers 401)."""


@dataclass(frozen=True)
class Claims:
    namespace: str
    service_account: str
    service_account_uid: str
    pod: str = ""
    pod_uid: str = ""

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
    return serialization.load_pem_private_key(pem, password=None)


def issue(key, claims: Claims, now: float, expiry_s: int = DEFAULT_EXPIRY_S,
          audiences: tuple[str, ...] = (ISSUER,)) -> tuple[str, int]:
    """A signed token and its expiry (epoch seconds)."""
    expiry_s = max(MIN_EXPIRY_S, min(MAX_EXPIRY_S, int(expiry_s)))
    expires = int(now) + expiry_s
    payload = {"iss": ISSUER, "sub": claims.user, "aud": list(audiences), "iat": int(now), "nbf": int(now),
               "exp": expires, "kubernetes.io": {
                   "namespace": claims.namespace,
                   "serviceaccount": {"name": claims.service_account, "uid": claims.service_account_uid}}}
    if claims.pod:
        payload["kubernetes.io"]["pod"] = {"name": claims.pod, "uid": claims.pod_uid}
    header = {"alg": "ES256", "typ": "JWT", "kid": "ketch"}
    signing_input = f"{_b64(json.dumps(header, separators=(',', ':')).encode())}." \
                    f"{_b64(json.dumps(payload, separators=(',', ':')).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS ES256: raw r || s
    return f"{signing_input}.{_b64(signature)}", expires


def verify(public_key, token: str, now: float) -> Claims:
    """The token's claims if its signature, issuer and times are good; TokenError otherwise."""
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
    if not (payload.get("nbf", 0) - 60 <= now < payload.get("exp", 0)):
        raise TokenError("token expired or not yet valid")
    info = payload.get("kubernetes.io") or {}
    account = info.get("serviceaccount") or {}
    pod = info.get("pod") or {}
    if not info.get("namespace") or not account.get("name"):
        raise TokenError("not a service account token")
    return Claims(info["namespace"], account["name"], account.get("uid", ""), pod.get("name", ""),
                  pod.get("uid", ""))


def token_request_status(token: str, expires: float) -> dict:
    """The TokenRequest status the API answers (`expirationTimestamp` in RFC 3339)."""
    import datetime
    stamp = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"token": token, "expirationTimestamp": stamp}
