"""Harness for the `trainstack run` tests: the real Automation API SDK against the strict fake CLI
(`tests/fakes/`), AWS in moto, provisioned with what `up` reported creating."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console

from tests.fakes.jobs_harness import put_logs
from trainstack import backends
from trainstack.backends.ec2 import Ec2Outputs
from trainstack.backends.ecs import EcsOutputs
from trainstack.backends.eks import EksOutputs
from trainstack.backends.sagemaker import SageMakerOutputs
from trainstack.run import run as run_mod
from trainstack.run import stages as stages_mod
from trainstack.run.driver import TrackedPulumiCommand
from trainstack.run.follow import split_s3_uri
from trainstack.run.run import RunOptions, Ui
from trainstack.run.run_config import Overrides

ROOT = Path(__file__).resolve().parents[2]
FAKE_ROOT = ROOT / "tests" / "fakes" / "pulumi"
TRAIN_LOG = ["epoch 1/2 loss 0.91", "epoch 2/2 loss 0.42", "saved model"]


@dataclass
class FakeCli:
    state: Path

    def stacks(self) -> list[str]:
        return sorted(p.stem for p in (self.state / "stacks").glob("*.json") if p.stem != "platform")

    def stack(self, name: str) -> dict[str, Any]:
        return json.loads((self.state / "stacks" / f"{name}.json").read_text())

    def calls(self) -> list[list[str]]:
        path = self.state / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def commands(self) -> list[str]:
        """The call log as `verb [sub]` (argv without flags), e.g. ['stack init', 'config set-all', 'up']."""
        out = []
        for argv in self.calls():
            words = [a for a in argv if not a.startswith("--")]
            out.append(" ".join(words[:2]) if words and words[0] in ("stack", "config") else words[0])
        return out

    def scenario(self, **knobs: Any) -> None:
        (self.state / "scenario.json").write_text(json.dumps(knobs))

    def release(self) -> None:
        """Let an update held by the scenario's `hold_up_after` go on."""
        (self.state / "release").touch()

    def lock(self, name: str, pid: int | None = None, host: str | None = None) -> None:
        """A lock as the DIY backend writes it; by default its holder is a process of this host that has exited
        (a driver killed mid-update)."""
        import socket
        import subprocess

        if pid is None:
            child = subprocess.Popen(["true"])  # a pid that has exited (and been reaped)
            child.wait()
            pid = child.pid
        (self.state / "locks").mkdir(exist_ok=True)
        (self.state / "locks" / f"{name}.lock").write_text(
            json.dumps(
                {
                    "pid": pid,
                    "username": "ci",
                    "hostname": host or socket.gethostname(),
                    "timestamp": "2026-11-22T14:30:00Z",
                }
            )
        )

    def locked(self, name: str) -> bool:
        return (self.state / "locks" / f"{name}.lock").exists()

    def seed(self, name: str, doc: dict[str, Any]) -> None:
        (self.state / "stacks").mkdir(exist_ok=True)
        (self.state / "stacks" / f"{name}.json").write_text(
            json.dumps({"name": name, "config": {}, "resources": [], "outputs": {}, "history": [], **doc})
        )


_PLANS: dict[str, Any] = {}


def memoize_plans(monkeypatch) -> None:
    """The offline plan of the same merged config is the same plan: evaluate it once per session
    (the plan itself is tested in test_stacks.py; here it is the run's first step)."""
    from trainstack.plan import planner as plan_mod

    real = plan_mod.plan

    def plan(stack, root=plan_mod.REPO_ROOT, *, raw=None, **kw):
        if raw is None:
            return real(stack, root, **kw)
        key = json.dumps([stack, str(root), raw], sort_keys=True, default=str)
        if key not in _PLANS:
            _PLANS[key] = real(stack, root, raw=raw, **kw)
        return _PLANS[key]

    monkeypatch.setattr(plan_mod, "plan", plan)


def make_fake_cli(tmp_path: Path, monkeypatch, platform_outputs: dict, cache: Path) -> FakeCli:
    state = tmp_path / "pulumi-state"
    state.mkdir()
    monkeypatch.setenv("FAKE_PULUMI_STATE", str(state))
    monkeypatch.setenv("FAKE_PULUMI_PYTHON", sys.executable)
    monkeypatch.setenv("FAKE_PULUMI_CACHE", str(cache))
    cli = FakeCli(state)
    cli.seed("platform", {"outputs": platform_outputs})
    memoize_plans(monkeypatch)
    return cli


# ------------------------------------------------------------------------------ the cloud (moto)


