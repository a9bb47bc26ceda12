"""The kubelet's ServiceAccount tokens: which it asks for, and when it renews them (table tests)."""

from __future__ import annotations

import pytest

from orchestrator.kubelet.sa_token import IssuedToken, TokenSource, needs_refresh, token_request, token_sources, usable

HOUR = 3600
ISSUED_AT = 1_000_000.0


def issued(lifetime_s: int) -> IssuedToken:
    return IssuedToken("jwt", ISSUED_AT + lifetime_s, lifetime_s)


@pytest.mark.parametrize("lifetime_s, age_s, jitter_s, renew", [
    (HOUR, 0, 0, False),
    (HOUR, 0.79 * HOUR, 0, False),
    (HOUR, 0.81 * HOUR, 0, True),              # 80% of its life has passed
    (HOUR, 0.8 * HOUR - 5, 10, True),          # the jitter brings it forward by up to 10 s
    (600, 470, 0, False),
    (600, 481, 0, True),
    (48 * HOUR, 23 * HOUR, 0, False),
    (48 * HOUR, 24 * HOUR + 1, 0, True),       # never older than 24 h, whatever its lifetime
    (HOUR, 2 * HOUR, 0, True),                 # expired
])
def test_a_token_is_renewed_after_80_percent_of_its_life_or_a_day(lifetime_s, age_s, jitter_s, renew):
    assert needs_refresh(issued(lifetime_s), ISSUED_AT + age_s, jitter_s) is renew


def test_no_token_is_fetched_and_an_old_one_serves_until_it_expires():
    assert needs_refresh(None, ISSUED_AT)
    assert usable(issued(HOUR), ISSUED_AT + HOUR - 1) and not usable(issued(HOUR), ISSUED_AT + HOUR)
    assert not usable(None, ISSUED_AT)


POD = {"metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
       "spec": {"serviceAccountName": "robot", "volumes": [
           {"name": "kube-api-access-x", "projected": {"sources": [
               {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}, {"configMap": {"name": "c"}}]}},
           {"name": "vault", "projected": {"sources": [
               {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 60, "path": "vault-token"}}]}},
           {"name": "scratch", "emptyDir": {}}]}}


def test_the_tokens_a_pod_needs_are_bound_to_it():
    assert token_sources(POD) == [TokenSource("robot", "", 3607, "token"), TokenSource("robot", "vault", 600,
                                                                                       "vault-token")]
    assert token_request(POD, token_sources(POD)[0]) == {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {},
        "spec": {"expirationSeconds": 3607, "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "web",
                                                               "uid": "u1"}}}
    assert token_request(POD, token_sources(POD)[1])["spec"]["audiences"] == ["vault"]
