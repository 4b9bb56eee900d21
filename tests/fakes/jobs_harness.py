"""Stand-ins that play the jobs of `trainstack run --detach/--keep` and `trainstack exec` for real, against a
moto server (`AWS_ENDPOINT_URL`, so a job's own processes reach the same AWS as the driver):

- ecs: the task's container (the task definition `up` would register, from the run's own plan, with RunTask's
  overrides applied) runs as a process: `timeout … python3 -c <entry> python train.py`, i.e. the real entry
  script fetches the bundle from S3, runs the code and writes run.json; its output becomes the awslogs stream;
- eks: each Indexed Job created (by `up`, or POSTed by exec) runs its container command the same way; its
  output becomes the pod's log in the fake Kubernetes API, its exit code the Job's condition;
- ec2: each node is the real bootstrap (`scripts/ec2_bootstrap.py` main) with the user data's settings,
  moto's group instances as identities, and a docker stand-in that runs the job's script from the code the
  bootstrap unpacked, writing to the awslogs stream the bootstrap named;
- sagemaker: the job (created by the run or exec) runs as SageMaker's toolkit would run it (the bundle's entry
  file with the hyperparameters as arguments, see `_play_sagemaker`), logs, and completes or fails.

`python`/`python3` in a job resolve to this interpreter (boto3 in it), which is the image's Python here.
Nothing in the driver is replaced: these only play what runs in the cloud.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3

from trainstack import backends
from trainstack.backends.ec2 import Ec2Outputs
from trainstack.backends.ecs import EcsOutputs
from trainstack.backends.eks import EksOutputs

ACCOUNT = "123456789012"
TRAIN_PY = """\
import os, sys
VERSION = {version!r}
print(f"stand-in training, code version {{VERSION}}", flush=True)
print("epoch 1/1 loss 0.5", flush=True)
model = os.environ.get("TRAINSTACK_MODEL_URI")
local = os.environ.get("SM_MODEL_DIR")
if local and os.path.isdir(local):  # ec2: the bootstrap uploads SM_MODEL_DIR on success
    open(os.path.join(local, "model.txt"), "w").write(VERSION)
elif model:
    import boto3
    bucket, _, key = model[len("s3://"):].partition("/")
    boto3.client("s3").put_object(Bucket=bucket, Key=key + "model.txt", Body=VERSION.encode())
