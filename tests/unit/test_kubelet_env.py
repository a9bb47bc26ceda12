"""Environment, $(VAR) expansion and argv, as the kubelet resolves them (table tests)."""

from __future__ import annotations

import base64

import pytest

from orchestrator.kubelet.envvars import ConfigError, PodFacts, expand, merged_with_image, resolve_argv, resolve_env

POD = {"metadata": {"name": "web-1", "namespace": "shop", "uid": "u-9", "labels": {"app": "web"},
                    "annotations": {"team": "blue"}},
       "spec": {"nodeName": "n1", "serviceAccountName": "robot", "containers": []}}
FACTS = PodFacts(pod_ips=("10.244.1.7",), host_ips=("10.77.0.2",), allocatable={"cpu": 2000, "memory": 4 << 30})
CONFIGMAPS = {("shop", "settings"): {"metadata": {"name": "settings", "namespace": "shop"},
                                     "data": {"MODE": "fast", "bad key": "x", "LEVEL": "3"}}}
SECRETS = {("shop", "creds"): {"metadata": {"name": "creds", "namespace": "shop"},
                               "data": {"PASSWORD": base64.b64encode(b"s3cret").decode()}}}


def env(*variables, env_from=None, resources=None):
    container = {"name": "c", "env": list(variables), "envFrom": env_from or [], "resources": resources or {}}
    resolved = resolve_env(POD, container, FACTS, lambda ns, n: CONFIGMAPS.get((ns, n)),
                           lambda ns, n: SECRETS.get((ns, n)))
    return dict(resolved.env), resolved.invalid_names


@pytest.mark.parametrize("text,expected", [
    ("$(A)-$(B)", "1-two"), ("$$(A)", "$(A)"), ("$(MISSING)", "$(MISSING)"), ("$(A", "$(A"), ("a$b", "a$b"),
    ("$", "$"), ("$$$(A)", "$1"), ("x$(A)$(A)y", "x11y"), ("", ""),
])
def test_expansion_follows_kubernetes(text, expected):
    assert expand(text, {"A": "1", "B": "two"}) == expected


def test_field_refs():
    values, _ = env(*[{"name": n, "valueFrom": {"fieldRef": {"fieldPath": p}}} for n, p in [
        ("NAME", "metadata.name"), ("NS", "metadata.namespace"), ("UID", "metadata.uid"),
        ("APP", "metadata.labels['app']"), ("TEAM", "metadata.annotations['team']"), ("NODE", "spec.nodeName"),
        ("SA", "spec.serviceAccountName"), ("IP", "status.podIP"), ("IPS", "status.podIPs"),
        ("HOST", "status.hostIP")]])
    assert values == {"NAME": "web-1", "NS": "shop", "UID": "u-9", "APP": "web", "TEAM": "blue", "NODE": "n1",
                      "SA": "robot", "IP": "10.244.1.7", "IPS": "10.244.1.7", "HOST": "10.77.0.2"}


def test_unknown_field_path_is_a_config_error():
    with pytest.raises(ConfigError, match="unsupported fieldPath: spec.nope"):
        env({"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.nope"}}})


