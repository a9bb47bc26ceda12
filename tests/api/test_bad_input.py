"""Bad input gets a Status with the right code, and the server keeps serving."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.rawhttp import Raw, status_of


@pytest.fixture(scope="module")
def raw(plane):
    return Raw(plane)


PODS = "/api/v1/namespaces/default/pods"


@pytest.mark.parametrize("body,content_type,fragment", [
    (b"{not json", "application/json", "not valid JSON"),
    (b"metadata: [unclosed", "application/yaml", "not valid YAML"),
    (b"[1, 2]", "application/json", "must be an object"),
    (b"", "application/json", "no body"),
])
def test_malformed_bodies_are_400(raw, body, content_type, fragment):
    code, _, data = raw.request("POST", PODS, body, content_type)
    assert code == 400 and fragment in status_of(data)["message"]


def test_yaml_bodies_are_accepted(raw):
    code, _, data = raw.request("POST", "/api/v1/namespaces/default/configmaps",
                                "metadata:\n  name: from-yaml\ndata:\n  a: b\n", "application/yaml")
    assert code == 201 and json.loads(data)["data"] == {"a": "b"}


@pytest.mark.parametrize("path", ["/api/v1/namespaces/default/widgets", "/apis/nope/v1/things", "/api/v2",
                                  "/api/v1/namespaces/default/pods/x/y/z"])
def test_unknown_resources_are_404(raw, path):
    code, _, data = raw.request("GET", path)
    assert code == 404 and status_of(data)["reason"] == "NotFound"


def test_an_invalid_object_is_422_with_causes(raw):
    bad = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}, {"name": "c", "image": "x",
                                                                              "ports": [{"containerPort": 0}]}]}}
    code, _, data = raw.request("POST", PODS, json.dumps(bad))
    status = status_of(data)
    assert code == 422 and status["reason"] == "Invalid"
    fields = {(c["field"], c["reason"]) for c in status["details"]["causes"]}
    assert fields == {("spec.containers[0].image", "FieldValueRequired"),
                      ("spec.containers[1].name", "FieldValueDuplicate"),
                      ("spec.containers[1].ports[0].containerPort", "FieldValueInvalid")}


def test_a_body_over_3_mib_is_413(raw):
    code, _, data = raw.request("POST", "/api/v1/namespaces/default/configmaps", b"x" * (3 * 1024 * 1024 + 1))
    assert code == 413 and status_of(data)["reason"] == "RequestEntityTooLarge"


def test_a_missing_namespace_is_404(raw):
    code, _, data = raw.request("POST", "/api/v1/namespaces/nowhere/configmaps",
                                json.dumps({"metadata": {"name": "x"}}))
    assert code == 404 and status_of(data)["message"] == 'namespaces "nowhere" not found'


def test_a_wrong_kind_or_selector_is_400(raw):
    code, _, data = raw.request("POST", PODS, json.dumps({"kind": "Service", "metadata": {"name": "s"}}))
    assert code == 400 and "does not match" in status_of(data)["message"]
    code, _, data = raw.request("GET", PODS + "?fieldSelector=spec.bogus%3Dx")
    assert code == 400 and "field label not supported: spec.bogus" in status_of(data)["message"]


def test_a_wrong_token_is_401_and_the_server_goes_on(plane, raw):
    code, _, data = Raw(plane, token="wrong").request("GET", PODS)
    assert code == 401 and status_of(data)["reason"] == "Unauthorized"
    assert raw.request("GET", PODS)[0] == 200


def test_too_many_requests_in_flight_get_429_with_retry_after(plane):
    server = plane.add_api_server("--max-requests-inflight", "1")
    raw = Raw(plane, server)
    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda _: raw.request("GET", PODS), range(96)))
    codes = [code for code, _, _ in answers]
    assert set(codes) <= {200, 429} and 200 in codes and 429 in codes, codes
    limited = next(answer for answer in answers if answer[0] == 429)
    assert limited[1].get("retry-after") == "1" and status_of(limited[2])["reason"] == "TooManyRequests"
    assert raw.request("GET", PODS)[0] == 200  # and it keeps serving


def test_cluster_ips_from_two_api_servers_never_collide(plane):
    """Both servers claim addresses in the kv store; 40 services created at once, through both."""
    servers = [Raw(plane, url) for url in plane.servers[:2]]
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda i: servers[i % 2].request(
                    "POST",
                    "/api/v1/namespaces/default/services",
                    json.dumps(
                        {
                            "metadata": {"name": f"svc-{i}"},
                            "spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80}]},
                        }
                    ),
                ),
                range(40),
            )
        )
    assert [code for code, _, _ in answers] == [201] * 40
    specs = [json.loads(data)["spec"] for _, _, data in answers]
    assert len({s["clusterIP"] for s in specs}) == 40
    assert len({s["ports"][0]["nodePort"] for s in specs}) == 40
