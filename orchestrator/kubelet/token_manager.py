"""The kubelet's ServiceAccount tokens (adapter): asks the API server for each pod-bound token its
projected volumes need, keeps it, and renews it when sa_token.needs_refresh says so.

    manager = TokenManager(api)
    await manager.ensure(pod)          # before the pod's volumes are written (and on every resync)
    manager.lookup(source_for_pod)     # volumes.api_files' `tokens`: bytes, or TokenUnavailable
    manager.forget(pod_uid)            # the pod is gone

A renewal that fails keeps the old token until it expires (Kubernetes' kubelet does the same); a
pod that has no token yet does not start (its volume set-up fails with the reason and is retried).
At most MAX_TOKENS tokens are held.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from orchestrator.api import timestamps
from orchestrator.client.api import APIClient, APIStatusError, Unreachable, path, resource
from orchestrator.kubelet import sa_token
from orchestrator.kubelet.volumes import TokenUnavailable

log = logging.getLogger("ketch.kubelet.tokens")

SERVICE_ACCOUNTS = resource("serviceaccounts")
MAX_TOKENS = 4096  # 110 pods a node, a few sources each: far below
Key = tuple[str, sa_token.TokenSource]


class TokenManager:
    def __init__(self, api: APIClient, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self.api, self.clock, self.rng = api, clock, rng or random.Random()
        self.tokens: dict[Key, sa_token.IssuedToken] = {}
        self.failures: dict[Key, str] = {}

    async def ensure(self, pod: dict) -> None:
        """Fetch or renew every token the pod's volumes need (failures are kept for lookup to tell)."""
        uid = pod["metadata"]["uid"]
        for source in sa_token.token_sources(pod):
            key = (uid, source)
            held = self.tokens.get(key)
            if not sa_token.needs_refresh(held, self.clock(), self.rng.uniform(0, sa_token.MAX_JITTER_S)):
                continue
            try:
                self._store(key, await self._request(pod, source))
                self.failures.pop(key, None)
            except (APIStatusError, Unreachable, TokenUnavailable, ValueError) as err:
                if len(self.failures) >= MAX_TOKENS:
                    self.failures.clear()  # only messages for lookup to tell: losing them is harmless
                # the API server's own words, as Kubernetes' kubelet reports them
                self.failures[key] = err.status.get("message") or str(err) if isinstance(err, APIStatusError) \
                    else str(err)
                log.warning("event=token_request_failed pod=%s/%s account=%s kept=%s error=%s",
                            pod["metadata"]["namespace"], pod["metadata"]["name"], source.service_account,
                            sa_token.usable(held, self.clock()), err)

    async def _request(self, pod: dict, source: sa_token.TokenSource) -> sa_token.IssuedToken:
        namespace = pod["metadata"]["namespace"]
        answer = await self.api.request("POST", path(SERVICE_ACCOUNTS, namespace, source.service_account, "token"),
                                        sa_token.token_request(pod, source))
        status, spec = answer.get("status") or {}, answer.get("spec") or {}
        expires = timestamps.epoch(status.get("expirationTimestamp"))
        if not status.get("token") or expires is None:
            raise ValueError("the API server's TokenRequest answer has no token or expirationTimestamp")
        lifetime = spec.get("expirationSeconds") if isinstance(spec.get("expirationSeconds"), int) else \
            source.expiration_s
        return sa_token.IssuedToken(status["token"], expires, lifetime)

    def _store(self, key: Key, issued: sa_token.IssuedToken) -> None:
        if key not in self.tokens and len(self.tokens) >= MAX_TOKENS:
            now = self.clock()
            self.tokens = {k: t for k, t in self.tokens.items() if sa_token.usable(t, now)}
            if len(self.tokens) >= MAX_TOKENS:
                raise TokenUnavailable(f"the kubelet already holds {MAX_TOKENS} tokens")
        self.tokens[key] = issued

    def lookup_for(self, pod: dict) -> Callable[[sa_token.TokenSource], bytes]:
        """The `tokens` lookup of volumes.api_files for this pod."""
        uid = pod["metadata"]["uid"]

        def lookup(source: sa_token.TokenSource) -> bytes:
            held = self.tokens.get((uid, source))
            if sa_token.usable(held, self.clock()):
                return held.token.encode()
            raise TokenUnavailable(self.failures.get((uid, source)) or "no token issued yet")
        return lookup

    def forget(self, uid: str) -> None:
        for key in [k for k in self.tokens if k[0] == uid]:
            del self.tokens[key]
        for key in [k for k in self.failures if k[0] == uid]:
            del self.failures[key]