sys.exit({exit_code})
"""


def write_code(folder: Path, version: str, exit_code: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.py").write_text(TRAIN_PY.format(version=version, exit_code=exit_code))
    return folder


class JobPlayer:
    """Plays the cloud side of jobs (see the module docstring). `pending` holds jobs to play later (a detached
    run's job runs after the driver returned): `play()` runs them."""

    def __init__(self, cloud: Any, endpoint: str, tmp: Path):
        self.cloud, self.endpoint, self.tmp = cloud, endpoint, tmp
        self.plans: dict[str, Any] = {}  # stack -> the run's plan (what `up` deployed)
        self.pending: list[tuple[Any, ...]] = []
        self.deferred = False  # True: jobs wait for play() (a detached run)
        self.bin = tmp / "image-bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        for name in ("python", "python3"):
            link = self.bin / name
            if not link.exists():
                link.symlink_to(sys.executable)
        self.ran: list[dict[str, Any]] = []  # every container run: backend, command, env, code, exit code, output

    # ---------------------------------------------------------------------------------------- helpers

    def env(self, container_env: Mapping[str, str], code_dir: Path | None = None) -> dict[str, str]:
        env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(self.tmp),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            **dict(container_env),
        }
        if code_dir is not None:
            env["TRAINSTACK_CODE_DIR"] = str(code_dir)
        return env

    def run(self, backend: str, command: list[str], env: Mapping[str, str], cwd: Path) -> tuple[int, list[str]]:
        cwd.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(command, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=120)
        lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
        self.ran.append(
            {"backend": backend, "command": command, "env": dict(env), "code": out.returncode, "out": lines}
        )
        return out.returncode, lines

    def _later(self, *job: Any) -> None:
        if self.deferred:
            self.pending.append(job)
        else:
            self._play(*job)

    def play(self) -> None:
        jobs, self.pending = self.pending, []
        for job in jobs:
            self._play(*job)

    def _play(self, kind: str, *args: Any) -> None:
        getattr(self, f"_play_{kind}")(*args)

    def resources(self, stack: str, type_: str) -> list[Any]:
        return [r for r in self.plans[stack].run.resources if r.type == type_]

    # ---------------------------------------------------------------------------------------- upload what up made

    def deployed(self, stack: str, outputs: Mapping[str, Any]) -> None:
        """What `up` leaves in AWS besides the stand-ins of run_harness: the code bundle object (a Pulumi
        BucketObject), and for ecs the task definition as the program registers it."""
        code = outputs.get("codeUri")
        if isinstance(code, str) and code.startswith("s3://"):
            (obj,) = self.resources(stack, "aws:s3/bucketObject:BucketObject")
            bucket, _, key = code[len("s3://") :].partition("/")
            boto3.client("s3").upload_file(obj.inputs["source"]["path"], bucket, key)
        if outputs.get("backend") == "ecs":
            (td,) = self.resources(stack, "aws:ecs/taskDefinition:TaskDefinition")
            family = EcsOutputs.from_outputs(outputs).task_definition_arn.rsplit("/", 1)[-1].split(":")[0]
            containers = json.loads(td.inputs["containerDefinitions"])
            for c in containers:  # moto's container instance offers 7482 MiB: a GPU host's share would not fit
                c["memoryReservation"] = 1024
            boto3.client("ecs").register_task_definition(family=family, containerDefinitions=containers)

    # ---------------------------------------------------------------------------------------- ecs

    def ecs_started(self, follower: Any, overrides: Mapping[str, Any]) -> None:
        from moto.ecs.models import ecs_backends

        o: EcsOutputs = follower.o
        task = ecs_backends[ACCOUNT]["us-east-1"].tasks[o.cluster_name][follower.task_arn]
        task.advance = lambda: None  # held RUNNING while the container runs
        task.last_status = "RUNNING"
        self._later("ecs", follower, dict(overrides), task)

    def _play_ecs(self, follower: Any, overrides: dict[str, Any], task: Any) -> None:
        o: EcsOutputs = follower.o
        ecs = boto3.client("ecs")
        definition = ecs.describe_task_definition(taskDefinition=task.task_definition_arn)["taskDefinition"]
        (container,) = definition["containerDefinitions"]
        env = {e["name"]: e["value"] for e in container.get("environment", [])}
        command = list(container.get("command", []))
        for override in overrides.get("containerOverrides", []):
            env.update({e["name"]: e["value"] for e in override.get("environment", [])})
            command = list(override.get("command") or command)
        task_id = follower.task_arn.rsplit("/", 1)[-1]
        code, lines = self.run("ecs", command, self.env(env, self.tmp / "code" / task_id), self.tmp / "cwd" / task_id)
        stream = f"training/{o.container_name}/{task_id}"
        logs = boto3.client("logs")
        logs.create_log_stream(logGroupName=o.log_group_name, logStreamName=stream)
        put_logs(logs, o.log_group_name, stream, lines)
        task.containers[0].exitCode = code
        del task.advance  # moto walks it to STOPPED again
        task.last_status = "DEACTIVATING"

    # ---------------------------------------------------------------------------------------- eks

    def eks_created(self, job: dict) -> None:
        """The fake Kubernetes API's on_create: a Job's pod 0 runs its container."""
        name = job["metadata"]["name"]
        kube = self.cloud.kube.kube
        from tests.fakes.fake_kube import pod

        kube.pods.append(pod(f"{name}-0-x1", "Running", job=name))
        job["status"] = {"active": 1, "ready": 1}
        self._later("eks", job)

    def _play_eks(self, job: dict) -> None:
        name = job["metadata"]["name"]
        kube = self.cloud.kube.kube
        (container,) = job["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value", "0") for e in container.get("env", [])}  # valueFrom: index 0's rank
        code, lines = self.run(
            "eks", list(container["command"]), self.env(env, self.tmp / "code" / name), self.tmp / "cwd" / name
        )
        kube.logs[f"{name}-0-x1"] = [f"2026-11-23T17:00:{i:02d}.5Z {line}" for i, line in enumerate(lines)]
        for p in kube.pods:
            if p["metadata"]["name"] == f"{name}-0-x1":
                p["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
        job["status"] = (
            {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
            if code == 0
            else {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}]}
        )

    def eks_up(self, stack: str, outputs: Mapping[str, Any]) -> None:
        """`up` created the stack's own Job (`train`) from the program: the fake API holds it, and it runs."""
        (job,) = self.resources(stack, "kubernetes:batch/v1:Job")
        o = EksOutputs.from_outputs(outputs)
        kube = self.cloud.kube.kube
        kube.on_create = self.eks_created
        manifest = {"metadata": {"name": o.job_name, "namespace": o.namespace}, "spec": job.inputs["spec"]}
        kube.jobs = {}
        kube.pods = []
        kube.jobs[o.job_name] = manifest
        self.eks_created(manifest)

    # ---------------------------------------------------------------------------------------- sagemaker

    def sagemaker_started(self, follower: Any) -> None:
        self._later("sagemaker", follower.name)

    def _play_sagemaker(self, name: str) -> None:
        """SageMaker and its training toolkit on one host: the container gets the request's Environment and
        TRAINING_JOB_NAME (SageMaker developer guide, "How Amazon SageMaker Provides Training Information"); the
        toolkit downloads `sagemaker_submit_directory`, unpacks it into /opt/ml/code and runs `sagemaker_program`
        there with every other hyperparameter json-decoded and passed as `--name value`, sorted by name
        (aws/sagemaker-training-toolkit: files.download_and_extract, environment.read_hyperparameters,
        mapping.to_cmd_args). On exit 0 SageMaker uploads SM_MODEL_DIR as <S3OutputPath>/<job>/output/model.tar.gz
        and the job is Completed; else Failed."""
        import io
        import tarfile

        request = self.cloud.sagemaker.requests[name]
        hyper = {k: json.loads(v) for k, v in request.get("HyperParameters", {}).items()}
        code_dir, model_dir = self.tmp / "code" / name, self.tmp / "model" / name
        code_dir.mkdir(parents=True, exist_ok=True)
        model_dir.mkdir(parents=True, exist_ok=True)
        bucket, _, key = hyper["sagemaker_submit_directory"][len("s3://") :].partition("/")
        s3 = boto3.client("s3")
        with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()), mode="r:gz") as t:
            t.extractall(code_dir, filter="data")
        user = {k: v for k, v in hyper.items() if not k.startswith("sagemaker_")}
        argv = [x for k in sorted(user) for x in (f"--{k}", str(user[k]))]
        env = {**request.get("Environment", {}), "TRAINING_JOB_NAME": name, "SM_MODEL_DIR": str(model_dir)}
        code, lines = self.run("sagemaker", ["python", hyper["sagemaker_program"], *argv], self.env(env), code_dir)
        logs = boto3.client("logs")
        stream = f"{name}/algo-1-1700000000"
        logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream)
        put_logs(logs, "/aws/sagemaker/TrainingJobs", stream, [f"stand-in SageMaker job {name}", *lines])
        if code == 0:
            out = io.BytesIO()
            with tarfile.open(fileobj=out, mode="w:gz") as t:
                t.add(model_dir, arcname=".")
            bucket, _, prefix = request["OutputDataConfig"]["S3OutputPath"][len("s3://") :].partition("/")
            s3.put_object(Bucket=bucket, Key=f"{prefix}{name}/output/model.tar.gz", Body=out.getvalue())
            self.cloud.sagemaker.move(name, "Completed", "Completed")
        else:
            self.cloud.sagemaker.move(name, "Failed", "Failed", f"AlgorithmError: exit code {code}")

    # ---------------------------------------------------------------------------------------- ec2

    def ec2_up(self, stack: str, outputs: Mapping[str, Any]) -> None:
        """`up` created the group at the job's node count: its nodes boot."""
        self._later("ec2", stack, dict(outputs))

    def ec2_started(self, follower: Any, payload: Mapping[str, Any]) -> None:
        self._later("ec2", self._stack_of(follower), dict(follower_outputs(follower)))

    @staticmethod
    def _stack_of(follower: Any) -> str:
        return follower.stack.artifact_uri.rstrip("/").rsplit("/", 1)[-1]

    def _play_ec2(self, stack: str, outputs: dict[str, Any]) -> None:
        from trainstack.scripts import ec2_bootstrap as boot

        o = Ec2Outputs.from_outputs(outputs)
        asg = boto3.client("autoscaling")
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[o.group_name])["AutoScalingGroups"][0]
        (lt,) = self.resources(stack, "aws:ec2/launchTemplate:LaunchTemplate")
        import base64

        script = base64.b64decode(lt.inputs["userData"]).decode()
        settings = json.loads(script.split("<<'TRAINSTACK_JSON'\n", 1)[1].split("\nTRAINSTACK_JSON", 1)[0])
        ec2 = boto3.client("ec2")
        for inst in group["Instances"]:
            iid = inst["InstanceId"]
            ip = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["PrivateIpAddress"]
            node = self.tmp / "nodes" / iid
            node.mkdir(parents=True, exist_ok=True)
            (node / "settings.json").write_text(json.dumps(settings))
            clients = {k: boto3.client(k) for k in ("ec2", "autoscaling", "s3")}
            boot.main(
                ["--settings", str(node / "settings.json"), "--workdir", str(node / "run")],
                clients=clients,
                identity=boot.Identity(iid, ip, "us-east-1"),
                run=StandInDocker(self),
                clock=_Clock().clock,
                sleep=lambda s: None,
                pull=lambda image, log_path: 0,
            )


