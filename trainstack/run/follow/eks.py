"""eks: `up` created the Indexed Job (`pulumi.com/skipAwait`); follow it through the Kubernetes API.

Stdlib HTTPS (`urllib.request` with an `ssl` context built from the cluster's CA data) and an EKS
bearer token signed with the caller's AWS credentials: no kubectl, no Kubernetes client package,
no AWS CLI. The caller needs an EKS access entry on the cluster (the deploying identity has one as
cluster creator in dedicated mode).
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from trainstack.backends import ClusterOutputs
from trainstack.backends.eks import EksOutputs
from trainstack.model import eks_request as req
from trainstack.model.run_locations import JOB_ID_ENV
from trainstack.run.follow import (
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    ExecRequest,
    JobRef,
    JobState,
    failed_scaling_activities,
)

TOKEN_PREFIX = "k8s-aws-v1."
K8S_AWS_ID_HEADER = "x-k8s-aws-id"
URL_TIMEOUT = 60  # seconds the presigned URL is valid for signing (aws-cli get_token.py URL_TIMEOUT)
# EKS accepts a token for 15 min (aws-cli reports expirationTimestamp = now + 14 min); renew well before.
TOKEN_REFRESH_SECONDS = 10 * 60
HTTP_TIMEOUT = 30
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
LOG_PREFIX = "[node 0] "


class KubeApiError(RuntimeError):
    """A Kubernetes API call that failed, with what to do about it (never a traceback for the user)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def eks_token(sts: Any, cluster_name: str) -> str:
    """An EKS bearer token: `k8s-aws-v1.` + unpadded base64url of a presigned STS GetCallerIdentity URL
    whose signed headers include `x-k8s-aws-id: <cluster>`, valid 60 s for signing.

    Built as `aws eks get-token` does (aws/aws-cli awscli/customizations/eks/get_token.py:
    `STSClientFactory._register_k8s_aws_id_handlers` moves the `x-k8s-aws-id` param into the request
    context on `provide-client-params.sts.GetCallerIdentity` and injects it as a header on
    `before-sign.sts.GetCallerIdentity`; `TokenGenerator` calls `generate_presigned_url(...,
    ExpiresIn=60, HttpMethod='GET')` and strips the `=` padding)."""

    def retrieve(params: dict, context: dict, **_: Any) -> None:
        if K8S_AWS_ID_HEADER in params:
            context[K8S_AWS_ID_HEADER] = params.pop(K8S_AWS_ID_HEADER)

    def inject(request: Any, **_: Any) -> None:
        if K8S_AWS_ID_HEADER in request.context:
            request.headers[K8S_AWS_ID_HEADER] = request.context[K8S_AWS_ID_HEADER]

    events = sts.meta.events
    events.register("provide-client-params.sts.GetCallerIdentity", retrieve, unique_id="trainstack-k8s-id-params")
    events.register("before-sign.sts.GetCallerIdentity", inject, unique_id="trainstack-k8s-id-header")
    url = sts.generate_presigned_url(
        "get_caller_identity", Params={K8S_AWS_ID_HEADER: cluster_name}, ExpiresIn=URL_TIMEOUT, HttpMethod="GET"
    )
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def _endpoint_and_ca(outputs: EksOutputs, eks: Any) -> tuple[str, str]:
    """Server and CA data from the `kubeconfig` output (run hands secrets over decrypted); when it
    arrives masked (`[secret]`) or unreadable, from `eks:DescribeCluster`."""
    try:
        cfg: Any = json.loads(outputs.kubeconfig)
        cluster = cfg["clusters"][0]["cluster"]
        return cluster["server"], cluster["certificate-authority-data"]
    except (TypeError, ValueError, KeyError, IndexError):
        c = eks.describe_cluster(name=outputs.cluster_name)["cluster"]
        return c["endpoint"], c["certificateAuthority"]["data"]