@dataclass
class Cloud:
    """Creates in moto what `up` reported, and scripts how the job behaves."""

    job_outcome: str = "succeeded"  # succeeded | failed | hang (never starts) | long (runs until stopped)
    # | play: the jobs run for real, played by `player` (tests/fakes/jobs_harness.py), on a moto server
    scaling_activities: list[dict[str, Any]] | None = None  # served by a Stubber (moto returns none)
    provisioned: dict[str, Any] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)
    kube: Any = None  # eks: the fake Kubernetes API server
    sagemaker: Any = None  # sagemaker: moto with the job lifecycle of the API (tests/fakes/sagemaker.py)
    player: Any = None  # job_outcome == "play": tests/fakes/jobs_harness.JobPlayer

    def provision(self, outputs: dict[str, Any]) -> None:
        if self.provisioned == outputs:
            return  # `down` looks the job up again
        self.provisioned = dict(outputs)
        stack, own = backends.read_outputs(outputs)  # the typed contract, as the followers read it
        name = stack.artifact_uri.rstrip("/").rsplit("/", 1)[-1]
        if self.player is not None:
            self.player.deployed(name, outputs)
        getattr(self, f"_provision_{stack.backend}")(stack, own)
        if self.player is not None and stack.backend in ("ec2", "eks"):  # `up` started the stack's own job
            getattr(self.player, f"{stack.backend}_up")(name, outputs)

    def _provision_ecs(self, s: backends.ClusterOutputs, o: EcsOutputs) -> None:
        ecs = boto3.client("ecs", region_name=s.region)
        ecs.create_cluster(clusterName=o.cluster_name)
        family = o.task_definition_arn.rsplit("/", 1)[-1].split(":")[0]
        if self.player is None:  # playing jobs: the program's own task definition (JobPlayer.deployed)
            ecs.register_task_definition(
                family=family,
                containerDefinitions=[{"name": o.container_name, "image": "train:latest", "memory": 1024}],
            )
        # moto's RunTask places tasks only on registered container instances (a GPU node in reality).
        ec2 = boto3.client("ec2", region_name=s.region)
        inst = ec2.run_instances(ImageId="ami-0abcdef1234567890", MinCount=1, MaxCount=1)["Instances"][0]
        doc = json.dumps({"instanceId": inst["InstanceId"], "region": s.region})
        ecs.register_container_instance(cluster=o.cluster_name, instanceIdentityDocument=doc)
        boto3.client("logs", region_name=s.region).create_log_group(logGroupName=o.log_group_name)

    def _provision_ec2(self, s: backends.ClusterOutputs, o: Ec2Outputs) -> None:
        logs = boto3.client("logs", region_name=s.region)
        logs.create_log_group(logGroupName=o.log_group_name)
        if self.job_outcome != "play":
            logs.create_log_stream(logGroupName=o.log_group_name, logStreamName="node-0-ip-10-40-0-5")
            put_logs(logs, o.log_group_name, "node-0-ip-10-40-0-5", TRAIN_LOG)
        asg = boto3.client("autoscaling", region_name=s.region)
        asg.create_launch_configuration(
            LaunchConfigurationName="lc", ImageId="ami-0abcdef1234567890", InstanceType="p3.8xlarge"
        )
        desired = 0 if self.job_outcome == "hang" else 1
        asg.create_auto_scaling_group(
            AutoScalingGroupName=o.group_name,
            LaunchConfigurationName="lc",
            MinSize=0,
            MaxSize=2,
            DesiredCapacity=desired,
            AvailabilityZones=["us-east-1a"],
        )
        s3 = boto3.client("s3", region_name=s.region)
        if self.job_outcome in ("succeeded", "failed"):
            uri = o.success_marker_uri if self.job_outcome == "succeeded" else s.artifact_uri + "_FAILED"
            bucket, key = split_s3_uri(uri)
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=json.dumps({"nodes": 1, "exitCodes": [0 if self.job_outcome == "succeeded" else 3]}).encode(),
            )

    def _provision_sagemaker(self, s: backends.ClusterOutputs, o: SageMakerOutputs) -> None:
        """Nothing but the log group: the job is created by the run (the follower's submit), not by `up`."""
        logs = boto3.client("logs", region_name=s.region)
        try:
            logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
        except logs.exceptions.ResourceAlreadyExistsException:
            pass

    def _provision_eks(self, s: backends.ClusterOutputs, o: EksOutputs) -> None:
        """A fake Kubernetes API (TLS, tests/fake_kube.py) holding the Job in the scripted outcome."""
        import tempfile

        from tests.fakes.fake_kube import FakeKube, KubeServer, pod

        if self.kube is None:
            self.kube = KubeServer(Path(tempfile.mkdtemp(prefix="fake-kube-")))
        self.kube.kube = kube = FakeKube(o.namespace)
        if self.job_outcome == "play":
            return  # the player holds and runs the Jobs (JobPlayer.eks_up, .eks_created)
        phase = {"succeeded": "Succeeded", "failed": "Failed", "hang": "Pending", "long": "Running"}[self.job_outcome]
        pending = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
            }
        ]
        kube.pods = [pod("train-0-x1", phase, conditions=pending if phase == "Pending" else ())]
        kube.logs["train-0-x1"] = [f"2026-11-23T17:00:0{i}.5Z {line}" for i, line in enumerate(TRAIN_LOG)]
        kube.job["status"] = {
            "succeeded": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
            "failed": {
                "failed": 1,
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "PodFailurePolicy",
                        "message": "container training exited with code 3",
                    }
                ],
            },
            "hang": {"active": 1},
            "long": {"active": 1, "ready": 1},
        }[self.job_outcome]

    def kubeconfig(self, outputs: dict[str, Any]) -> str:
        from trainstack.model.eks_request import kubeconfig

        s, o = backends.ClusterOutputs.from_outputs(outputs), EksOutputs.from_outputs(outputs)
        return json.dumps(kubeconfig(o.cluster_name, self.kube.endpoint, self.kube.ca_data, s.region))

    def close(self) -> None:
        if self.kube is not None:
            self.kube.close()

    def after_submit(self, follower: Any, payload: Any = None) -> None:
        s, o = backends.read_outputs(self.provisioned)
        if self.player is not None:
            if isinstance(o, EcsOutputs):
                self.player.ecs_started(follower, payload or {})
            elif isinstance(o, SageMakerOutputs):
                self.player.sagemaker_started(follower)
            elif isinstance(o, Ec2Outputs) and payload is not None:
                self.player.ec2_started(follower, payload)
            return  # eks: the fake API plays a POSTed Job (JobPlayer.eks_created)
        if isinstance(o, SageMakerOutputs):
            self._sagemaker_job(s, follower.name)
            return
        if not isinstance(o, EcsOutputs):
            return
        from moto.ecs.models import ecs_backends

        logs = boto3.client("logs", region_name=s.region)
        task_id = follower.task_arn.rsplit("/", 1)[-1]
        stream = f"training/{o.container_name}/{task_id}"
        logs.create_log_stream(logGroupName=o.log_group_name, logStreamName=stream)
        put_logs(logs, o.log_group_name, stream, TRAIN_LOG)
        backend = ecs_backends["123456789012"][s.region]
        task = backend.tasks[o.cluster_name][follower.task_arn]
        if self.job_outcome == "failed":
            task.containers[0].exitCode = 3
            task.stopped_reason = "Essential container in task exited"
        if self.job_outcome in ("hang", "long"):
            # Hold the task where it is (moto walks it to STOPPED one state per DescribeTasks otherwise).
            task.last_status = "PROVISIONING" if self.job_outcome == "hang" else "RUNNING"
            task.advance = lambda: None

    def _sagemaker_job(self, s: backends.ClusterOutputs, name: str) -> None:
        """The created job's log, then the scripted outcome (the stand-in starts it InProgress/Starting)."""
        logs = boto3.client("logs", region_name=s.region)
        stream = f"{name}/algo-1-1700000000"
        logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream)
        put_logs(logs, "/aws/sagemaker/TrainingJobs", stream, TRAIN_LOG)
        script = {
            "succeeded": ("Completed", "Completed", None),
            "failed": ("Failed", "Failed", "AlgorithmError: loss is NaN"),
            "hang": ("InProgress", "Starting", None),
            "long": ("InProgress", "Training", None),
        }[self.job_outcome]
        self.sagemaker.move(name, *script)


