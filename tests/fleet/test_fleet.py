"""`trainstack ls` / `reap`: clusters found by tags in moto, scaling activities and SageMaker via Stubber."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from typer.testing import CliRunner

from tests.helpers import ROOT
from trainstack.cli.main import app
from trainstack.fleet import inventory as fleet
from trainstack.model import tags

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)
REGION = "us-east-1"
ACCOUNT = "123456789012"


def h(hours: float) -> dt.datetime:
    return NOW - dt.timedelta(hours=hours)


def cluster_tags(stack: str, owner: str, backend: str, expires: dt.datetime) -> list[dict]:
    return [
        {"Key": k, "Value": v}
        for k, v in {
            tags.KIND: "cluster",
            tags.STACK: stack,
            tags.OWNER: owner,
            tags.BACKEND: backend,
            tags.EXPIRES_AT: expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "trainstack:project": "trainstack",
        }.items()
    ]


def launch(ec2, stack_tags, launched: dt.datetime, instance_type: str = "p3.2xlarge", spot: bool = False) -> str:
    from moto.ec2.models import ec2_backends

    image = "ami-12c6146b"  # moto validates no AMI ids unless asked to
    kw = {"InstanceMarketOptions": {"MarketType": "spot"}} if spot else {}
    iid = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType=instance_type,
        TagSpecifications=[{"ResourceType": "instance", "Tags": stack_tags}],
        **kw,
    )["Instances"][0]["InstanceId"]
    ec2_backends[ACCOUNT][REGION].get_instance(iid).launch_time = launched.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return iid


CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}
JOB_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/carol-job"


@pytest.fixture(scope="module")
def fleet_world():
    """alice-ecs-1 (expired 2 h ago: one running p3.2xlarge, one terminated older instance known only from
    scaling activities), bob-ec2-2 (a running spot g5.xlarge, expires in 5 h), carol-sm-3 (SageMaker).
    One moto session per module: EC2's backend takes seconds to build."""
    with pytest.MonkeyPatch.context() as mp, mock_aws():
        for key, value in CREDENTIALS.items():
            mp.setenv(key, value)
        mp.delenv("AWS_PROFILE", raising=False)
        ec2 = boto3.client("ec2", region_name=REGION)
        alice = launch(ec2, cluster_tags("alice-ecs-1", "alice", "ecs", h(2)), h(3))
        bob = launch(ec2, cluster_tags("bob-ec2-2", "bob", "ec2", h(-5)), h(1.5), "g5.xlarge", spot=True)
        # The job exists in moto (so the tagging API finds it); its description is stubbed (moto has no
        # BillableTimeInSeconds).
        boto3.client("sagemaker", region_name=REGION).create_training_job(
            TrainingJobName="carol-job",
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/sm",
            AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "FastFile"},
            OutputDataConfig={"S3OutputPath": "s3://b/out/"},
            ResourceConfig={"InstanceType": "ml.p3.2xlarge", "InstanceCount": 2, "VolumeSizeInGB": 200},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
            Tags=cluster_tags("carol-sm-3", "carol", "sagemaker", h(-1)),
        )
        yield {
            "alice": alice,
            "bob": bob,
            "tagging": boto3.client("resourcegroupstaggingapi", region_name=REGION),
            "ec2": ec2,
        }


