"""A fake Kubernetes API on 127.0.0.1 over TLS for the eks follower's tests: its CA is handed over as
a kubeconfig's CA data, every request must carry an EKS bearer token, and the Job, its pods and their
logs are whatever the test scripts."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from trainstack.run.follow.eks import TOKEN_PREFIX

NS, JOB = "ts-dev-eks", "train"
JOB_PATH = f"/apis/batch/v1/namespaces/{NS}/jobs/{JOB}"
PODS_PATH = f"/api/v1/namespaces/{NS}/pods"


def _tls_files(tmp):
    """A CA and a server certificate for 127.0.0.1 signed by it (Python's default context verifies the
    chain and the IP SAN, as it would against the EKS endpoint)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    (tmp / "cert.pem").write_bytes(pem(cert))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tmp / "cert.pem", tmp / "key.pem", base64.b64encode(pem(ca)).decode()


class FakeKube:
    """Scripted API state: `jobs` by name (`job` is the stack's own, `train`), `pods` (a pod belongs to the Job its
    `batch.kubernetes.io/job-name` label names, `train` without one), `logs` per pod (full text; sinceTime filters by
    second), `deny` (HTTP code for every call). POST creates a Job (`on_create(job)` plays its pods). Records every
    request as (method, path, query, body)."""

    def __init__(self, ns: str = NS):
        self.jobs_path = f"/apis/batch/v1/namespaces/{ns}/jobs"
        self.job_path = f"{self.jobs_path}/{JOB}"
        self.pods_path = f"/api/v1/namespaces/{ns}/pods"
        self.jobs: dict[str, dict] = {JOB: {"spec": {}, "status": {}}}
        self.pods: list[dict] = []
        self.logs: dict[str, list[str]] = {}
        self.deny: int | None = None
        self.calls: list[tuple] = []
        self.on_create = None

    @property
    def job(self) -> dict | None:
        return self.jobs.get(JOB)

    @job.setter
    def job(self, value: dict | None) -> None:
        if value is None:
            self.jobs.pop(JOB, None)
        else:
            self.jobs[JOB] = value

    def handle(self, h: BaseHTTPRequestHandler, method: str):
        url = urllib.parse.urlsplit(h.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)) or None
        self.calls.append((method, url.path, query, json.loads(body) if body else None, h.headers.get("Content-Type")))
        if not (h.headers.get("Authorization") or "").startswith("Bearer " + TOKEN_PREFIX):
            return self.reply(h, 401, {"kind": "Status", "message": "Unauthorized"})
        if self.deny:
            return self.reply(
                h,
                self.deny,
                {
                    "kind": "Status",
                    "message": 'jobs.batch "train" is forbidden: User '
                    '"arn:aws:sts::123456789012:assumed-role/dev/bob" cannot get resource',
                },
            )
        if url.path == self.jobs_path and method == "POST":
            job = json.loads(body)
            name = job["metadata"]["name"]
            if name in self.jobs:
                return self.reply(h, 409, {"kind": "Status", "message": f'jobs.batch "{name}" already exists'})
            self.jobs[name] = {**job, "status": {}}
            if self.on_create is not None:
                self.on_create(self.jobs[name])
            return self.reply(h, 201, self.jobs[name])
        if url.path.startswith(self.jobs_path + "/"):
            name = url.path.rsplit("/", 1)[-1]
            job = self.jobs.get(name)
            if job is None:
                return self.reply(h, 404, {"kind": "Status", "message": f'jobs.batch "{name}" not found'})
            if method == "PATCH":
                job.setdefault("spec", {}).update(json.loads(body)["spec"])
            return self.reply(h, 200, job)
        if url.path == self.pods_path:
            key, _, name = query["labelSelector"].partition("=")
            assert key == "batch.kubernetes.io/job-name"
            items = [p for p in self.pods if p["metadata"].get("labels", {}).get(key, JOB) == name]
            return self.reply(h, 200, {"items": items})
        if url.path.startswith(self.pods_path + "/") and url.path.endswith("/log"):
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


class KubeServer:
    """Serves `self.kube` (replace it to reset the state) until `close()`."""

    def __init__(self, tmp: Path):
        cert, key, self.ca_data = _tls_files(tmp)
        self.kube = FakeKube()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.kube.handle(self, "GET")

            def do_PATCH(self):
                outer.kube.handle(self, "PATCH")

            def do_POST(self):
                outer.kube.handle(self, "POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.endpoint = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def pod(name, phase, index="0", created="2026-11-23T17:00:00Z", conditions=(), job=None):
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "annotations": {"batch.kubernetes.io/job-completion-index": index},
            **({"labels": {"batch.kubernetes.io/job-name": job}} if job else {}),
        },
        "status": {"phase": phase, "conditions": list(conditions)},
    }
