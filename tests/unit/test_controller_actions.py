"""The status patch controllers write: applied as a JSON merge patch, it must give the new status."""

import pytest

from orchestrator.apiserver.patch import merge_patch
from orchestrator.controllers.actions import status_patch


@pytest.mark.parametrize("old, new", [
    ({"active": 2, "failed": 1}, {"active": 1, "failed": 2}),
    ({"active": 2, "ready": 1}, {"active": 2}),
    ({"uncountedTerminatedPods": {"failed": ["u1", "u2"], "succeeded": []}, "failed": 0},
     {"uncountedTerminatedPods": {}, "failed": 2}),
    ({"uncountedTerminatedPods": {"failed": ["u1"]}}, {"uncountedTerminatedPods": {"failed": ["u1", "u2"]}}),
    ({"conditions": [{"type": "Complete"}]}, {"conditions": []}),
    ({}, {"disruptedPods": {"web-0": "2026-01-01T00:00:00Z"}}),
])
def test_a_status_patch_applied_as_a_merge_patch_gives_the_new_status(old, new):
    assert merge_patch(old, status_patch(old, new)) == new