@pytest.fixture
def fleet_aws(fleet_world):
    """Fresh clients on the module's moto world; scaling activities and the SageMaker job via Stubber."""
    alice = fleet_world["alice"]
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    stub = Stubber(autoscaling)
    group = {
        "AutoScalingGroupName": "alice-gpu",
        "MinSize": 0,
        "MaxSize": 4,
        "DesiredCapacity": 1,
        "DefaultCooldown": 300,
        "AvailabilityZones": ["us-east-1a"],
        "HealthCheckType": "EC2",
        "CreatedTime": h(5),
        "Tags": [
            {
                "Key": t["Key"],
                "Value": t["Value"],
                "PropagateAtLaunch": True,
                "ResourceId": "alice-gpu",
                "ResourceType": "auto-scaling-group",
            }
            for t in cluster_tags("alice-ecs-1", "alice", "ecs", h(2))
        ],
        "MixedInstancesPolicy": {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateId": "lt-0123456789abcdef0"},
                "Overrides": [{"InstanceType": "p3.2xlarge"}, {"InstanceType": "p3.8xlarge"}],
            }
        },
    }
    stub.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [group]},
        {"Filters": [{"Name": f"tag:{tags.STACK}", "Values": ["alice-ecs-1", "bob-ec2-2"]}]},
    )

    def activity(desc, start, end, status="Successful"):
        return {
            "ActivityId": f"a-{len(desc)}-{start:%H%M}",
            "AutoScalingGroupName": "alice-gpu",
            "Description": desc,
            "Cause": "...",
            "StartTime": start,
            "EndTime": end,
            "StatusCode": status,
            "Progress": 100,
        }

    stub.add_response(
        "describe_scaling_activities",
        {
            "Activities": [
                activity(f"Launching a new EC2 instance: {alice}", h(3 + 5 / 60), h(3)),
                activity("Launching a new EC2 instance: i-0000000000000old0", h(4), h(4) + dt.timedelta(minutes=2)),
                activity("Terminating EC2 instance: i-0000000000000old0", h(3.5) - dt.timedelta(minutes=1), h(3.5)),
                activity("Launching a new EC2 instance: i-00000000000failed", h(4), h(4), status="Failed"),
            ]
        },
        {"AutoScalingGroupName": "alice-gpu", "IncludeDeletedGroups": True},
    )
    stub.activate()

    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sm_stub = Stubber(sagemaker)
    sm_stub.add_response(
        "describe_training_job",
        {
            "TrainingJobName": "carol-job",
            "TrainingJobArn": JOB_ARN,
            "ModelArtifacts": {"S3ModelArtifacts": ""},
            "TrainingJobStatus": "Completed",
            "SecondaryStatus": "Completed",
            "AlgorithmSpecification": {"TrainingInputMode": "FastFile"},
            "ResourceConfig": {"InstanceType": "ml.p3.2xlarge", "InstanceCount": 2, "VolumeSizeInGB": 200},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "CreationTime": h(2),
            "TrainingStartTime": h(2),
            "TrainingEndTime": h(1.5),
            "BillableTimeInSeconds": 1800,
            "EnableManagedSpotTraining": True,
        },
        {"TrainingJobName": "carol-job"},
    )
    sm_stub.activate()
    clients = fleet.AwsClients(fleet_world["tagging"], fleet_world["ec2"], autoscaling, sagemaker)
    return {"clients": clients, **fleet_world, "stubs": (stub, sm_stub)}


def by_stack(clusters):
    return {c.stack: c for c in clusters}


def test_ls_finds_tagged_clusters_and_estimates_cost_from_launch_times(fleet_aws):
    found = by_stack(fleet.list_clusters(fleet_aws["clients"], NOW, root=ROOT))
    assert set(found) == {"alice-ecs-1", "bob-ec2-2", "carol-sm-3"}
    alice, bob, carol = found["alice-ecs-1"], found["bob-ec2-2"], found["carol-sm-3"]
    assert (alice.owner, alice.backend, alice.expires_at, alice.expired(NOW)) == ("alice", "ecs", h(2), True)
    assert not bob.expired(NOW) and bob.owner == "bob"
    # The running p3.2xlarge from its LaunchTime (not its launch activity, 5 min earlier) until now, plus the
    # terminated one, known only from activities, at the dearest type of its group (p3.8xlarge) for 30 min.
    assert alice.cost_usd == pytest.approx(3 * 3.06 + 0.5 * 12.24)
    assert alice.running == 1 and alice.usd_per_hour == pytest.approx(3.06) and alice.cost_is_bound
    assert alice.created_at == h(5)
    # Spot, priced at on-demand: an upper bound, and said so.
    assert bob.cost_usd == pytest.approx(1.5 * 1.006) and bob.cost_is_bound and bob.running == 1
    # SageMaker: billable seconds × instances × ml price.
    assert carol.cost_usd == pytest.approx(0.5 * 2 * 3.825) and carol.running == 0
    for stub in fleet_aws["stubs"]:
        stub.assert_no_pending_responses()


