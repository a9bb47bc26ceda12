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
        verify(KEY.public_key(), token, expires + 61)  # past go-jose's minute of leeway


def test_expiry_is_clamped_to_kubernetes_bounds():
    _, short = issue(KEY, CLAIMS, NOW, 5)
    _, long = issue(KEY, CLAIMS, NOW, 10 ** 9)
    assert short == NOW + 600 and long == NOW + 48 * 3600


ACCOUNT = {"metadata": {"name": "default", "namespace": "shop", "uid": "sa-uid"}}
POD = {"metadata": {"name": "web-1", "namespace": "shop", "uid": "pod-uid"}, "spec": {"serviceAccountName": "default"}}


def deleted(obj: dict, at: float) -> dict:
    from orchestrator.api.timestamps import format_epoch
    return {**obj, "metadata": {**obj["metadata"], "deletionTimestamp": format_epoch(at)}}


@pytest.mark.parametrize("account, pod, problem", [
    (ACCOUNT, POD, None),
    (None, POD, "service account shop/default has been deleted"),
    ({"metadata": {**ACCOUNT["metadata"], "uid": "new"}}, POD, r"service account UID \(new\) does not match"),
    (ACCOUNT, None, "service account token has been invalidated"),
    (ACCOUNT, {"metadata": {**POD["metadata"], "uid": "other"}}, r"pod UID \(other\) does not match"),
    (ACCOUNT, deleted(POD, NOW - 30), None),          # a terminating pod keeps its token for the leeway
    (ACCOUNT, deleted(POD, NOW - 61), "service account token has been invalidated"),
    (deleted(ACCOUNT, NOW - 61), POD, "has been deleted"),
])
def test_a_bound_token_lives_as_long_as_its_account_and_pod(account, pod, problem):
    from orchestrator.apiserver.serviceaccounts import check_bound
    if problem is None:
        check_bound(CLAIMS, account, pod, None, NOW)
        return
    with pytest.raises(TokenError, match=problem):
        check_bound(CLAIMS, account, pod, None, NOW)


def test_audiences_and_leeway():
    token, expires = issue(KEY, CLAIMS, NOW, 600, audiences=("vault",))
    with pytest.raises(TokenError, match="audiences"):
        verify(KEY.public_key(), token, NOW)
    assert verify(KEY.public_key(), token, NOW, audiences=("vault",)) == CLAIMS
    token, expires = issue(KEY, CLAIMS, NOW, 600)
    assert verify(KEY.public_key(), token, expires + 59) == CLAIMS
    with pytest.raises(TokenError, match="not valid yet"):
        verify(KEY.public_key(), token, NOW - 61)


@pytest.mark.parametrize("spec, code, message", [
    ({"expirationSeconds": 5}, 422, "may not specify a duration less than 10 minutes"),
    ({"expirationSeconds": 2 ** 33}, 422, "may not specify a duration larger than 2^32 seconds"),
    ({"expirationSeconds": "1h"}, 400, "must be an integer"),
    ({"boundObjectRef": {"kind": "Node", "apiVersion": "v1", "name": "n1"}}, 400,
     "cannot bind token to object of type /v1, Kind=Node"),
    ({"boundObjectRef": {"kind": "Pod", "apiVersion": "apps/v1", "name": "x"}}, 400,
     "cannot bind token to object of type apps/v1, Kind=Pod"),
    ({"boundObjectRef": {"kind": "Pod"}}, 422, "Required value"),
])
def test_token_requests_kubernetes_refuses(spec, code, message):
    from orchestrator.apiserver.serviceaccounts import TokenRequestError, token_spec
    with pytest.raises(TokenRequestError) as err:
        token_spec({"spec": spec})
    assert err.value.code == code and message in err.value.message


def test_a_token_request_is_defaulted_bound_and_answered():
    from orchestrator.apiserver.serviceaccounts import (
        TokenRequestError,
        TokenSpec,
        bound_claims,
        token_request_answer,
        token_spec,
    )
    assert token_spec({"spec": {"audiences": None, "expirationSeconds": None, "boundObjectRef": None}}) == \
        TokenSpec(("https://kubernetes.default.svc.cluster.local",), 3600)
    spec = token_spec({"spec": {"audiences": ["vault"], "expirationSeconds": 7200,
                                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-1"}}})
    assert bound_claims(ACCOUNT, spec, POD) == CLAIMS
    with pytest.raises(TokenRequestError) as err:
        bound_claims(ACCOUNT, spec, None)
    assert (err.value.code, err.value.message) == (404, 'pods "web-1" not found')
    other = {**POD, "spec": {"serviceAccountName": "robot"}}
    with pytest.raises(TokenRequestError, match='to pod running with different serviceaccount name') as err:
        bound_claims(ACCOUNT, spec, other)
    stale = token_spec({"spec": {"boundObjectRef": {"kind": "Pod", "name": "web-1", "uid": "old"}}})
    with pytest.raises(TokenRequestError, match=r"the UID in the bound object reference \(old\) does not match") \
            as err:
        bound_claims(ACCOUNT, stale, POD)
    assert err.value.code == 409
    answer = token_request_answer(ACCOUNT, spec, "jwt", NOW + 7200, NOW)
    assert answer["spec"] == {"audiences": ["vault"], "expirationSeconds": 7200,
                              "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-1"}}
    assert answer["status"] == {"token": "jwt", "expirationTimestamp": "2027-01-15T10:00:00Z"}
