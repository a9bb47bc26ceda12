"""Probe specs with Kubernetes' defaults and the probe state machine (thresholds, holds, order)."""

from __future__ import annotations

import pytest

from orchestrator.kubelet import probes
from orchestrator.kubelet.backoff import BackoffEntry, bumped, duration_text, in_backoff, remaining_s


def spec(kind="readiness", **fields):
    return probes.probe_spec({"name": "c", f"{kind}Probe": {"httpGet": {"port": 80}, **fields}}, kind)


def run(spec_, results, start=0.0):
    state = probes.initial_state(spec_.kind)
    seen = []
    for i, ok in enumerate(results):
        state = probes.observe(spec_, state, ok, "" if ok else "boom", start + i)
        seen.append(state.result)
    return seen, state


def test_defaults_are_kubernetes_defaults():
    s = spec()
    assert (s.initial_delay_s, s.period_s, s.timeout_s, s.success_threshold, s.failure_threshold) == (0, 10, 1, 1, 3)
    assert probes.probe_spec({"name": "c"}, "liveness") is None


@pytest.mark.parametrize("kind,fields,message", [
    ("liveness", {"successThreshold": 2}, "must be 1 for liveness probes"),
    ("readiness", {"periodSeconds": 0}, "periodSeconds: must be an integer >= 1"),
    ("readiness", {"failureThreshold": "3"}, "failureThreshold: must be an integer"),
])
def test_bad_probe_fields_are_named(kind, fields, message):
    with pytest.raises(probes.ProbeSpecError, match=message):
        spec(kind, **fields)


def test_handlers_must_be_exactly_one_and_grpc_is_refused_clearly():
    with pytest.raises(probes.ProbeSpecError, match="exactly one"):
        probes.probe_spec({"livenessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 1}}}, "liveness")
    with pytest.raises(probes.ProbeSpecError, match="gRPC probes are not supported"):
        probes.probe_spec({"livenessProbe": {"grpc": {"port": 1}}}, "liveness")


def test_initial_results_per_kind():
    assert [probes.initial_state(k).result for k in ("readiness", "liveness", "startup")] == \
        ["failure", "success", "unknown"]


def test_readiness_needs_success_threshold_in_a_row_and_failure_threshold_to_drop():
    seen, _ = run(spec(successThreshold=2, failureThreshold=2), [True, True, False, True, False, False, True])
    assert seen == ["failure", "success", "success", "success", "success", "failure", "failure"]


def test_liveness_failure_puts_the_probe_on_hold():
    seen, state = run(spec("liveness", failureThreshold=3), [False, False, False])
    assert seen == ["success", "success", "failure"] and state.on_hold and state.output == "boom"
    assert not probes.should_probe(spec("liveness"), state, started=True)


def test_startup_gates_the_others_and_stops_after_success():
    startup, liveness = spec("startup"), spec("liveness")
    fresh = probes.initial_state("startup")
    assert probes.should_probe(startup, fresh, started=False) and not probes.should_probe(startup, fresh, True)
    assert not probes.should_probe(liveness, probes.initial_state("liveness"), started=False)


def test_schedule_waits_initial_delay_then_period():
    s = spec(initialDelaySeconds=5, periodSeconds=3)
    state = probes.initial_state("readiness")
    assert probes.next_run_at(s, state, started_at=100) == 105
    state = probes.observe(s, state, True, "", 105)
    assert probes.next_run_at(s, state, started_at=100) == 108


def test_named_ports_resolve():
    container = {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}
    assert probes.resolve_port("http", container) == 8080 and probes.resolve_port("81", container) == 81
    with pytest.raises(probes.ProbeSpecError, match="not a named port"):
        probes.resolve_port("grpc", container)


def test_messages_match_the_kubelet():
    assert probes.failure_event(spec("liveness"), "HTTP probe failed with statuscode: 500") == \
        "Liveness probe failed: HTTP probe failed with statuscode: 500"
    assert probes.killing_message("liveness", "web") == "Container web failed liveness probe, will be restarted"


def test_backoff_entries():
    first = bumped(None, 100, 100)
    assert first == BackoffEntry(10, 100) and in_backoff(first, 100, 109) and not in_backoff(first, 100, 110)
    assert remaining_s(first, 100, 104) == 6
    assert bumped(BackoffEntry(200, 0), 10, 10).delay_s == 300
    assert bumped(BackoffEntry(200, 0), 601, 601).delay_s == 10  # stable for twice the cap: start over
    assert [duration_text(s) for s in (10, 80, 300, 3700)] == ["10s", "1m20s", "5m0s", "1h1m40s"]