def follower_outputs(follower: Any) -> dict[str, Any]:
    return {**follower.stack.as_outputs(), **follower.o.as_outputs()}


class StandInDocker:
    """`docker run` of the ec2 bootstrap: runs the job's script from the code the bootstrap unpacked (mounted
    at /opt/ml/code), with the container's environment, and writes its output to the awslogs stream the
    bootstrap named; the model goes to the host folder mounted at /opt/ml/model."""

    def __init__(self, player: JobPlayer):
        self.player = player

    def __call__(self, argv: list[str], log_path: str, timeout_s: float = 0, stop: Any = None) -> int:
        mounts = dict(argv[i + 1].split(":")[:2][::-1] for i, a in enumerate(argv[:-1]) if a == "-v")
        env = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv[:-1]) if a == "-e")
        opts = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv[:-1]) if a == "--log-opt")
        code_dir = Path(mounts["/opt/ml/code"])
        script = next(i for i, a in enumerate(argv) if a.endswith(".py"))
        env["SM_MODEL_DIR"] = mounts["/opt/ml/model"]
        code, lines = self.player.run("ec2", [sys.executable, *argv[script:]], self.player.env(env), code_dir)
        logs = boto3.client("logs")
        try:
            logs.create_log_stream(logGroupName=opts["awslogs-group"], logStreamName=opts["awslogs-stream"])
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        put_logs(logs, opts["awslogs-group"], opts["awslogs-stream"], lines)
        with open(log_path, "a") as f:
            f.write("\n".join(lines) + "\n")
        return code


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        self.now += 1
        return self.now


def put_logs(logs: Any, group: str, stream: str, lines: list[str]) -> None:
    if not lines:
        return
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)],
    )


def backend_of(outputs: Mapping[str, Any]) -> str:
    return backends.ClusterOutputs.from_outputs(outputs).backend