def create_data_lake(platform_outputs: dict[str, Any]) -> None:
    """The platform's buckets exist before any run (run.json goes to the artifacts bucket)."""
    platform = backends.PlatformOutputs.from_outputs(platform_outputs)
    s3 = boto3.client("s3", region_name=platform.region)
    s3.create_bucket(Bucket=platform.buckets["artifacts"]["name"])  # the only one a run writes to


def install_cloud(monkeypatch, cloud: Cloud) -> None:
    """`up`'s outputs become moto resources the moment the run looks for its job."""
    from tests.fakes.sagemaker import StandInSageMaker

    cloud.sagemaker = StandInSageMaker(monkeypatch)
    real = run_mod.follower_for

    def follower_for(outputs, session, job=None):
        cloud.provision(dict(outputs))
        stack, own = backends.read_outputs(outputs)
        if isinstance(own, EksOutputs):  # the cluster endpoint is the fake API server
            outputs = {**outputs, **replace(own, kubeconfig=cloud.kubeconfig(outputs)).as_outputs()}
        follower = real(outputs, session, job)
        submit, stop = follower.submit, follower.stop
        if cloud.scaling_activities is not None and isinstance(own, (Ec2Outputs, EcsOutputs)):
            from botocore.stub import Stubber

            stub = Stubber(follower.autoscaling)
            stub.add_response(
                "describe_scaling_activities",
                {"Activities": cloud.scaling_activities},
                {"AutoScalingGroupName": own.group_name, "MaxRecords": 5},
            )
            stub.activate()

        played = []  # submit() of some followers goes through start(): play the job once

        def submitted():
            submit()
            if not played:
                cloud.after_submit(follower)

        def stopped():
            cloud.stopped.append(stack.backend)
            stop()

        follower.submit, follower.stop = submitted, stopped
        if hasattr(follower, "start"):
            start = follower.start

            def started(payload):
                start(payload)
                played.append(payload)
                cloud.after_submit(follower, payload)

            follower.start = started
        return follower

    from trainstack.run import jobs as jobs_mod

    monkeypatch.setattr(stages_mod, "follower_for", follower_for)  # the run's follow stage
    monkeypatch.setattr(run_mod, "follower_for", follower_for)  # down stops the job
    monkeypatch.setattr(jobs_mod, "follower_for", follower_for)  # exec, attach, logs
    real_plan = stages_mod.plan_stage

    def plan_stage(ctx):
        real_plan(ctx)
        if cloud.player is not None:
            cloud.player.plans[ctx.name] = ctx.plan

    monkeypatch.setattr(stages_mod, "plan_stage", plan_stage)


