"""The eks job follower against a fake Kubernetes API on 127.0.0.1 over TLS (its CA handed over as
the kubeconfig output's CA data), with EKS/autoscaling answers stubbed (botocore Stubber)."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import urllib.parse

import boto3
import pytest
from botocore.stub import Stubber
from rich.console import Console

from tests.fakes.fake_kube import JOB, JOB_PATH, NS, FakeKube, KubeServer, pod
from tests.helpers import stack_outputs
from trainstack.backends.eks import EksOutputs
from trainstack.model.eks_request import kubeconfig
from trainstack.run.driver import Interrupts
from trainstack.run.follow import FAILED, PENDING, RUNNING, SUCCEEDED, follower_for
from trainstack.run.follow.eks import TOKEN_PREFIX, TOKEN_REFRESH_SECONDS, EksFollower, KubeApi, KubeApiError, eks_token
from trainstack.run.run import RunOptions, Ui, follow

SCHED = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are available."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = KubeServer(tmp_path_factory.mktemp("tls"))
    yield srv
    srv.close()


def _session():
    return boto3.Session(
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="secret", region_name="us-east-1"
    )


@pytest.fixture
def kube(server):
    server.kube = fake = FakeKube()
    endpoint, ca_data = server.endpoint, server.ca_data
    own = EksOutputs(
        eks_mode="dedicated",
        cluster_name="ts-dev-eks",
        kubernetes_version="1.33",
        namespace=NS,
        job_name=JOB,
        node_group_names=["gpu-p3-2xlarge-ng"],
        training_role_arn="arn:aws:iam::123456789012:role/eks-training-role",
        kubeconfig=json.dumps(kubeconfig("ts-dev-eks", endpoint, ca_data, "us-east-1")),
        update_kubeconfig_command="aws eks update-kubeconfig --name ts-dev-eks --region us-east-1",
        logs_command=f"kubectl logs -n {NS} -l job-name={JOB} --follow",
    )
    return fake, stack_outputs(own, model_uri="s3://art/dev-eks/model/")


def test_pending_running_succeeded_tails_each_line_once(kube):
    fake, outputs = kube
    f = follower_for(outputs, _session())
    assert isinstance(f, EksFollower)
    f.submit()
    fake.pods = [pod("train-0-abc", "Pending")]
    fake.job["status"] = {"active": 1}
    assert f.poll().phase == PENDING and f.tail() == []
    fake.pods = [pod("train-0-abc", "Running"), pod("train-1-def", "Running", index="1")]
    fake.job["status"] = {"active": 2, "ready": 2}
    fake.logs["train-0-abc"] = ["2026-11-23T17:00:01.100Z epoch 1", "2026-11-23T17:00:01.200Z loss 0.9"]
    assert f.poll().phase == RUNNING
    assert f.tail() == ["[node 0] epoch 1", "[node 0] loss 0.9"]
    assert f.tail() == []  # the same second is read again (sinceTime has whole seconds): nothing repeats
    fake.logs["train-0-abc"] += ["2026-11-23T17:00:01.300Z loss 0.8", "2026-11-23T17:00:02.5Z done"]
    assert f.tail() == ["[node 0] loss 0.8", "[node 0] done"]
    since = [c[2].get("sinceTime") for c in fake.calls if c[1].endswith("/log")]
    assert since == [None, "2026-11-23T17:00:01Z", "2026-11-23T17:00:01Z"]
    fake.job["status"] = {"succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]}
    fake.pods = [pod("train-0-abc", "Succeeded")]
    assert f.poll().phase == SUCCEEDED and f.tail() == [] and f.model_uri() == "s3://art/dev-eks/model/"


def test_a_failed_condition_reports_its_reason(kube):
    fake, outputs = kube
    fake.job["status"] = {
        "failed": 1,
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "PodFailurePolicy",
                "message": "Container training for pod ts-dev-eks/train-0-abc failed with exit code 1 matching FailJob rule",
            }
        ],
    }
    state = EksFollower(outputs, _session()).poll()
    assert state.phase == FAILED and "PodFailurePolicy" in state.reason and "exit code 1" in state.reason


def test_an_oom_killed_container_is_named_as_such(kube):
    """The Job's memory limit equals its request: a runaway job's container is OOMKilled (exit 137), which the
    Job's Failed condition does not say."""
    fake, outputs = kube
    fake.job["status"] = {
        "failed": 1,
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "PodFailurePolicy",
                "message": "Container training for pod ts-dev-eks/train-1-def failed with exit code 137 matching "
                "FailJob rule at index 2",
            }
        ],
    }
    oom = pod("train-1-def", "Failed", index="1")
    oom["spec"] = {"containers": [{"name": "training", "resources": {"limits": {"memory": "48Gi"}}}]}
    oom["status"]["containerStatuses"] = [
        {"name": "training", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
    ]
    fake.pods = [pod("train-0-abc", "Failed"), oom]
    state = EksFollower(outputs, _session()).poll()
    assert state.phase == FAILED and "exit code 137" in state.reason
    assert "pod train-1-def container training was OOMKilled" in state.reason and "(48Gi)" in state.reason


def test_stalled_pods_report_the_scheduler_and_the_node_group(kube):
    fake, outputs = kube
    fake.job["status"] = {"active": 1}
    fake.pods = [
        pod(
            "train-0-abc",
            "Pending",
            conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": SCHED}],
        )
    ]
    f = EksFollower(outputs, _session())
    capacity = "We currently do not have sufficient p3.2xlarge capacity in the Availability Zone you requested."
    with Stubber(f.eks) as eks, Stubber(f.autoscaling) as asg:
        eks.add_response(
            "describe_nodegroup",
            {
                "nodegroup": {
                    "nodegroupName": "gpu-p3-2xlarge-ng",
                    "health": {"issues": []},
                    "resources": {"autoScalingGroups": [{"name": "eks-gpu-123"}]},
                }
            },
            {"clusterName": "ts-dev-eks", "nodegroupName": "gpu-p3-2xlarge-ng"},
        )
        asg.add_response(
            "describe_scaling_activities",
            {
                "Activities": [
                    {
                        "ActivityId": "a",
                        "AutoScalingGroupName": "eks-gpu-123",
                        "Cause": "c",
                        "StartTime": dt.datetime(2026, 1, 1),
                        "StatusCode": "Failed",
                        "StatusMessage": capacity,
                    }
                ]
            },
            {"AutoScalingGroupName": "eks-gpu-123", "MaxRecords": 5},
        )
        opts = RunOptions(template="t", poll_seconds=0, start_timeout_seconds=60, grace_seconds=600)
        clock = iter(range(0, 10_000, 100))
        state = follow(
            f,
            intr=Interrupts(None),
            ui=Ui(Console(file=io.StringIO())),
            opts=opts,
            max_runtime_hours=1,
            clock=lambda: next(clock),
        )[0]
    assert state.phase == FAILED and "Insufficient nvidia.com/gpu" in state.reason
    assert "node group gpu-p3-2xlarge-ng: Failed: " + capacity in state.reason
    assert "another availability zone" in state.reason  # the shared capacity hints
    assert fake.job["spec"]["suspend"] is True  # the never-started Job was stopped


def test_stop_suspends_once_and_is_idempotent(kube):
    fake, outputs = kube
    fake.job["status"] = {"active": 1}
    f = EksFollower(outputs, _session())
    f.stop()
    f.stop()
    patches = [c for c in fake.calls if c[0] == "PATCH"]
    assert patches == [("PATCH", JOB_PATH, {}, {"spec": {"suspend": True}}, "application/merge-patch+json")]
    fake.job = None  # destroyed meanwhile: nothing to stop, no error
    f.stop()


def test_a_forbidden_caller_is_told_about_the_access_entry(kube):
    fake, outputs = kube
    fake.deny = 403
    with pytest.raises(KubeApiError, match="needs an EKS access entry") as err:
        EksFollower(outputs, _session()).poll()
    assert "HTTP 403" in str(err.value) and "cannot get resource" in str(err.value)


def test_a_deleted_job_and_an_unreachable_api_are_clear_errors(kube):
    fake, outputs = kube
    fake.job = None
    with pytest.raises(KubeApiError, match="Job train in namespace ts-dev-eks is gone"):
        EksFollower(outputs, _session()).poll()
    cfg = json.loads(outputs["kubeconfig"])
    cfg["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"  # discard port: connection refused
    outputs["kubeconfig"] = json.dumps(cfg)
    with pytest.raises(KubeApiError, match="cannot reach the Kubernetes API at https://127.0.0.1:9"):
        EksFollower(outputs, _session()).poll()


def test_without_the_kubeconfig_output_the_endpoint_comes_from_describe_cluster(kube):
    fake, outputs = kube
    cfg = json.loads(outputs.pop("kubeconfig"))["clusters"][0]["cluster"]
    outputs["kubeconfig"] = "[secret]"
    session = _session()
    eks = session.client("eks", region_name="us-east-1")
    session.client = lambda name, **kw: eks if name == "eks" else boto3.Session.client(session, name, **kw)
    with Stubber(eks) as stub:
        stub.add_response(
            "describe_cluster",
            {
                "cluster": {
                    "endpoint": cfg["server"],
                    "certificateAuthority": {"data": cfg["certificate-authority-data"]},
                }
            },
            {"name": "ts-dev-eks"},
        )
        f = EksFollower(outputs, session)
    fake.job["status"] = {"active": 1, "ready": 1}
    assert f.poll().phase == RUNNING


def test_the_token_is_a_presigned_sts_url_bound_to_the_cluster_and_renewed():
    sts = _session().client("sts", region_name="us-east-1")
    token = eks_token(sts, "ts-dev-eks")
    assert token.startswith("k8s-aws-v1.") and not token.endswith("=")
    body = token[len("k8s-aws-v1.") :]
    url = urllib.parse.urlsplit(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode())
    q = dict(urllib.parse.parse_qsl(url.query))
    assert url.scheme == "https" and url.hostname.startswith("sts") and url.hostname.endswith(".amazonaws.com")
    assert q["Action"] == "GetCallerIdentity" and q["Version"] == "2011-06-15"
    assert q["X-Amz-Expires"] == "60" and q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert q["X-Amz-SignedHeaders"].split(";") == ["host", "x-k8s-aws-id"]
    assert q["X-Amz-Credential"].startswith("AKIAIOSFODNN7EXAMPLE/")
    assert "x-k8s-aws-id" not in q  # a signed header, not a query parameter
    assert eks_token(sts, "other") != token  # the cluster name is part of the signature


def test_the_token_is_renewed_before_it_expires(kube):
    fake, outputs = kube
    cluster = json.loads(outputs["kubeconfig"])["clusters"][0]["cluster"]
    made, now = [], [0.0]
    api = KubeApi(
        cluster["server"],
        cluster["certificate-authority-data"],
        lambda: made.append(1) or f"{TOKEN_PREFIX}t{len(made)}",
        clock=lambda: now[0],
    )
    api.request("GET", JOB_PATH)
    now[0] = TOKEN_REFRESH_SECONDS - 1
    api.request("GET", JOB_PATH)
    assert len(made) == 1
    now[0] = TOKEN_REFRESH_SECONDS + 1  # EKS accepts a token for 15 min: a new one before that
    api.request("GET", JOB_PATH)
    assert len(made) == 2


def test_a_scheduled_pod_that_cannot_pull_its_image_is_named(kube):
    fake, outputs = kube
    fake.pods = [pod("train-0-abc", "Pending")]
    fake.pods[0]["status"]["containerStatuses"] = [
        {
            "name": "training",
            "state": {
                "waiting": {
                    "reason": "ImagePullBackOff",
                    "message": 'Back-off pulling image "123.dkr.ecr.us-east-1.amazonaws.com/t:1"',
                }
            },
        }
    ]
    f = EksFollower(outputs, _session())
    with Stubber(f.eks) as eks:
        eks.add_client_error("describe_nodegroup", "ResourceNotFoundException", "No node group found")
        why = f.stalled()
    assert "pod train-0-abc container training waiting: ImagePullBackOff: Back-off pulling image" in why
    assert "could not describe node group gpu-p3-2xlarge-ng" in why  # best effort, never an exception


def test_an_exec_on_a_cluster_its_idle_stop_deleted_says_so_and_how_to_recreate_it(kube):
    """The control plane is gone (the idle stop of p2-idle deletes it): the API does not answer, and
    DescribeCluster (botocore's model, via Stubber) says ResourceNotFoundException."""
    fake, outputs = kube
    outputs["idleStopMinutes"] = 60
    session = _session()
    eks = session.client("eks", region_name="us-east-1")
    session.client = lambda name, **kw: eks if name == "eks" else boto3.Session.client(session, name, **kw)
    f = EksFollower(outputs, session)
    f.api.server = "https://127.0.0.1:9"  # discard port: nobody answers
    with Stubber(eks) as stub:
        stub.add_client_error(
            "describe_cluster",
            "ResourceNotFoundException",
            "No cluster found for name: ts-dev-eks.",
            404,
            expected_params={"name": "ts-dev-eks"},
        )
        with pytest.raises(
            KubeApiError,
            match=r"ts-dev-eks does not exist: its idle stop \(eks.idleStopMinutes: 60\) deleted it\. Fix: `pulumi up --stack",
        ):
            f.start({"metadata": {"name": "train-20261123120000-ab12"}})