def test_ls_says_how_long_each_cluster_has_been_idle(fleet_aws):
    """Idle = no GPU instance running (ec2, ecs, eks) or no job in progress (sagemaker), as AWS reports it."""
    found = by_stack(fleet.list_clusters(fleet_aws["clients"], NOW, root=ROOT))
    assert found["alice-ecs-1"].idle_since is None and found["bob-ec2-2"].idle_since is None  # training
    assert found["carol-sm-3"].idle_since == h(1.5)  # its job ended then
    assert [fleet.idle_cell(found[s], NOW) for s in ("alice-ecs-1", "carol-sm-3")] == ["-", "1h30m"]


def _instance(itype, start, end=None):
    return fleet._Instance("i-1", "s", itype, start=start, end=end, running=end is None)


def test_idle_counts_gpu_instances_only():
    created = h(10)
    assert fleet._idle_since([], created) == created  # nothing ever ran
    assert fleet._idle_since([_instance("p3.2xlarge", h(3), h(2)), _instance("g5.xlarge", h(4), h(1))], created) == h(1)
    assert fleet._idle_since([_instance("p3.2xlarge", h(3))], created) is None  # one still trains
    # An eks system node (no GPU) does not keep a cluster busy; an unknown type does (busy rather than wrongly idle).
    assert not fleet._is_gpu("t3.medium") and fleet._is_gpu("p3.2xlarge") and fleet._is_gpu("x9.unknown")


MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:trainstack-idle-0123"
ALARM = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:trainstack-idle-eks-cluster-1"
EKS_CLUSTER = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/eks-cluster-1"


@pytest.mark.parametrize(
    "executions, arns, state, cell",
    [
        ([], [EKS_CLUSTER], "armed", "40m (stop in ~20m)"),
        ([{"status": "RUNNING", "startDate": h(0.1)}], [EKS_CLUSTER], "stopping", "stopping"),
        ([{"status": "SUCCEEDED", "startDate": h(2.2), "stopDate": h(2)}], [], "stopped", "stopped 2h00m ago"),
        # `pulumi up` recreated the cluster after a stop: armed again.
        (
            [{"status": "SUCCEEDED", "startDate": h(2.2), "stopDate": h(2)}],
            [EKS_CLUSTER],
            "armed",
            "40m (stop in ~20m)",
        ),
        ([{"status": "FAILED", "startDate": h(1)}], [EKS_CLUSTER], "failed", "40m [red](stop failed)[/]"),
    ],
)
def test_ls_shows_an_eks_idle_stop_from_its_state_machine_and_alarm(executions, arns, state, cell):
    sfn, cloudwatch = boto3.client("stepfunctions", region_name=REGION), boto3.client("cloudwatch", region_name=REGION)
    sfn_stub, cw_stub = Stubber(sfn), Stubber(cloudwatch)
    cw_stub.add_response(
        "describe_alarms",
        {"MetricAlarms": [{"AlarmName": ALARM.rsplit(":", 1)[-1], "EvaluationPeriods": 12}]},
        {"AlarmNames": [ALARM.rsplit(":", 1)[-1]]},
    )
    runs = [
        {
            "executionArn": f"{MACHINE.replace('stateMachine', 'execution')}:r{i}",
            "stateMachineArn": MACHINE,
            "name": f"r{i}",
            **e,
        }
        for i, e in enumerate(executions)
    ]
    sfn_stub.add_response("list_executions", {"executions": runs}, {"stateMachineArn": MACHINE, "maxResults": 1})
    cluster = fleet.Cluster("dev-eks", backend="eks", arns=[MACHINE, ALARM, *arns], idle_since=h(40 / 60))
    with sfn_stub, cw_stub:
        clients = fleet.AwsClients(None, None, None, None, cloudwatch, sfn)
        fleet.idle_stops(clients, {"dev-eks": cluster})
    assert cluster.idle_stop is not None and cluster.idle_stop.state == state and cluster.idle_stop.minutes == 60
    assert fleet.idle_cell(cluster, NOW) == cell


def test_state_join_marks_orphans_and_state_only_stacks(fleet_aws):
    state = {
        "alice-ecs-1": fleet.StateStack("alice-ecs-1", h(6), False, 40),
        "dave-ecs-9": fleet.StateStack("dave-ecs-9", h(30), False, 0),
        "platform": fleet.StateStack("platform", h(100), False, 60),
    }
    found = by_stack(fleet.list_clusters(fleet_aws["clients"], NOW, root=ROOT, state=state))
    assert found["alice-ecs-1"].state == "ok" and found["alice-ecs-1"].last_update == h(6)
    assert found["bob-ec2-2"].state == "orphan"
    assert found["dave-ecs-9"].state == "state-only"
    assert "platform" not in found  # stacks/Pulumi.platform.yaml says kind: platform


