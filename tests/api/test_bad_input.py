"""Bad input gets a Status with the right code, and the server keeps serving."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from orchestrator.api import types
from orchestrator.apiserver import protocodec
from tests.api.rawhttp import Raw, status_of
from tests.k8s_objects import objects_of


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


def test_a_table_with_an_unknown_include_object_is_400(raw):
    table = "application/json;as=Table;v=v1;g=meta.k8s.io"
    for path in (PODS, PODS + "?watch=true&timeoutSeconds=1"):
        code, _, data = raw.request("GET", path + ("&" if "?" in path else "?") + "includeObject=Everything",
                                    accept=table)
        assert code == 400 and 'includeObject: Unsupported value: "Everything"' in status_of(data)["message"]
    code, _, data = raw.request("GET", PODS + "?includeObject=None", accept=table)
    assert code == 200 and all(row["object"] is None for row in json.loads(data)["rows"])


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


def test_the_python_client_waits_out_429_and_every_request_is_done_once(plane, caplog):
    """Ketch's components' client honours Retry-After as client-go does: 24 creations at once
    against a server that serves one request at a time all succeed, none twice."""
    import trio

    from orchestrator.client import kubeconfig
    from orchestrator.client.api import CONFIGMAPS, APIClient

    server = plane.add_api_server("--max-requests-inflight", "1")

    async def create_all() -> list[dict]:
        async with APIClient(kubeconfig.load(plane.kubeconfig(server=server)), connections=24) as api:
            created = []

            async def create(i: int) -> None:
                created.append(await api.create(CONFIGMAPS, "default", {
                    "metadata": {"name": f"throttled-{i}"}, "data": {"i": str(i)}}))
            async with trio.open_nursery() as nursery:
                for i in range(24):
                    nursery.start_soon(create, i)
            listed = await api.list(CONFIGMAPS, "default")
            return created, [c for c in listed["items"] if c["metadata"]["name"].startswith("throttled-")]

    with caplog.at_level("INFO", logger="ketch.client"):
        created, listed = trio.run(create_all)
    assert sorted(c["metadata"]["name"] for c in created) == sorted(f"throttled-{i}" for i in range(24))
    assert len(listed) == 24
    assert any("event=throttled" in r.getMessage() for r in caplog.records)  # it was throttled, and waited


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


# --- random bodies: never a 500, never a half-written object -----------------------------------------

FUZZ_SETTINGS = settings(max_examples=1000, deadline=None, derandomize=True,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                HealthCheck.data_too_large])
CONFIGMAP = types.kind("", "v1", "ConfigMap")


@st.composite
def protobuf_bodies(draw) -> bytes:
    """Well-formed ConfigMaps (named validly or not), their bytes mutated or cut, other kinds, and
    random bytes after the envelope."""
    obj = draw(objects_of(CONFIGMAP))
    obj.setdefault("metadata", {}).pop("managedFields", None)
    if draw(st.booleans()):
        obj["metadata"]["name"] = draw(st.from_regex(r"pb-[a-z0-9]{1,12}", fullmatch=True))
    raw = protocodec.encode(obj, CONFIGMAP)
    how = draw(st.sampled_from(["as is", "flip", "cut", "random", "other kind"]))
    if how == "flip" and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1:]
    elif how == "cut":
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif how == "random":
        raw = draw(st.binary(max_size=200))
    kind = draw(st.sampled_from(["Secret", "Widget", "Pod"])) if how == "other kind" else "ConfigMap"
    return protocodec.write_envelope("v1", kind, raw)


@pytest.fixture(scope="module")
def fuzz(plane):
    raw = Raw(plane, keep_alive=True)
    for namespace in ("pb-fuzz", "apply-fuzz"):
        assert raw.request("POST", "/api/v1/namespaces", json.dumps({"metadata": {"name": namespace}}))[0] == 201
    return raw


@FUZZ_SETTINGS
@given(body=protobuf_bodies())
def test_random_protobuf_bodies_get_a_status_and_store_only_whole_objects(fuzz, body):
    before = _names(fuzz, "/api/v1/namespaces/pb-fuzz/configmaps")
    code, _, data = fuzz.request("POST", "/api/v1/namespaces/pb-fuzz/configmaps", body,
                                 "application/vnd.kubernetes.protobuf")
    event(f"answered {code}")
    assert code < 500, data
    after = _names(fuzz, "/api/v1/namespaces/pb-fuzz/configmaps")
    if code == 201:
        created = json.loads(data)
        assert after == before | {created["metadata"]["name"]}
        path = f"/api/v1/namespaces/pb-fuzz/configmaps/{created['metadata']['name']}"
        assert json.loads(fuzz.request("GET", path)[2]) == created
        fuzz.request("DELETE", path)
    else:
        assert code in (400, 409, 415, 422) and after == before, (code, data)
        assert status_of(data)["code"] == code


APPLIED = "/apis/apps/v1/namespaces/apply-fuzz/deployments/fuzzed"
BASE = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "fuzzed"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "f"}},
                 "template": {"metadata": {"labels": {"app": "f"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
JUNK = st.none() | st.booleans() | st.integers(-3, 70000) | st.text(max_size=6) | st.lists(st.integers(), max_size=2) \
    | st.dictionaries(st.text(max_size=4), st.integers(), max_size=2)


@st.composite
def apply_patches(draw) -> tuple[bytes, str, bool]:
    """Mostly the base manifest with random edits (values of the wrong type, unknown fields,
    containers drawn from the schema, other labels, no keys); sometimes not an object at all."""
    manager = draw(st.sampled_from(["alice", "bob", "kubectl"]))
    force = draw(st.booleans())
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([b"", b"[1, 2]", b"{not yaml", b"- a\n- b\n", b"kind: Deployment"])), manager, force
    patch = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(st.sampled_from(["replicas", "labels", "containers", "unknown", "junk", "drop"]))
        spec, pod, meta = (part if isinstance(part, dict) else {} for part in (
            patch.get("spec"), (patch.get("spec") or {}).get("template", {}).get("spec")
            if isinstance(patch.get("spec"), dict) and isinstance(patch["spec"].get("template"), dict) else None,
            patch.get("metadata")))
        if edit == "replicas":
            spec["replicas"] = draw(st.integers(-2, 5) | JUNK)
        elif edit == "labels":
            meta["labels"] = draw(st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True),
                                                               st.text(max_size=5), max_size=3))
        elif edit == "containers":
            pod["containers"] = draw(st.lists(objects_of(types.message("core.v1.Container"), 3), max_size=2))
        elif edit == "unknown":
            spec[draw(st.sampled_from(["replicass", "x", "template2"]))] = draw(JUNK)
        elif edit == "junk":
            target = draw(st.sampled_from([spec, pod, meta, patch]))
            target[draw(st.sampled_from(list(target) or ["x"]))] = draw(JUNK)
        else:
            target = draw(st.sampled_from([spec, pod, meta]))
            if target:
                target.pop(draw(st.sampled_from(sorted(target))))
    return json.dumps(patch).encode(), manager, force


@FUZZ_SETTINGS
@given(patch=apply_patches(), validation=st.sampled_from(["Strict", "Warn", "Ignore"]))
def test_random_apply_patches_get_a_status_and_leave_the_object_whole(fuzz, patch, validation):
    body, manager, force = patch
    code, _, before = fuzz.request("GET", APPLIED)
    query = f"?fieldManager={manager}&fieldValidation={validation}" + ("&force=true" if force else "")
    code, _, data = fuzz.request("PATCH", APPLIED + query, body, "application/apply-patch+yaml")
    event(f"answered {code}")
    assert code < 500, data
    after_code, _, after = fuzz.request("GET", APPLIED)
    if code in (200, 201):
        assert after_code == 200 and json.loads(after) == json.loads(data)  # what was answered is what is stored
    else:
        assert code in (400, 409, 415, 422), (code, data)
        assert after == before  # nothing half-written


def _names(raw: Raw, path: str) -> set[str]:
    return {o["metadata"]["name"] for o in json.loads(raw.request("GET", path)[2])["items"]}
