"""ServiceAccount tokens for projected volumes: which a pod needs, how to ask for one, and when a
token held must be replaced (pure; token_manager.py asks the API server).

Rules kept (Kubernetes' kubelet: the projected volume plugin and pkg/kubelet/token):
- a `serviceAccountToken` source asks for a token of the pod's service account, bound to the pod
  (boundObjectRef kind Pod with its name and uid), for the source's audience (none given: the API
  server's own, which it fills in) and expirationSeconds (default 3600; never below 600, the API's
  minimum);
- a token is replaced once 80% of its lifetime has passed (within 20% of its expiry), or 24 hours
  after it was issued whatever its lifetime, each minus a jitter of up to 10 s (so tokens issued
  together are not all renewed in the same second); the jitter is an argument;
- a token that cannot be renewed is used until it expires.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_EXPIRY_S = 3600
MIN_EXPIRY_S = 600
MAX_TTL_S = 24 * 3600
REFRESH_FRACTION = 0.8
MAX_JITTER_S = 10.0


@dataclass(frozen=True)
class TokenSource:
    """One serviceAccountToken source of a pod's projected volume."""
    service_account: str
    audience: str  # "" = the API server's default audience
    expiration_s: int
    path: str


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: float  # epoch seconds, from the answer's status.expirationTimestamp
    lifetime_s: int    # the answer's spec.expirationSeconds


def source_of(pod: dict, spec: dict) -> TokenSource:
    """The TokenSource of a projected serviceAccountToken entry."""
    pod_spec = pod.get("spec") or {}
    account = pod_spec.get("serviceAccountName") or pod_spec.get("serviceAccount") or "default"
    expiration = spec.get("expirationSeconds")
    expiration = DEFAULT_EXPIRY_S if not isinstance(expiration, int) or isinstance(expiration, bool) else expiration
    return TokenSource(account, spec.get("audience") or "", max(MIN_EXPIRY_S, expiration), spec.get("path") or "")


def token_sources(pod: dict) -> list[TokenSource]:
    """Every serviceAccountToken source of the pod's projected volumes."""
    out = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        projected = volume.get("projected") if isinstance(volume, dict) else None
        if not isinstance(projected, dict):
            continue
        for source in projected.get("sources") or []:
            if isinstance(source, dict) and isinstance(source.get("serviceAccountToken"), dict):
                out.append(source_of(pod, source["serviceAccountToken"]))
    return out


def token_request(pod: dict, source: TokenSource) -> dict:
    """The TokenRequest body the kubelet posts to serviceaccounts/NAME/token."""
    meta = pod["metadata"]
    spec: dict = {"expirationSeconds": source.expiration_s,
                  "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}}
    if source.audience:
        spec["audiences"] = [source.audience]
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {}, "spec": spec}


def needs_refresh(issued: IssuedToken | None, now: float, jitter_s: float = 0.0) -> bool:
    """Whether to ask for a new token (jitter_s: 0..MAX_JITTER_S, drawn by the caller)."""
    if issued is None:
        return True
    issued_at = issued.expires_at - issued.lifetime_s
    if now > issued_at + MAX_TTL_S - jitter_s:
        return True
    return now > issued.expires_at - issued.lifetime_s * (1 - REFRESH_FRACTION) - jitter_s


def usable(issued: IssuedToken | None, now: float) -> bool:
    """A token not yet expired: kept when a renewal fails."""
    return issued is not None and now < issued.expires_at