def test_spot_prices_replace_the_on_demand_bound(fleet_aws):
    real_ec2 = boto3.client("ec2", region_name=REGION)
    clients = dataclasses.replace(fleet_aws["clients"], ec2=real_ec2)
    # DescribeInstances still goes to moto; only the spot price history is stubbed (moto returns random ones).
    calls = []
    orig = real_ec2.get_paginator

    def paginator(name):
        if name != "describe_spot_price_history":
            return orig(name)
        calls.append(name)

        class P:
            def paginate(self, **kw):
                assert kw["InstanceTypes"] == ["g5.xlarge"] and kw["ProductDescriptions"] == ["Linux/UNIX"]
                return [{"SpotPriceHistory": [{"SpotPrice": "0.30"}, {"SpotPrice": "0.40"}]}]

        return P()

    real_ec2.get_paginator = paginator
    found = by_stack(fleet.list_clusters(clients, NOW, root=ROOT, spot_prices=True))
    assert calls and found["bob-ec2-2"].cost_usd == pytest.approx(1.5 * 0.40)
    assert not found["bob-ec2-2"].cost_is_bound


def _cli(monkeypatch, fleet_aws, args, destroy=None):
    monkeypatch.setattr(fleet, "utcnow", lambda: NOW)
    monkeypatch.setattr(fleet.AwsClients, "for_region", classmethod(lambda cls, region: fleet_aws["clients"]))
    monkeypatch.setattr(fleet, "pulumi_state", lambda root: None)
    if destroy is not None:
        monkeypatch.setattr(fleet, "destroy_with_automation_api", lambda root: destroy)
    return CliRunner().invoke(app, args)


