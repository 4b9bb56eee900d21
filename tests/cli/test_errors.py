"""Issue 20, part 1: one error surface. A sweep over every command's bad inputs: each ends in one message that
names what failed, the value and the fix, with the documented exit code (trainstack.errors.ExitCode), and
never a traceback. AWS is a moto server or an unreachable endpoint; Pulumi is the strict fake CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fakes.run_harness import FAKE_ROOT
from tests.helpers import copy_project
from trainstack.cli.main import app
from trainstack.errors import ExitCode


@dataclass
class Case:
    id: str
    args: list[str]
    code: int
    says: list[str]  # substrings of the message (stderr)
    env: dict[str, str] = field(default_factory=dict)  # "{moto}", "{tmp}", "{fake}" are filled in
    setup: str = ""  # what the case needs: project (a copy with broken stack files), data, moto, fake


AWS_TEST = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
NO_REGION = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": "{tmp}/none"}
MOTO = {**AWS_TEST, "AWS_ENDPOINT_URL": "{moto}"}
FAKE = {"TRAINSTACK_PULUMI_ROOT": "{fake}", "FAKE_PULUMI_STATE": "{tmp}/state", "FAKE_PULUMI_PYTHON": sys.executable}
NO_CLI = {"PATH": "{tmp}/empty-path"}  # and no TRAINSTACK_PULUMI_ROOT

CASES = [
    # stack files (plan reads them as run does)
    Case("stack-file-is-a-list", ["plan", "broken", "--root", "{tmp}/p"], 2, ["top level is a list", "Fix:"], {},
         "project:- a\n- b\n"),
    Case("stack-file-is-binary", ["plan", "broken", "--root", "{tmp}/p"], 2, ["not a text file", "not UTF-8", "Fix:"],
         {}, "project-binary"),
    Case("stack-file-duplicate-key", ["run", "broken", "--root", "{tmp}/p", "--yes"], 2,
         ["trainstack:owner is given twice (lines 3 and 4)", "Fix: remove one"], FAKE,
         "project:config:\n  trainstack:kind: cluster\n  trainstack:owner: alice\n  trainstack:owner: bob\n"),
    Case("plan-unknown-format", ["plan", "dev-ecs", "--format", "png"], 2, ["--format png", "Fix: use text"]),
    Case("plan-unknown-stack", ["plan", "nope"], 2, ["no stack file", "stacks here:"]),
    # run
    Case("run-unclosed-quote", ["run", "dev-ecs", "--command", 'python "train.py'], 2,
         ["--command 'python \"train.py'", "no closing quotation", "Fix: close the quote"]),
    Case("run-empty-command", ["run", "dev-ecs", "--command", ""], 2, ["--command '': empty", "leave --command out"]),
    Case("run-negative-start-timeout", ["run", "dev-ecs", "--start-timeout-minutes", "-1", "--yes"], 2,
         ["--start-timeout-minutes -1: must be more than 0", "Fix:"], FAKE),
    Case("run-unknown-template", ["run", "dev-nope", "--yes"], 2, ["TEMPLATE = dev-nope", "templates here"], FAKE),
    Case("run-bad-set", ["run", "dev-ecs", "--set", "=3", "--yes"], 2, ["--set =3: expected KEY=VALUE"], FAKE),
    Case("run-bad-name", ["run", "dev-ecs", "--name", "Bad_Name", "--yes"], 2, ["--name Bad_Name", "lower-case"], FAKE),
    Case("run-ttl-too-long", ["run", "dev-ecs", "--ttl-hours", "500", "--yes"], 2, ["--ttl-hours 500: use 1-72"], FAKE),
    Case("run-without-cli", ["run", "dev-ecs", "--yes"], 2, ["the Pulumi CLI is not installed", "Install it with"],
         NO_CLI),
    Case("run-off-a-terminal-without-yes", ["run", "dev-ecs", "--no-doctor"], 2,
         ["refusing without a terminal to ask on", "Fix: pass --yes"], FAKE, "fake"),
    # upload
    Case("upload-non-utf8-name", ["upload", "{tmp}/latin1", "raw/x/v1/", "--bucket", "b"], 2,
         ["not valid UTF-8", "'caf\\udce9.bin'", "Fix: rename them"], {}, "latin1"),
    Case("upload-missing-bucket", ["upload", "{tmp}/data", "raw/x/v1/", "--bucket", "no-such-bucket-1"], 2,
         ["bucket no-such-bucket-1: does not exist (nothing was uploaded)", "Fix: check --bucket"], MOTO, "data"),
    Case("upload-empty-folder-name", ["upload", "{tmp}/data", "raw/a//b/", "--bucket", "b"], 2,
         ["DEST = 'raw/a//b/'", "empty folder name", "Fix: remove the extra /"], {}, "data"),
    Case("upload-wildcard", ["upload", "{tmp}/data", "raw/*/", "--bucket", "b"], 2,
         ["DEST = 'raw/*/'", "`*` is not a wildcard"], {}, "data"),
    Case("upload-space", ["upload", "{tmp}/data", "raw/my data/", "--bucket", "b"], 2,
         ["DEST = 'raw/my data/'", "contains a space", "Fix:"], {}, "data"),
    Case("upload-no-src", ["upload", "{tmp}/nothing", "raw/x/v1/", "--bucket", "b"], 2, ["does not exist"]),
    Case("upload-jobs", ["upload", "{tmp}/data", "raw/x/v1/", "--bucket", "b", "--jobs", "0"], 2, ["--jobs = 0"],
         {}, "data"),
    Case("upload-bucket-and-platform", ["upload", "{tmp}/data", "raw/x/", "--bucket", "b", "--platform", "p"], 2,
         ["--bucket and --platform both given"], {}, "data"),
    Case("upload-unknown-platform", ["upload", "{tmp}/data", "raw/x/v1/", "--platform", "nope"], 2,
         ["--platform nope: no such stack", "--bucket NAME"], FAKE, "data+fake"),
    # ls / reap
    Case("ls-no-region", ["ls"], 2, ["no AWS region given and none configured", "Fix: pass --region"], NO_REGION),
    Case("ls-unknown-region", ["ls", "--region", "us-east-99"], 2,
         ["--region us-east-99: not an AWS region", "did you mean us-east-2"], AWS_TEST),
    Case("ls-unreachable-endpoint", ["ls", "--region", "us-east-1"], 2,
         ["cannot reach http://127.0.0.1:9", "AWS_ENDPOINT_URL"], {**AWS_TEST, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}),
    Case("reap-no-selector", ["reap"], 2, ["reap needs a selector", "Fix: pass --expired"]),
    Case("reap-bad-grace", ["reap", "--expired", "--grace", "soon", "--region", "us-east-1"], 2,
         ["--grace = 'soon'", "Fix: write e.g. 15m"], AWS_TEST),
    # down
    Case("down-missing-stack", ["down", "t-nope", "--yes"], 4, ["t-nope: no such stack", "trainstack ls"], FAKE, "fake"),
    Case("down-without-cli", ["down", "t-nope", "--yes"], 2, ["the Pulumi CLI is not installed"], NO_CLI),
    Case("down-off-a-terminal-without-yes", ["down", "t-nope"], 2, ["refusing without a terminal", "--yes"]),
    # sagemaker
    Case("sagemaker-status-unknown-job", ["sagemaker", "status", "no-such-job", "--region", "us-east-1"], 4,
         ["training job no-such-job: not found in us-east-1", "Fix: check the name"], MOTO),
    Case("sagemaker-stop-unknown-job", ["sagemaker", "stop", "no-such-job"], 4,
         ["training job no-such-job: not found in us-east-1"], MOTO),
    Case("sagemaker-status-no-region", ["sagemaker", "status", "j"], 2, ["no AWS region given"], NO_REGION),
    Case("sagemaker-start-unknown-stack", ["sagemaker", "start", "nope"], 4,
         ["stack nope: no such stack", "--outputs FILE"], FAKE, "fake"),
    Case("sagemaker-start-without-cli", ["sagemaker", "start", "dev-sagemaker"], 2,
         ["the Pulumi CLI is not installed"], NO_CLI),
    Case("sagemaker-start-missing-outputs-file",
         ["sagemaker", "start", "dev-sagemaker", "--outputs", "/nonexistent.json"], 2,
         ["--outputs /nonexistent.json: no such file", "pulumi stack output --json"]),
]  # fmt: skip


def prepare(case: Case, tmp: Path, request) -> tuple[dict[str, str], list[str]]:
    """The case's files and fakes; its environment and arguments with the placeholders filled in."""
    (tmp / "empty-path").mkdir()
    if case.setup.startswith("project"):
        (tmp / "p").mkdir()
        copy_project(tmp / "p")
        target = tmp / "p" / "stacks" / "Pulumi.broken.yaml"
        if case.setup == "project-binary":
            target.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
        else:
            target.write_text(case.setup.split(":", 1)[1])
    if "data" in case.setup:
        (tmp / "data").mkdir()
        (tmp / "data" / "labels.csv").write_text("id,label\n")
    if case.setup == "latin1":
        (tmp / "latin1").mkdir()
        (tmp / "latin1" / os.fsdecode(b"caf\xe9.bin")).write_bytes(b"x")
    if case.env is FAKE:
        (tmp / "state" / "stacks").mkdir(parents=True)
    if "fake" in case.setup:  # a deployed platform, as a run needs one
        platform = {"name": "platform", "config": {}, "resources": [], "history": []}
        platform["outputs"] = request.getfixturevalue("platform_outputs")
        (tmp / "state" / "stacks" / "platform.json").write_text(json.dumps(platform))
    fill = {"{tmp}": str(tmp), "{fake}": str(FAKE_ROOT)}
    if "{moto}" in json.dumps(case.env):
        fill["{moto}"] = request.getfixturevalue("moto_server")
    env = {}
    for k, v in case.env.items():
        for key, value in fill.items():
            v = v.replace(key, value)
        env[k] = v
    return env, [a.replace("{tmp}", str(tmp)) for a in case.args]