def test_resource_field_refs_round_up_and_default_to_allocatable():
    values, _ = env({"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                    {"name": "REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
                    resources={"limits": {"memory": "100M"}, "requests": {"cpu": "250m"}})
    assert values == {"CPU": "2", "MEM": "96", "REQ": "250"}


def test_config_map_and_secret_keys_with_optional():
    values, _ = env({"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "MODE"}}},
                    {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "PASSWORD"}}},
                    {"name": "GONE", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "x", "optional": True}}},
                    {"name": "NOKEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "x", "optional": True}}})
    assert values == {"MODE": "fast", "PW": "s3cret"}


@pytest.mark.parametrize("ref,message", [
    ({"configMapKeyRef": {"name": "nope", "key": "x"}}, 'configmap "nope" not found'),
    ({"configMapKeyRef": {"name": "settings", "key": "x"}}, "couldn't find key x in ConfigMap shop/settings"),
    ({"secretKeyRef": {"name": "nope", "key": "x"}}, 'secret "nope" not found'),
    ({"secretKeyRef": {"name": "creds", "key": "x"}}, "couldn't find key x in Secret shop/creds"),
])
def test_missing_objects_and_keys_name_what_is_missing(ref, message):
    with pytest.raises(ConfigError) as err:
        env({"name": "X", "valueFrom": ref})
    assert str(err.value) == message


def test_env_from_with_prefix_skips_invalid_names_and_env_overrides_it():
    values, invalid = env({"name": "CFG_MODE", "value": "slow-$(CFG_LEVEL)"},
                          env_from=[{"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
                                    {"secretRef": {"name": "creds"}},
                                    {"configMapRef": {"name": "x", "optional": True}}])
    assert values == {"CFG_MODE": "slow-3", "CFG_LEVEL": "3", "PASSWORD": "s3cret"}
    assert invalid == ["CFG_bad key"]


def test_a_reference_sees_only_earlier_variables():
    values, _ = env({"name": "A", "value": "$(B)"}, {"name": "B", "value": "b"}, {"name": "C", "value": "$(B)"})
    assert values == {"A": "$(B)", "B": "b", "C": "b"}


def test_image_env_is_the_base():
    assert merged_with_image(["PATH=/bin", "HOME=/root"], [("HOME", "/data"), ("X", "1")]) == [
        ("PATH", "/bin"), ("HOME", "/data"), ("X", "1")]


@pytest.mark.parametrize("command,args,argv", [
    ([], [], ["/entry", "cmd1"]),
    (["sh", "-c"], [], ["sh", "-c"]),
    (["sh", "-c"], ["echo $(GREETING)"], ["sh", "-c", "echo hello"]),
    ([], ["--port=$(PORT)"], ["/entry", "--port=80"]),
])
def test_argv_follows_command_args_and_the_image(command, args, argv):
    container = {"name": "c", "command": command, "args": args}
    assert resolve_argv(container, ["/entry"], ["cmd1"], {"GREETING": "hello", "PORT": "80"}) == argv


def test_no_command_anywhere_is_an_error():
    with pytest.raises(ConfigError, match="no command"):
        resolve_argv({"name": "c"}, [], [], {})


def test_service_links_follow_kubernetes_and_the_pods_own_variables_win():
    services = (
        {"metadata": {"name": "kubernetes", "namespace": "default"},
         "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}},
        {"metadata": {"name": "redis-main", "namespace": "shop"},
         "spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 6379}]}},
        {"metadata": {"name": "headless", "namespace": "shop"}, "spec": {"clusterIP": "None", "ports": [{"port": 1}]}},
        {"metadata": {"name": "elsewhere", "namespace": "other"}, "spec": {"clusterIP": "10.96.0.8", "ports": []}},
    )
    facts = PodFacts(services=services)
    container = {"name": "c", "env": [{"name": "REDIS_MAIN_SERVICE_PORT", "value": "1"},
                                      {"name": "URL", "value": "redis://$(REDIS_MAIN_SERVICE_HOST)"}]}
    values = dict(resolve_env(POD, container, facts, lambda *_: None, lambda *_: None).env)
    assert values["REDIS_MAIN_SERVICE_HOST"] == "10.96.0.9" and values["REDIS_MAIN_SERVICE_PORT"] == "1"
    assert values["URL"] == "redis://10.96.0.9"
    assert values["REDIS_MAIN_PORT_6379_TCP"] == "tcp://10.96.0.9:6379"
    assert values["REDIS_MAIN_PORT_6379_TCP_ADDR"] == "10.96.0.9"
    assert values["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and values["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert values["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
    assert not any(k.startswith(("HEADLESS", "ELSEWHERE")) for k in values)
    no_links = {**POD, "spec": {**POD["spec"], "enableServiceLinks": False}}
    values = dict(resolve_env(no_links, {"name": "c"}, facts, lambda *_: None, lambda *_: None).env)
    assert sorted(k for k in values if k.startswith("KUBERNETES")) and not any(k.startswith("REDIS") for k in values)
