"""Expectations: a controller waits for its cache to show its own creates and deletes (or a timeout)."""

from orchestrator.controllers.expectations import Expectations


def pod(name, deleting=False):
    return {"metadata": {"name": name, **({"deletionTimestamp": "x"} if deleting else {})}}


def test_a_controller_waits_until_the_cache_shows_what_it_created_and_deleted():
    expectations = Expectations(timeout_s=30)
    assert expectations.satisfied("job", [], 0.0)  # nothing written yet
    expectations.expect("job", ["a", "b"], ["old"], 0.0)
    assert not expectations.satisfied("job", [pod("old")], 1.0)  # neither create seen, delete not seen
    assert not expectations.satisfied("job", [pod("a"), pod("old", deleting=True)], 1.0)  # b not seen yet
    assert expectations.satisfied("job", [pod("a"), pod("b"), pod("old", deleting=True)], 1.0)
    assert expectations.satisfied("job", [], 2.0)  # met once: forgotten


def test_a_lost_watch_event_stops_the_controller_only_until_the_timeout():
    expectations = Expectations(timeout_s=30)
    expectations.expect("ds", ["never-seen"], [], 0.0)
    assert not expectations.satisfied("ds", [], 29.0)
    assert expectations.satisfied("ds", [], 31.0)


def test_a_write_counts_once_shown_even_if_the_pod_is_gone_at_the_next_look():
    """A ReplicaSet's replacement pod, seen, then evicted with the rest of its node's pods: the
    owner is not held until the timeout waiting to see it again."""
    expectations = Expectations(timeout_s=30)
    expectations.expect("rs", ["new-1", "new-2"], [], 0.0)
    assert not expectations.satisfied("rs", [pod("new-1")], 1.0)
    assert expectations.satisfied("rs", [pod("new-2")], 2.0)  # new-1 was seen at 1.0