def isolate(monkeypatch, env: dict[str, str]) -> None:
    """A shell with exactly these AWS/Pulumi settings (none leaking in from the machine or other tests)."""
    for key in list(os.environ):
        if key.startswith(("AWS_", "TRAINSTACK_", "FAKE_PULUMI_", "PULUMI_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_bad_input_is_one_message_with_its_exit_code_and_no_traceback(case, tmp_path, monkeypatch, request):
    from botocore.retries.standard import ExponentialBackoff

    env, args = prepare(case, tmp_path, request)
    isolate(monkeypatch, env)
    # An unreachable endpoint is still retried as configured, without the random backoff between the tries.
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    result = CliRunner().invoke(app, args)
    text = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in text
    assert result.exit_code == case.code, text
    message = result.stderr
    assert message.startswith("error: ") and message.count("error: ") == 1, message
    for part in case.says:
        assert part in message, message


def test_json_mode_reports_the_error_on_stdout_too(tmp_path, monkeypatch):
    isolate(monkeypatch, {"PATH": str(tmp_path)})
    result = CliRunner().invoke(app, ["down", "t-x", "--yes", "--json"])
    doc = json.loads(result.stdout)
    assert result.exit_code == 2 and doc["exit_code"] == 2 and doc["status"] == "refused"
    assert "the Pulumi CLI is not installed" in doc["reason"]
    result = CliRunner().invoke(app, ["ls", "--region", "us-east-99", "--json"])
    doc = json.loads(result.stdout)
    assert doc == {"ok": False, "exitCode": 2, "error": doc["error"]} and "us-east-99" in doc["error"]


def test_an_unexpected_error_is_one_line_exit_70_and_debug_shows_the_traceback(monkeypatch):
    from trainstack.fleet import inventory

    def broken(*a, **kw):
        raise RuntimeError("boom")

    isolate(monkeypatch, AWS_TEST)
    monkeypatch.setattr(inventory, "list_clusters", broken)
    result = CliRunner().invoke(app, ["ls", "--region", "us-east-1"])
    assert result.exit_code == ExitCode.INTERNAL == 70
    assert result.stderr.startswith("error: unexpected error: RuntimeError: boom") and "--debug" in result.stderr
    assert "Traceback" not in result.output
    debug = CliRunner().invoke(app, ["--debug", "ls", "--region", "us-east-1"])
    assert debug.exit_code == 70 and "Traceback" in debug.stderr and 'raise RuntimeError("boom")' in debug.stderr


def test_the_entry_point_itself_prints_no_traceback(tmp_path):
    exe = Path(sys.executable).parent / "trainstack"
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path), **AWS_TEST}
    proc = subprocess.run(
        [str(exe), "ls", "--region", "us-east-99"], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: --region us-east-99: not an AWS region") and "Traceback" not in proc.stderr


def test_an_html_page_is_never_dumped_as_an_aws_message():
    from botocore.exceptions import ClientError

    from trainstack.fleet.aws import user_error

    page = "<!DOCTYPE html><html><head><title>403</title></head><body>" + "x" * 5000 + "</body></html>"
    exc = ClientError(
        {"Error": {"Code": "403", "Message": page}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "GetResources"
    )
    err = user_error(exc)
    assert err is not None and "<html" not in err.message and len(err.message) < 300
    assert "answered with an HTML page (HTTP 403)" in err.message and "Fix: check the region" in err.message


def test_output_off_a_terminal_is_never_wrapped(tmp_path, monkeypatch):
    """CI logs: a long URI or command stays on one line (rich wraps at 80 columns by default)."""
    from trainstack.run.ui import Ui, console

    out = tmp_path / "log"
    with out.open("w") as f:
        ui = Ui(console(file=f))
        long_uri = "s3://datalake-artifacts-77c6a03/artifacts/alice/alice-ecs-202611230700-3f2a/model/output/"
        ui.say(f"model: {long_uri}", "bold green")
        ui.console.print("x" * 30 + " " + long_uri + " " + "y" * 40)
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and lines[0] == f"model: {long_uri}" and long_uri in lines[1]


def test_run_help_names_every_cluster_template():
    import re

    from tests.helpers import ROOT

    result = CliRunner().invoke(app, ["run", "--help"], terminal_width=400)
    clusters = [
        p.name[len("Pulumi.") : -len(".yaml")]
        for p in sorted((ROOT / "stacks").glob("Pulumi.*.yaml"))
        if re.search(r"trainstack:kind:\s*cluster", p.read_text())
    ]
    assert len(clusters) >= 5
    for name in clusters:
        assert name in result.output, name
