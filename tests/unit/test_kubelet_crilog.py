"""CRI log lines and the /containerLogs options (tail, since, timestamps, limits, partial lines)."""

from __future__ import annotations

import pytest

from orchestrator.kubelet.crilog import (
    Limit,
    LogOptionsError,
    parse_line,
    parse_options,
    parse_timestamp,
    render,
    select,
)

LINES = [b"2024-01-02T03:04:05.000000001Z stdout F one",
         b"2024-01-02T03:04:06.5Z stderr P tw",
         b"2024-01-02T03:04:06.6Z stderr F o",
         b"garbage",
         b"2024-01-02T03:04:07Z stdout F three",
         b"2024-01-02T03:04:08.123456789Z stdout F "]


def text(entries, **query):
    options = parse_options(query, now=parse_timestamp("2024-01-02T03:04:09Z"))
    return b"".join(render(e, options) for e in entries)


def test_lines_rejoin_partials_and_skip_garbage():
    assert text(select(LINES, parse_options({}, 0))) == b"one\ntwo\nthree\n\n"


def test_tail_counts_whole_lines():
    assert text(select(LINES, parse_options({"tailLines": "2"}, 0))) == b"three\n\n"
    assert text(select(LINES, parse_options({"tailLines": "3"}, 0))) == b"two\nthree\n\n"
    assert select(LINES, parse_options({"tailLines": "0"}, 0)) == []


def test_since_seconds_and_timestamps():
    now = parse_timestamp("2024-01-02T03:04:09Z")
    options = parse_options({"sinceSeconds": "2", "timestamps": "true"}, now)
    assert b"".join(render(e, options) for e in select(LINES, options)) == \
        b"2024-01-02T03:04:07Z three\n2024-01-02T03:04:08.123456789Z \n"


def test_limit_bytes_spans_the_answer():
    limit = Limit(5)
    assert limit.take(b"abc") == b"abc" and limit.take(b"defg") == b"de" and limit.exhausted


@pytest.mark.parametrize("query,message", [({"tailLines": "x"}, "tailLines"), ({"limitBytes": "0"}, "limitBytes"),
                                           ({"follow": "maybe"}, "follow"),
                                           ({"sinceTime": "2024-01-01T00:00:00Z", "sinceSeconds": "1"}, "at most one")])
def test_bad_options_are_named(query, message):
    with pytest.raises(LogOptionsError, match=message):
        parse_options(query, 0)


def test_timestamps_parse_with_nanoseconds_and_offsets():
    assert parse_timestamp("1970-01-01T00:00:01.5Z") == 1.5
    assert parse_timestamp("1970-01-01T01:00:00+01:00") == 0
    assert parse_line(b"2024-01-02T03:04:05Z stdout F a b c").text == b"a b c"
    assert parse_timestamp("yesterday") is None
