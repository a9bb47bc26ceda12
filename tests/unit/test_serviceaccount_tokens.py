"""Service account tokens: issued, verified, and refused when forged, expired or foreign."""

import pytest

from orchestrator.apiserver.serviceaccounts import Claims, TokenError, issue, load_key, new_key_pem, verify

KEY = load_key(new_key_pem())
OTHER = load_key(new_key_pem())
CLAIMS = Claims("shop", "default", "sa-uid", "web-1", "pod-uid")
NOW = 1_800_000_000.0


def test_a_bound_token_round_trips_with_its_identity():
    token, expires = issue(KEY, CLAIMS, NOW, 3600)
    assert expires == NOW + 3600
    claims = verify(KEY.public_key(), token, NOW + 10)
    assert claims == CLAIMS
    assert claims.user == "system:serviceaccount:shop:default"
    assert claims.groups == ("system:serviceaccounts", "system:serviceaccounts:shop")


@pytest.mark.parametrize("mangle, message", [
    (lambda t: t + "x", "bad signature|malformed|unsupported"),
    (lambda t: t.split(".")[0] + "." + t.split(".")[1] + ".", "unsupported|malformed"),
    (lambda t: "not-a-jwt", "not a JWT"),
])
def test_forged_or_broken_tokens_are_refused(mangle, message):
    token, _ = issue(KEY, CLAIMS, NOW)
    with pytest.raises(TokenError, match=message):
        verify(KEY.public_key(), mangle(token), NOW)


def test_another_clusters_key_and_expired_tokens_are_refused():
    token, expires = issue(OTHER, CLAIMS, NOW)
    with pytest.raises(TokenError, match="bad signature"):
        verify(KEY.public_key(), token, NOW)
    token, expires = issue(KEY, CLAIMS, NOW, 600)
    with pytest.raises(TokenError, match="expired"):
        verify(KEY.public_key(), token, expires + 1)


def test_expiry_is_clamped_to_kubernetes_bounds():
    _, short = issue(KEY, CLAIMS, NOW, 5)
    _, long = issue(KEY, CLAIMS, NOW, 10 ** 9)
    assert short == NOW + 600 and long == NOW + 48 * 3600
