"""events.k8s.io/v1: Event (the same objects as core/v1 Events, in their newer form).

Facts from k8s.io/api events/v1 at v0.33: field numbers from generated.proto; JSON names, omitempty,
pointers and list/map markers from types.go. The descriptions are ours.
"""

from __future__ import annotations

from orchestrator.api.types.model import F, Message

MESSAGES = [
    Message("events.v1.Event", "A report of something that happened to an object.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata.", keep_zero=True),
        F(2, "eventTime", "MicroTime", "When the event first happened.", required=True),
        F(3, "series", "*EventSeries", "Counts repeats of the event."),
        F(4, "reportingController", "string", "The controller that reported it (e.g. default-scheduler)."),
        F(5, "reportingInstance", "string", "The instance of that controller."),
        F(6, "action", "string", "What was done (or failed) about the object."),
        F(7, "reason", "string", "A CamelCase word for why (e.g. Scheduled)."),
        F(8, "regarding", "core.v1.ObjectReference", "The object the event is about."),
        F(9, "related", "*core.v1.ObjectReference", "A second object involved."),
        F(10, "note", "string", "Human-readable description."),
        F(11, "type", "string", "Normal or Warning."),
        F(12, "deprecatedSource", "core.v1.EventSource", "The core/v1 source, for compatibility."),
        F(13, "deprecatedFirstTimestamp", "Time", "The core/v1 firstTimestamp, for compatibility."),
        F(14, "deprecatedLastTimestamp", "Time", "The core/v1 lastTimestamp, for compatibility."),
        F(15, "deprecatedCount", "int32", "The core/v1 count, for compatibility."),
    ], gvk=("events.k8s.io", "v1", "Event")),
    Message("events.v1.EventSeries", "Repeats of an event.", [
        F(1, "count", "int32", "How many times it happened.", required=True),
        F(2, "lastObservedTime", "MicroTime", "When it last happened.", required=True),
    ]),
]
