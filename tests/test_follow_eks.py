"""The eks job follower against a fake Kubernetes API on 127.0.0.1 over TLS (its CA handed over as
the kubeconfig output's CA data), with EKS/autoscaling answers stubbed (botocore Stubber)."""

from __future__ import annotations

import base64
import datetime as dt
import io
import ipaddress
import json
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from rich.console import Console

from scripts.follow import FAILED, PENDING, RUNNING, SUCCEEDED, follower_for
from scripts.follow.eks import TOKEN_PREFIX, TOKEN_REFRESH_SECONDS, EksFollower, KubeApi, KubeApiError, eks_token
from scripts.pulumi_driver import Interrupts
from scripts.run import RunOptions, Ui, follow
from trainstack.eks_request import kubeconfig

NS, JOB = "ts-dev-eks", "train"
JOB_PATH = f"/apis/batch/v1/namespaces/{NS}/jobs/{JOB}"
PODS_PATH = f"/api/v1/namespaces/{NS}/pods"
SCHED = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are available."


def _tls_files(tmp):
    """A CA and a server certificate for 127.0.0.1 signed by it (Python's default context verifies the
    chain and the IP SAN, as it would against the EKS endpoint)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    (tmp / "cert.pem").write_bytes(pem(cert))
    (tmp / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    return tmp / "cert.pem", tmp / "key.pem", base64.b64encode(pem(ca)).decode()


class FakeKube:
    """Scripted API state: `job` (its status), `pods`, `logs` per pod (full text; sinceTime filters by second),
    `deny` (HTTP code for every call). Records every request as (method, path, query, body)."""

    def __init__(self):
        self.job: dict | None = {"spec": {}, "status": {}}
        self.pods: list[dict] = []
        self.logs: dict[str, list[str]] = {}
        self.deny: int | None = None
        self.calls: list[tuple] = []

    def handle(self, h: BaseHTTPRequestHandler, method: str):
        url = urllib.parse.urlsplit(h.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)) or None
        self.calls.append((method, url.path, query, json.loads(body) if body else None,
                           h.headers.get("Content-Type")))
        if not (h.headers.get("Authorization") or "").startswith("Bearer " + TOKEN_PREFIX):
            return self.reply(h, 401, {"kind": "Status", "message": "Unauthorized"})
        if self.deny:
            return self.reply(h, self.deny, {"kind": "Status", "message": 'jobs.batch "train" is forbidden: User '
                                             '"arn:aws:sts::123456789012:assumed-role/dev/bob" cannot get resource'})
        if url.path == JOB_PATH:
            if self.job is None:
                return self.reply(h, 404, {"kind": "Status", "message": 'jobs.batch "train" not found'})
            if method == "PATCH":
                self.job["spec"].update(json.loads(body)["spec"])
            return self.reply(h, 200, self.job)
        if url.path == PODS_PATH:
            assert query["labelSelector"] == f"batch.kubernetes.io/job-name={JOB}"
            return self.reply(h, 200, {"items": self.pods})
        if url.path.startswith(PODS_PATH + "/") and url.path.endswith("/log"):
            assert query.get("timestamps") == "true"
            lines = self.logs.get(url.path.split("/")[-2], [])
            since = query.get("sinceTime")
            if since:  # the API server keeps lines at or after that second
                lines = [ln for ln in lines if ln[:19] >= since.rstrip("Z")]
            data = "".join(ln + "\n" for ln in lines).encode()
            h.send_response(200)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            return h.wfile.write(data)
        return self.reply(h, 404, {"kind": "Status", "message": "not found"})

    @staticmethod
    def reply(h, code, obj):
        data = json.dumps(obj).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cert, key, ca_data = _tls_files(tmp_path_factory.mktemp("tls"))
    state = {"kube": FakeKube()}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            state["kube"].handle(self, "GET")

        def do_PATCH(self):
            state["kube"].handle(self, "PATCH")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield state, f"https://127.0.0.1:{httpd.server_address[1]}", ca_data
    httpd.shutdown()


def _session():
    return boto3.Session(aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="secret",
                         region_name="us-east-1")


@pytest.fixture
def kube(server):
    state, endpoint, ca_data = server
    state["kube"] = fake = FakeKube()
    outputs = {"backend": "eks", "region": "us-east-1", "clusterName": "ts-dev-eks", "namespace": NS,
               "jobName": JOB, "nodeGroupNames": ["gpu-p3-2xlarge-ng"], "modelUri": "s3://art/dev-eks/model/",
               "kubeconfig": json.dumps(kubeconfig("ts-dev-eks", endpoint, ca_data, "us-east-1"))}
    return fake, outputs


def pod(name, phase, index="0", created="2026-11-23T17:00:00Z", conditions=()):
    return {"metadata": {"name": name, "creationTimestamp": created,
                         "annotations": {"batch.kubernetes.io/job-completion-index": index}},
            "status": {"phase": phase, "conditions": list(conditions)}}


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
    fake.job["status"] = {"failed": 1, "conditions": [
        {"type": "Failed", "status": "True", "reason": "PodFailurePolicy",
         "message": "Container training for pod ts-dev-eks/train-0-abc failed with exit code 1 matching FailJob rule"}]}
    state = EksFollower(outputs, _session()).poll()
    assert state.phase == FAILED and "PodFailurePolicy" in state.reason and "exit code 1" in state.reason


def test_stalled_pods_report_the_scheduler_and_the_node_group(kube):
    fake, outputs = kube
    fake.job["status"] = {"active": 1}
    fake.pods = [pod("train-0-abc", "Pending", conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": SCHED}])]
    f = EksFollower(outputs, _session())
    capacity = "We currently do not have sufficient p3.2xlarge capacity in the Availability Zone you requested."
    with Stubber(f.eks) as eks, Stubber(f.autoscaling) as asg:
        eks.add_response("describe_nodegroup", {"nodegroup": {
            "nodegroupName": "gpu-p3-2xlarge-ng", "health": {"issues": []},
            "resources": {"autoScalingGroups": [{"name": "eks-gpu-123"}]}}},
            {"clusterName": "ts-dev-eks", "nodegroupName": "gpu-p3-2xlarge-ng"})
        asg.add_response("describe_scaling_activities", {"Activities": [
            {"ActivityId": "a", "AutoScalingGroupName": "eks-gpu-123", "Cause": "c", "StartTime": dt.datetime(2026, 1, 1),
             "StatusCode": "Failed", "StatusMessage": capacity}]},
            {"AutoScalingGroupName": "eks-gpu-123", "MaxRecords": 5})
        opts = RunOptions(template="t", poll_seconds=0, start_timeout_seconds=60, grace_seconds=600)
        clock = iter(range(0, 10_000, 100))
        state = follow(f, intr=Interrupts(None), ui=Ui(Console(file=io.StringIO())), opts=opts,
                       max_runtime_hours=1, clock=lambda: next(clock))[0]
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
        stub.add_response("describe_cluster", {"cluster": {"endpoint": cfg["server"], "certificateAuthority": {
            "data": cfg["certificate-authority-data"]}}}, {"name": "ts-dev-eks"})
        f = EksFollower(outputs, session)
    fake.job["status"] = {"active": 1, "ready": 1}
    assert f.poll().phase == RUNNING


def test_the_token_is_a_presigned_sts_url_bound_to_the_cluster_and_renewed():
    sts = _session().client("sts", region_name="us-east-1")
    token = eks_token(sts, "ts-dev-eks")
    assert token.startswith("k8s-aws-v1.") and not token.endswith("=")
    body = token[len("k8s-aws-v1."):]
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
    api = KubeApi(cluster["server"], cluster["certificate-authority-data"],
                  lambda: made.append(1) or f"{TOKEN_PREFIX}t{len(made)}", clock=lambda: now[0])
    api.request("GET", JOB_PATH)
    now[0] = TOKEN_REFRESH_SECONDS - 1
    api.request("GET", JOB_PATH)
    assert len(made) == 1
    now[0] = TOKEN_REFRESH_SECONDS + 1  # EKS accepts a token for 15 min: a new one before that
    api.request("GET", JOB_PATH)
    assert len(made) == 2