class KubeApi:
    """The few Kubernetes API calls the follower makes, with an EKS token renewed before it expires."""

    def __init__(
        self, server: str, ca_data: str, token: Callable[[], str], clock: Callable[[], float] = time.monotonic
    ):
        self.server = server.rstrip("/")
        self.context = ssl.create_default_context(cadata=base64.b64decode(ca_data).decode())
        self._token_factory, self._clock = token, clock
        self._token: str | None = None
        self._token_at = 0.0

    def token(self) -> str:
        now = self._clock()
        if self._token is None or now - self._token_at > TOKEN_REFRESH_SECONDS:
            self._token, self._token_at = self._token_factory(), now
        return self._token

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        raw: bool = False,
    ) -> Any:
        url = self.server + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token()}",
                "Accept": "application/json",
                **({"Content-Type": content_type} if data is not None else {}),
            },
        )
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=HTTP_TIMEOUT) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(method, path, exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise KubeApiError(
                f"cannot reach the Kubernetes API at {self.server} ({reason}): is the cluster "
                "up and its endpoint public (or this machine inside the VPC)?"
            ) from None
        return payload.decode(errors="replace") if raw else json.loads(payload or b"{}")

    def _http_error(self, method: str, path: str, exc: urllib.error.HTTPError) -> KubeApiError:
        try:
            detail = json.loads(exc.read() or b"{}").get("message", "")
        except ValueError:
            detail = ""
        what = f"{method} {path}: HTTP {exc.code}" + (f" ({detail})" if detail else "")
        if exc.code in (401, 403):
            return KubeApiError(
                f"{what}: the Kubernetes API refused this AWS identity. It needs an EKS access entry on the "
                "cluster with an access policy such as AmazonEKSClusterAdminPolicy (the identity that deployed a "
                "dedicated cluster has one as its creator; on a shared cluster ask the platform owner: "
                "`aws eks create-access-entry` + `aws eks associate-access-policy`)",
                exc.code,
            )
        return KubeApiError(what, exc.code)


def _parse_ts(stamp: str) -> tuple[str, int]:
    """RFC3339Nano (`2026-11-23T17:00:01.5Z`) -> (whole second, nanoseconds), comparable as a tuple."""
    second, _, frac = stamp.rstrip("Z").partition(".")
    return second, int((frac + "000000000")[:9]) if frac else 0


class EksFollower:
    def __init__(
        self,
        outputs: Mapping[str, Any],
        session: Any,
        job: JobRef | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stack = ClusterOutputs.from_outputs(outputs)
        self.o = EksOutputs.from_outputs(outputs)
        self.ref = job or JobRef()
        region = self.stack.region
        self.cluster = self.o.cluster_name
        # The stack's own Job (`up` created it), or a further one (`trainstack exec`: `train-<job id>`).
        self.ns, self.job = self.o.namespace, self.ref.handle or self.o.job_name
        self.eks = session.client("eks", region_name=region)
        self.autoscaling = session.client("autoscaling", region_name=region)
        sts = session.client("sts", region_name=region)
        server, ca = _endpoint_and_ca(self.o, self.eks)
        self.api = KubeApi(server, ca, lambda: eks_token(sts, self.cluster), clock=clock)
        self.job_path = f"/apis/batch/v1/namespaces/{self.ns}/jobs/{self.job}"
        self._pod: str | None = None
        self._cursor: tuple[str, int] | None = None  # newest log timestamp printed
        self._seen_at_cursor: set[str] = set()  # lines printed with that exact timestamp

    @staticmethod
    def exec_payload(r: ExecRequest) -> dict[str, Any]:
        """A further Indexed Job `train-<job id>`, built by the program's own builder with the job's runtime,
        prefixes, code and id (its pods write the job's run.json)."""
        spec = req.job_spec(r.cfg.cluster)
        spec = replace(
            spec,
            max_runtime_seconds=r.runtime_seconds,
            environment={**dict(spec.environment), JOB_ID_ENV: r.job_id},
        )
        return req.training_job(
            spec,
            stack=r.stack,
            namespace=EksOutputs.from_outputs(r.outputs).namespace,
            locations=r.locations,
            region=r.cfg.region,
            code_uri=r.code_uri,
            name=f"{req.JOB_NAME}-{r.job_id}",
            record=True,
        )

    @staticmethod
    def job_handle(outputs: Mapping[str, Any], owner: str, stack: str, job_id: str | None) -> str | None:
        """`train-<job id>` for a further job, the stack's own Job's name otherwise."""
        return f"{req.JOB_NAME}-{job_id}" if job_id else EksOutputs.from_outputs(outputs).job_name

    def submit(self) -> None:
        """Nothing to start: `up` created the Job (Cluster Autoscaler brings the nodes for its pods)."""

    def start(self, manifest: Mapping[str, Any]) -> None:
        """Create a further Indexed Job (`trainstack exec`), built by the program's own builder
        (trainstack.model.eks_request.training_job); Cluster Autoscaler scales the GPU groups for its pods."""
        self.job = str(manifest["metadata"]["name"])
        self.job_path = f"/apis/batch/v1/namespaces/{self.ns}/jobs/{self.job}"
        try:
            self.api.request("POST", f"/apis/batch/v1/namespaces/{self.ns}/jobs", body=dict(manifest))
        except KubeApiError as exc:
            if exc.status is None and self._cluster_gone():  # no answer at all: is there a cluster?
                minutes = self.o.idle_stop_minutes
                by = f"its idle stop (eks.idleStopMinutes: {minutes}) deleted it" if minutes else "it was deleted"
                raise KubeApiError(
                    f"EKS cluster {self.cluster} does not exist: {by}. Fix: `pulumi up --stack "
                    f"{self.stack.artifact_uri.rstrip('/').rsplit('/', 1)[-1]}` recreates it (control plane, node "
                    "groups), then `trainstack exec` again"
                ) from None
            raise

    def _cluster_gone(self) -> bool:
        """DescribeCluster says ResourceNotFoundException (EKS API reference): the control plane is gone."""
        try:
            self.eks.describe_cluster(name=self.cluster)
        except Exception as exc:  # noqa: BLE001 - only a definite "not found" counts
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            return code == "ResourceNotFoundException"
        return False

    def handle(self) -> str:
        return self.job

    def _get_job(self) -> dict:
        try:
            return self.api.request("GET", self.job_path)
        except KubeApiError as exc:
            if exc.status == 404:
                raise KubeApiError(
                    f"Job {self.job} in namespace {self.ns} is gone (deleted outside this run?): {exc}", 404
                ) from None
            raise

    def poll(self) -> JobState:
        status = self._get_job().get("status", {})
        conditions = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
        if "Complete" in conditions:
            return JobState(SUCCEEDED, f"{status.get('succeeded', 0)} pod(s) succeeded")
        if "Failed" in conditions:
            c = conditions["Failed"]
            reason = f"Job failed: {c.get('reason', '')}: {c.get('message', '')}".rstrip(": ")
            return JobState(FAILED, "; ".join([reason, *self._out_of_memory()]))
        active, ready = status.get("active") or 0, status.get("ready") or 0
        if ready or (active and self._any_pod_running()):
            return JobState(RUNNING, f"{active} pod(s) active, {ready} ready")
        return JobState(PENDING, f"{active} pod(s) active, none running yet" if active else "no pod yet")

    def _out_of_memory(self) -> list[str]:
        """The containers the kernel killed at their memory limit (the Job's pods set limit = request, so a
        runaway job ends as its own OOMKilled container rather than an evicted node): exit 137 alone does not
        say it."""
        try:
            pods = self._pods()
        except KubeApiError:
            return []
        found = []
        for p in pods:
            limits = {
                c.get("name"): ((c.get("resources") or {}).get("limits") or {}).get("memory")
                for c in (p.get("spec") or {}).get("containers") or []
            }
            for cs in (p.get("status") or {}).get("containerStatuses") or []:
                state = cs.get("state") or {}
                last = cs.get("lastState") or {}
                terminated = state.get("terminated") or last.get("terminated") or {}
                if terminated.get("reason") == "OOMKilled":
                    limit = limits.get(cs.get("name"))
                    found.append(
                        f"pod {p['metadata']['name']} container {cs.get('name')} was OOMKilled: it used more than its "
                        f"memory limit{f' ({limit})' if limit else ''}, which is 80% of the smallest GPU type's memory "
                        "share and includes /dev/shm. Fix: a type with more memory per GPU, or fewer DataLoader "
                        "workers / a smaller batch"
                    )
        return found

    def _pods(self) -> list[dict]:
        return self.api.request(
            "GET", f"/api/v1/namespaces/{self.ns}/pods", query={"labelSelector": f"{JOB_NAME_LABEL}={self.job}"}
        ).get("items", [])

    def _any_pod_running(self) -> bool:
        # `status.active` counts pods that are still Pending too (waiting for a node): not running yet.
        return any(p.get("status", {}).get("phase") == "Running" for p in self._pods())

    def tail(self) -> list[str]:
        pods = [
            p
            for p in self._pods()
            if p.get("metadata", {}).get("annotations", {}).get(INDEX_ANNOTATION) == "0"
            and p.get("status", {}).get("phase") in ("Running", "Succeeded", "Failed")
        ]
        if not pods:
            return []
        # A pod replaced after a disruption (podFailurePolicy Ignore) is newer: follow the newest.
        pod = max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))["metadata"]["name"]
        if pod != self._pod:
            self._pod, self._cursor, self._seen_at_cursor = pod, None, set()
        query = {"timestamps": "true"}
        if self._cursor:
            query["sinceTime"] = self._cursor[0] + "Z"  # whole seconds (RFC3339): re-reads that second
        try:
            text = self.api.request("GET", f"/api/v1/namespaces/{self.ns}/pods/{pod}/log", query=query, raw=True)
        except KubeApiError as exc:
            # Logs are best effort (container not started yet: 400; pod or its node gone: 404/500); poll()
            # reports what matters. A refused identity is reported at once.
            if exc.status in (401, 403):
                raise
            return []
        lines = []
        for raw in text.splitlines():
            stamp, _, message = raw.partition(" ")
            try:
                key = _parse_ts(stamp)
            except ValueError:
                continue
            if self._cursor and (key < self._cursor or (key == self._cursor and raw in self._seen_at_cursor)):
                continue  # printed by an earlier call
            if key != self._cursor:
                self._cursor, self._seen_at_cursor = key, set()
            self._seen_at_cursor.add(raw)
            lines.append(LOG_PREFIX + message)
        return lines

    def stop(self) -> None:
        """Suspend the Job: Kubernetes deletes its active pods (Cluster Autoscaler then removes the nodes)
        and keeps the Job object with its status. Not DELETE: Pulumi still has the Job in its state, so a
        `pulumi up --refresh` of a kept stack (--keep-on-failure) would re-create a deleted Job and train
        again; a suspended one stays suspended (Pulumi does not manage
        `spec.suspend`) and shows why it ended. The `destroy` that follows a run deletes it anyway.
        Idempotent: a Job that is gone or already finished needs nothing."""
        try:
            job = self.api.request("GET", self.job_path)
        except KubeApiError as exc:
            if exc.status == 404:
                return
            raise
        conditions = {c.get("type") for c in job.get("status", {}).get("conditions") or [] if c.get("status") == "True"}
        if job.get("spec", {}).get("suspend") or conditions & {"Complete", "Failed"}:
            return
        self.api.request(
            "PATCH", self.job_path, body={"spec": {"suspend": True}}, content_type="application/merge-patch+json"
        )

    def stalled(self) -> str:
        reasons: list[str] = []
        try:
            for p in self._pods():
                if p.get("status", {}).get("phase") != "Pending":
                    continue
                name = p["metadata"]["name"]
                for c in p["status"].get("conditions") or []:
                    if c.get("type") == "PodScheduled" and c.get("status") == "False":
                        reasons.append(f"pod {name} unschedulable ({c.get('reason', '')}): {c.get('message', '')}")
                # Scheduled but not starting: e.g. ImagePullBackOff, CreateContainerConfigError.
                for cs in p["status"].get("containerStatuses") or []:
                    waiting = (cs.get("state") or {}).get("waiting")
                    if waiting and waiting.get("reason") not in (None, "ContainerCreating"):
                        reasons.append(
                            f"pod {name} container {cs.get('name')} waiting: {waiting['reason']}: "
                            f"{waiting.get('message', '')}".rstrip(": ")
                        )
        except KubeApiError as exc:
            reasons.append(f"(could not list the Job's pods: {exc})")
        if not reasons:
            reasons.append("no pod of the Job was scheduled or started")
        for group in self.o.node_group_names:
            reasons += self._node_group_problems(group)
        return "; ".join(reasons)

    def _node_group_problems(self, group: str) -> list[str]:
        try:
            ng = self.eks.describe_nodegroup(clusterName=self.cluster, nodegroupName=group)["nodegroup"]
        except Exception as exc:  # noqa: BLE001 - best effort: this only enriches a message
            return [f"(could not describe node group {group}: {exc})"]
        out = [
            f"node group {group}: {i.get('code')}: {i.get('message', '')}"
            for i in (ng.get("health") or {}).get("issues") or []
        ]
        for asg in (ng.get("resources") or {}).get("autoScalingGroups") or []:
            out += [f"node group {group}: {m}" for m in failed_scaling_activities(self.autoscaling, asg["name"])]
        return out

    def model_uri(self) -> str | None:
        return f"{self.ref.artifact_uri(self.stack.artifact_uri)}model/" if self.ref.id else self.stack.model_uri