def test_ls_json_lists_owner_backend_expiry_expired_flag_and_cost(monkeypatch, fleet_aws):
    result = _cli(monkeypatch, fleet_aws, ["ls", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["stack"]: r for r in json.loads(result.output)}
    alice = rows["alice-ecs-1"]
    assert alice["owner"] == "alice" and alice["backend"] == "ecs"
    assert alice["expiresAt"] == "2026-11-23T10:00:00Z" and alice["expired"] is True
    assert alice["costSoFarUsd"] == pytest.approx(round(3 * 3.06 + 0.5 * 12.24, 2))
    assert alice["runningInstances"] == 1 and alice["ageHours"] == 5
    assert rows["bob-ec2-2"]["expired"] is False and rows["bob-ec2-2"]["costIsUpperBound"] is True
    assert rows["carol-sm-3"]["idleSince"] == "2026-11-23T10:30:00Z" and rows["carol-sm-3"]["idleMinutes"] == 90
    assert alice["idleSince"] is None and alice["idleMinutes"] is None and alice["idleStop"] is None


def test_ls_filters_by_owner_and_expiry(monkeypatch, fleet_aws):
    result = _cli(monkeypatch, fleet_aws, ["ls", "--json", "--owner", "alice", "--expired"])
    assert [r["stack"] for r in json.loads(result.output)] == ["alice-ecs-1"]


def test_ls_table_shows_every_cluster(monkeypatch, fleet_aws):
    result = _cli(monkeypatch, fleet_aws, ["ls"])
    assert result.exit_code == 0
    for text in ("alice-ecs-1", "2h00m ago", "in 5h00m", "≤$15.30", "carol-sm-3", "IDLE", "1h30m"):
        assert text in result.output, result.output


def test_reap_expired_dry_run_names_exactly_the_expired_ones(monkeypatch, fleet_aws):
    destroyed = []
    result = _cli(
        monkeypatch,
        fleet_aws,
        ["reap", "--expired", "--dry-run"],
        destroy=lambda name: destroyed.append(name) or (True, "ok"),
    )
    assert result.exit_code == 0, result.output
    named = [line.split()[1].rstrip(":") for line in result.output.splitlines() if line.startswith("would-destroy")]
    assert named == ["alice-ecs-1"] and destroyed == []


def test_reap_grace_keeps_recently_expired_stacks(fleet_aws):
    clusters = fleet.list_clusters(fleet_aws["clients"], NOW, root=ROOT)
    assert fleet.reap_candidates(clusters, NOW, expired=True, prefix=None, grace=fleet.parse_duration("3h")) == []
    assert [
        c.stack for c in fleet.reap_candidates(clusters, NOW, expired=False, prefix="bob-", grace=dt.timedelta(0))
    ] == ["bob-ec2-2"]
    with pytest.raises(fleet.FleetError, match="needs a selector"):
        fleet.reap_candidates(clusters, NOW, expired=False, prefix=None, grace=dt.timedelta(0))


def test_reap_without_yes_refuses_off_a_terminal(monkeypatch, fleet_aws):
    destroyed = []
    result = _cli(monkeypatch, fleet_aws, ["reap", "--expired"], destroy=lambda n: destroyed.append(n) or (True, ""))
    assert result.exit_code == 2 and destroyed == [] and "--yes" in result.output


def test_reap_reports_each_result_and_fails_if_any_failed(monkeypatch, fleet_aws):
    def destroy(name):
        return (False, "destroy failed: lock held") if name == "bob-ec2-2" else (True, "destroyed and removed")

    result = _cli(monkeypatch, fleet_aws, ["reap", "--prefix", "bob-", "--yes"], destroy=destroy)
    assert result.exit_code == 1, result.output
    assert "failed bob-ec2-2: destroy failed: lock held" in result.output and "alice" not in result.output


def test_reap_succeeds_when_every_destroy_does(monkeypatch, fleet_aws):
    result = _cli(
        monkeypatch,
        fleet_aws,
        ["reap", "--expired", "--grace", "0", "--yes"],
        destroy=lambda name: (True, "destroyed and removed"),
    )
    assert result.exit_code == 0 and "destroyed alice-ecs-1" in result.output and "bob" not in result.output


def test_orphans_are_reported_with_arns_and_never_destroyed():
    orphan = fleet.Cluster("eve-ecs-4", "eve", "ecs", h(1), ["arn:aws:ec2:us-east-1:1:instance/i-1"], "orphan")
    ok = fleet.Cluster("frank-ecs-5", "frank", "ecs", h(1), ["arn:x"], "ok")
    broken = fleet.Cluster("gina-ecs-6", "gina", "ecs", h(1), ["arn:y"], "ok")
    destroyed = []

    def destroy(name):
        destroyed.append(name)
        return (name != "gina-ecs-6", "done" if name != "gina-ecs-6" else "destroy failed: boom")

    outcomes = fleet.reap([orphan, ok, broken], destroy_stack=destroy, dry_run=False)
    assert destroyed == ["frank-ecs-5", "gina-ecs-6"]  # one failure does not stop the others
    assert outcomes[0].action == "orphan" and outcomes[0].arns == ("arn:aws:ec2:us-east-1:1:instance/i-1",)
    assert [o.action for o in outcomes[1:]] == ["destroyed", "failed"]


@pytest.mark.parametrize("text, minutes", [("15m", 15), ("2h", 120), ("1h30m", 90), ("0", 0), ("1d", 1440)])
def test_grace_durations(text, minutes):
    assert fleet.parse_duration(text) == dt.timedelta(minutes=minutes)


def test_a_bad_grace_names_the_option_and_the_fix():
    with pytest.raises(fleet.FleetError, match=r"--grace = 'soon'.*15m"):
        fleet.parse_duration("soon")


def test_the_default_destroy_says_it_needs_the_pulumi_cli(monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    ok, message = fleet.destroy_with_automation_api(ROOT)("alice-ecs-1")
    assert not ok and "Pulumi CLI" in message


def test_an_empty_fleet_says_so():
    import io

    from rich.console import Console

    out = io.StringIO()
    fleet.render([], NOW, Console(file=out))
    assert out.getvalue().strip() == "no trainstack clusters found"


def test_an_access_denied_names_the_permissions(fleet_aws):
    tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
    stub = Stubber(tagging)
    stub.add_client_error("get_resources", "AccessDeniedException", "not authorized to perform tag:GetResources")
    stub.activate()
    with pytest.raises(fleet.FleetError, match=r"GetResources: AccessDeniedException.*tag:GetResources"):
        fleet.list_clusters(dataclasses.replace(fleet_aws["clients"], tagging=tagging), NOW, root=ROOT)


def test_state_only_stacks_show_owner_backend_and_expiry_from_their_outputs(fleet_aws):
    outputs = {"owner": "dave", "backend": "ec2", "expiresAt": "2026-11-23T18:00:00Z", "region": REGION}
    state = {
        "dave-ec2-9": fleet.StateStack("dave-ec2-9", h(30), False, 0, lambda: outputs),
        "never-up": fleet.StateStack("never-up", h(1), False, 0, lambda: {}),  # state, no outputs yet
        "team-platform": fleet.StateStack("team-platform", h(90), False, 60, lambda: {"buckets": {}}),
    }
    found = by_stack(fleet.list_clusters(fleet_aws["clients"], NOW, root=ROOT, state=state))
    dave = found["dave-ec2-9"]
    assert (dave.state, dave.owner, dave.backend) == ("state-only", "dave", "ec2")
    assert dave.expires_at == dt.datetime(2026, 11, 23, 18, tzinfo=dt.timezone.utc) and not dave.expired(NOW)
    assert found["never-up"].owner is None and found["never-up"].state == "state-only"
    assert "team-platform" not in found  # outputs without `backend`: a platform, not a cluster
    result_rows = {c.stack: c.to_json(NOW) for c in found.values()}
    assert result_rows["dave-ec2-9"]["expiresAt"] == "2026-11-23T18:00:00Z"


def test_a_cost_that_rounds_to_nothing_carries_no_bound_sign():
    import io

    from rich.console import Console

    out = io.StringIO()
    zero = fleet.Cluster("eve-ecs-4", "eve", "ecs", h(-1), [], "ok", cost_is_bound=True)
    some = fleet.Cluster("fay-ecs-5", "fay", "ecs", h(-1), [], "ok", cost_usd=1.5, cost_is_bound=True)
    fleet.render([zero, some], NOW, Console(file=out, width=200))
    rows = {line.split()[0]: line for line in out.getvalue().splitlines() if line.startswith(("eve", "fay"))}
    assert rows["eve-ecs-4"].rstrip().endswith(" $0.00") and "≤$0.00" not in out.getvalue()
    assert rows["fay-ecs-5"].rstrip().endswith("≤$1.50")


def test_ls_and_reap_find_the_pulumi_cli_as_run_does(tmp_path, monkeypatch):
    """TRAINSTACK_PULUMI_ROOT works for every command: ls reads state through it (the fake CLI here)."""
    import sys

    from tests.fakes.run_harness import FAKE_ROOT

    state = tmp_path / "state"
    (state / "stacks").mkdir(parents=True)
    (state / "stacks" / "bob-ecs-1.json").write_text(
        json.dumps({"name": "bob-ecs-1", "config": {}, "resources": [], "history": [], "outputs": {"backend": "ecs"}})
    )
    monkeypatch.setenv("PATH", str(tmp_path))  # no `pulumi` on PATH
    monkeypatch.setenv("TRAINSTACK_PULUMI_ROOT", str(FAKE_ROOT))
    monkeypatch.setenv("FAKE_PULUMI_STATE", str(state))
    monkeypatch.setenv("FAKE_PULUMI_PYTHON", sys.executable)
    found = fleet.pulumi_state(ROOT)
    assert found is not None and set(found) == {"bob-ecs-1"} and found["bob-ecs-1"].outputs() == {"backend": "ecs"}
    monkeypatch.delenv("TRAINSTACK_PULUMI_ROOT")
    assert fleet.pulumi_state(ROOT) is None  # no CLI anywhere: state unknown, never a crash


# --- kept stacks' runs (trainstack/fleet/runs.py) ----------------------------------------------


def _run(status, *, detached=True, ended_hours=None, job_id=None):
    from trainstack.fleet.runs import RunSummary

    return RunSummary(
        status=status,
        detached=detached,
        kept=True,
        finished=status != "detached",
        job_id=job_id,
        finished_at=h(ended_hours) if ended_hours is not None else None,
    )


def test_reap_finished_takes_only_detached_stacks_whose_latest_job_ended_before_the_grace():
    clusters = [
        fleet.Cluster("a-running", "a", "ecs", h(-5), state="ok", run=_run("detached")),
        fleet.Cluster("b-done-long-ago", "b", "eks", h(-5), state="ok", run=_run("succeeded", ended_hours=1)),
        fleet.Cluster("c-done-just-now", "c", "ec2", h(-5), state="ok", run=_run("failed", ended_hours=0.1)),
        fleet.Cluster(
            "d-kept", "d", "sagemaker", h(-5), state="ok", run=_run("succeeded", detached=False, ended_hours=3)
        ),
        fleet.Cluster("e-no-run", "e", "ecs", h(-5), state="ok"),
    ]
    grace = fleet.parse_duration("15m")
    picked = fleet.reap_candidates(clusters, NOW, expired=False, prefix=None, grace=grace, finished=True)
    assert [c.stack for c in picked] == ["b-done-long-ago"]
    # the grace counts from the job's end: with none, the one that ended 6 minutes ago goes too
    picked = fleet.reap_candidates(clusters, NOW, expired=False, prefix=None, grace=dt.timedelta(0), finished=True)
    assert [c.stack for c in picked] == ["b-done-long-ago", "c-done-just-now"]


def test_ls_shows_the_run_column_only_when_a_stack_has_a_run():
    import io

    from rich.console import Console

    out = io.StringIO()
    plain = fleet.Cluster("eve-ecs-4", "eve", "ecs", h(-1), [], "ok")
    fleet.render([plain], NOW, Console(file=out, width=200))
    assert " RUN" not in out.getvalue().splitlines()[0].replace("RUNNING", "")
    out = io.StringIO()
    running = fleet.Cluster("fay-ecs-5", "fay", "ecs", h(-1), [], "ok", run=_run("detached"))
    done = fleet.Cluster("gus-eks-6", "gus", "eks", h(-1), [], "ok", run=_run("succeeded", ended_hours=1.25))
    fleet.render([plain, running, done], NOW, Console(file=out, width=250))
    rows = {line.split()[0]: line.rstrip() for line in out.getvalue().splitlines() if line[:3] in ("eve", "fay", "gus")}
    assert rows["fay-ecs-5"].endswith("detached: running")
    assert rows["gus-eks-6"].endswith("succeeded 1h15m ago (detached)")
    assert "reap --finished" in out.getvalue()


def test_runs_are_read_from_the_lake_and_an_unreadable_stack_is_noted(fleet_world):
    from trainstack.fleet.runs import read_runs

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="art")
    base = "artifacts/hal/hal-ecs-7/"
    own = {"stack": "hal-ecs-7", "template": "dev-ecs", "status": "detached", "detached": True, "kept": True}
    s3.put_object(Bucket="art", Key=base + "run.json", Body=json.dumps(own).encode())
    job = {
        "stack": "hal-ecs-7",
        "status": "failed",
        "job_id": "20261123110000-ab12",
        "finished_at": "2026-11-23T11:30:00Z",
    }
    s3.put_object(Bucket="art", Key=base + "jobs/20261123110000-ab12/run.json", Body=json.dumps(job).encode())
    s3.put_object(
        Bucket="art", Key="artifacts/ida/ida-ecs-8/run.json", Body=b'{"stack": "ida-ecs-8", "status": "succeeded"}'
    )
    notes = []

    def broken():
        raise RuntimeError("error: could not read the stack\nAccessDenied")

    found = read_runs(
        {
            "hal-ecs-7": lambda: {"artifactUri": f"s3://art/{base}"},
            "ida-ecs-8": lambda: {"artifactUri": "s3://art/artifacts/ida/ida-ecs-8/"},  # not kept: destroyed run
            "jay-ecs-9": broken,
            "never-up": lambda: {},
        },
        s3,
        lambda stack, text: notes.append((stack, text)),
    )
    assert set(found) == {"hal-ecs-7"}
    hal = found["hal-ecs-7"]
    assert (hal.status, hal.job_id, hal.finished, hal.detached) == ("failed", "20261123110000-ab12", True, True)
    assert hal.finished_at == h(0.5)
    assert notes == [("jay-ecs-9", "run.json not readable: AccessDenied")]


def test_reap_finished_is_a_selector(monkeypatch, fleet_aws):
    result = _cli(monkeypatch, fleet_aws, ["reap", "--finished", "--dry-run"])
    assert result.exit_code == 0 and "nothing to reap" in result.output  # no stack here was detached
