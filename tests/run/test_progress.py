"""The progress reducer, fed the engine events the CLI sends (EngineEvent.from_json fixtures)."""

from __future__ import annotations

import io

from pulumi.automation import EngineEvent
from rich.console import Console

from trainstack.run.progress import ProgressState, ProgressView, reduce

URN = "urn:pulumi:s::trainstack::trainstack:compute:EcsTrainingCluster$aws:ecs/cluster:Cluster::training-cluster"
ROLE = "urn:pulumi:s::trainstack::aws:iam/role:Role::training-task-role"


def ev(**data) -> EngineEvent:
    return EngineEvent.from_json({"sequence": 1, "timestamp": 0, **data})


def md(op: str, urn: str = URN) -> dict:
    return {"metadata": {"op": op, "urn": urn, "type": urn.split("::")[2].rsplit("$", 1)[-1], "provider": ""}}


def test_counts_finished_operations_and_tracks_the_current_one():
    s = ProgressState(total=2)
    reduce(s, ev(preludeEvent={"config": {}}))
    reduce(s, ev(resourcePreEvent=md("create")))
    assert s.current == "create aws:ecs/cluster:Cluster training-cluster" and s.done == 0
    reduce(s, ev(resOutputsEvent=md("create")))
    reduce(s, ev(resourcePreEvent=md("same", ROLE)))  # unchanged resources are not progress
    reduce(s, ev(resOutputsEvent=md("same", ROLE)))
    assert (s.done, s.total, s.current) == (1, 2, "")
    assert s.lines == ["[1/2] create aws:ecs/cluster:Cluster training-cluster"]
    reduce(
        s,
        ev(
            summaryEvent={
                "maybeCorrupt": False,
                "durationSeconds": 3,
                "resourceChanges": {"create": 1},
                "PolicyPacks": {},
            }
        ),
    )
    assert s.summary == {"create": 1}


def test_failures_diagnostics_and_policy_violations_are_kept_for_the_error_message():
    s = ProgressState(total=5)
    reduce(s, ev(resourcePreEvent=md("create", ROLE)))
    reduce(
        s,
        ev(
            diagnosticEvent={
                "message": "creating IAM Role: AccessDenied\n",
                "color": "never",
                "severity": "error",
                "urn": ROLE,
            }
        ),
    )
    reduce(s, ev(resOpFailedEvent={**md("create", ROLE), "status": 1, "steps": 1}))
    reduce(s, ev(diagnosticEvent={"message": "debug noise", "color": "never", "severity": "info"}))
    reduce(
        s,
        ev(
            policyEvent={
                "message": "no SSH key",
                "color": "never",
                "policyName": "no-ssh-key",
                "policyPackName": "trainstack",
                "policyPackVersion": "0.1.0",
                "policyPackVersionTag": "v0.1.0",
                "enforcementLevel": "mandatory",
            }
        ),
    )
    reduce(s, ev(cancelEvent={}))
    assert s.errors == ["creating IAM Role: AccessDenied"] and s.failed == [ROLE] and not s.in_flight
    assert s.lines == [
        "error: creating IAM Role: AccessDenied",
        "FAILED create aws:iam/role:Role training-task-role",
        "policy trainstack/no-ssh-key (mandatory): no SSH key",
    ]
    assert s.cancelled


def test_plain_view_prints_one_line_per_step_without_markup():
    buf = io.StringIO()
    view = ProgressView(Console(file=buf, width=200, force_terminal=False), "up s", 1)
    with view:
        view.on_event(ev(resourcePreEvent=md("create")))
        view.on_event(ev(resOutputsEvent=md("create")))
    assert buf.getvalue().splitlines() == [
        "up s: 1 resource operation(s) expected",
        "[1/1] create aws:ecs/cluster:Cluster training-cluster",
    ]


def test_live_view_on_a_terminal_draws_a_bar_and_keeps_errors_above_it():
    buf = io.StringIO()
    view = ProgressView(Console(file=buf, width=120, force_terminal=True), "up s", 2)
    with view:
        view.on_event(ev(resourcePreEvent=md("create")))
        view.on_event(ev(diagnosticEvent={"message": "boom", "color": "never", "severity": "error"}))
        view.on_event(ev(resOutputsEvent=md("create")))
    text = buf.getvalue()
    assert "error: boom" in text and "1/2" in text


def test_the_fake_cli_encodes_event_requests_as_the_proto_does():
    from pulumi.runtime.proto import events_pb2

    from trainstack.standins.fake_pulumi import encode_event_request

    for text in ("{}", '{"summaryEvent": {}}', "x" * 300, '{"m": "ünïcode ' + "y" * 20000 + '"}'):
        assert encode_event_request(text) == events_pb2.EventRequest(event=text).SerializeToString(), text[:20]


def test_a_preview_counts_its_planned_steps_and_its_bar_ends_full():
    s = ProgressState(total=3, planning=True)
    for urn in (URN, ROLE):
        reduce(s, ev(resourcePreEvent={**md("create", urn), "planning": True}))
        reduce(s, ev(resOutputsEvent={**md("create", urn), "planning": True}))
    assert s.done == 2 and s.lines[-1].startswith("[2/3] create")
    # The plan estimated 3 (it counts component resources the engine may group): the summary ends the bar full.
    reduce(s, ev(summaryEvent={"maybeCorrupt": False, "durationSeconds": 1, "resourceChanges": {}, "PolicyPacks": {}}))
    assert (s.done, s.total) == (2, 2)


def test_a_destroy_without_a_known_total_never_claims_one():
    buf = io.StringIO()
    view = ProgressView(Console(file=buf, width=200, force_terminal=False), "destroy s", 0)
    with view:
        view.on_event(ev(resourcePreEvent=md("delete")))
        view.on_event(ev(resOutputsEvent=md("delete")))
    assert buf.getvalue().splitlines() == ["destroy s:", "[1] delete aws:ecs/cluster:Cluster training-cluster"]


def test_at_80_columns_the_count_and_the_elapsed_time_keep_their_place():
    import re

    long_urn = URN.replace("training-cluster", "training-cluster-capacity-provider-" + "x" * 60)
    for title, total in (("up " + "a" * 63, 141), ("destroy alice-ecs-202611230700-3f2a", 0)):
        buf = io.StringIO()
        view = ProgressView(Console(file=buf, width=80, force_terminal=True, color_system=None), title, total)
        with view:
            view.on_event(ev(resourcePreEvent=md("create", long_urn)))
            view.on_event(ev(resOutputsEvent=md("create", long_urn)))
            view.on_event(ev(resourcePreEvent=md("create", long_urn)))
            view._progress.refresh()
        frames = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", f) for f in buf.getvalue().replace("\r", "\n").split("\n")]
        last = [f for f in frames if f.strip()][-1]
        assert len(last) <= 80 and re.search(r" 1/(141|\?) +0:00:0\d ", last), last
        assert "…" in last  # only the operation text (and an over-long title) gave way