# ------------------------------------------------------------------------------ running


def options(template: str, tmp_path: Path, **kw: Any) -> RunOptions:
    overrides = kw.pop("overrides", None) or Overrides(name=kw.pop("name", f"t-{template}"))
    defaults = dict(
        root=ROOT,
        yes=True,
        skip_preview=True,
        pulumi_root=str(FAKE_ROOT),
        poll_seconds=0.01,
        start_timeout_seconds=0.3,
        destroy_backoff_seconds=0.0,
        record_dir=tmp_path / "runs",
    )
    defaults.update(kw)
    return RunOptions(template=template, overrides=overrides, **defaults)


def quiet_ui() -> tuple[Ui, io.StringIO]:
    buf = io.StringIO()
    return Ui(Console(file=buf, width=200, force_terminal=False, color_system=None)), buf


def signal_when(
    predicate,
    signals: int = 1,
    sig: int = signal.SIGINT,
    gap: float = 0.3,
    timeout: float = 30,
    handled: Callable[[int], bool] | None = None,
    then: Callable[[], None] | None = None,
) -> threading.Thread:
    """Send `signals` SIGINTs to this process once `predicate()` holds (as a terminal's Ctrl-C would), `gap`
    seconds apart. `handled(n)`: true once the driver has handled n of them; the next waits for it, because
    signals that arrive before Python's handler has run are one signal to it (CPython runs a signal's handler
    once however often the signal arrived in between), which a loaded machine makes likely at 0.05 s apart.
    `then()` runs once the last one is handled (e.g. `FakeCli.release` of a held step)."""
    import time

    def body():
        deadline = time.monotonic() + timeout

        def until(limit: float, done: Callable[..., object], *args: Any) -> None:
            while not done(*args) and time.monotonic() < limit:
                time.sleep(0.01)

        until(deadline, predicate)
        for i in range(signals):
            if i:
                time.sleep(gap)
                if handled is not None:
                    until(deadline + timeout, handled, i)
            os.kill(os.getpid(), sig)
        if then is not None:
            if handled is not None:
                until(deadline + timeout, handled, signals)
            then()

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t


def interrupts_said(out: io.StringIO) -> Callable[[int], bool]:
    """`signal_when(handled=...)` for a run whose ui writes to `out`: the run says so at each interrupt it handles
    (trainstack.run.stages.on_signal)."""
    said = {1: "interrupt: stopping", 2: "second interrupt:"}
    return lambda n: said[n] in out.getvalue()


def command() -> TrackedPulumiCommand:
    return TrackedPulumiCommand(root=str(FAKE_ROOT))
