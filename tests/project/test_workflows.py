"""The GitHub Actions workflows: GitHub's schema, actionlint (with shellcheck), and our own rules.

Our rules are the ones a reviewer would otherwise have to remember: every `trainstack run` is
followed by an always-cleanup, OIDC tokens only where a role is assumed, forks never reach the
account, actions and the Pulumi CLI pinned, no secret or event text inside a shell script, and
each assumed role has a trust policy conditioned on the workflow's OIDC subject.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws
from moto.iam.policy_validation import IAMPolicyDocumentValidator, IAMTrustPolicyDocumentValidator
from parliament import analyze_policy_string

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
IAM = ROOT / ".github" / "iam"
BIN = Path(sys.executable).parent
FILES = sorted(WORKFLOWS.glob("*.yml"))
OIDC_PROVIDER = "token.actions.githubusercontent.com"
# Current majors (node24 runtimes; actionlint flags node20 ones): bump deliberately, with this list.
PINNED = {
    "actions/checkout": "v6",
    "actions/setup-python": "v6",
    "actions/upload-artifact": "v6",
    "aws-actions/configure-aws-credentials": "v6",
    "pulumi/actions": "v7",
}


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the `on:` key as True
    return doc


def workflow(name: str) -> dict:
    return load(WORKFLOWS / f"{name}.yml")


def jobs():
    for path in FILES:
        for job_id, job in load(path)["jobs"].items():
            yield path.stem, job_id, job


def assumes_role(job: dict) -> bool:
    return any(
        str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")
        and (s.get("with") or {}).get("role-to-assume")
        for s in job.get("steps", [])
    )


def test_the_five_workflows_exist():
    assert [p.stem for p in FILES] == ["ci", "pr-closed", "preview", "reaper", "train"]


# ---------------------------------------------------------------------------------------------
# The two validators (offline: the schema is vendored in check-jsonschema, actionlint is a binary wheel)


def test_workflows_match_githubs_workflow_schema():
    out = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, FILES)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_with_shellcheck_finds_nothing():
    out = subprocess.run(
        [str(BIN / "actionlint"), f"-shellcheck={BIN / 'shellcheck'}", "-pyflakes=", *map(str, FILES)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_does_catch_a_broken_workflow(tmp_path):
    """The validator is live: an unknown action input and an unquoted variable are reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: pulumi/actions@v7\n        with: {pulumi-version-fil: .pulumi-version}\n"
        "      - run: echo $STACK\n"
    )
    out = subprocess.run(
        [str(BIN / "actionlint"), f"-shellcheck={BIN / 'shellcheck'}", "-pyflakes=", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and "pulumi-version-fil" in out.stdout and "SC2086" in out.stdout


# ---------------------------------------------------------------------------------------------
# Our own rules


def test_every_trainstack_run_is_followed_by_an_always_cleanup():
    runs = 0
    for name, job_id, job in jobs():
        steps = job.get("steps", [])
        for i, step in enumerate(steps):
            script = str(step.get("run", ""))
            if not re.search(r"trainstack run\b", script):
                continue
            runs += 1
            assert re.search(r"^\s*exec \S*trainstack run\b", script, re.M), (
                f"{name}/{job_id}: exec the driver so a cancel's SIGINT reaches it"
            )
            assert step.get("timeout-minutes"), f"{name}/{job_id}: the run step needs its own timeout"
            later = steps[i + 1 :]
            cleanup = [
                s for s in later if "always()" in str(s.get("if", "")) and "trainstack down" in str(s.get("run"))
            ]
            assert cleanup, f"{name}/{job_id}: `trainstack run` without a later if: always() `trainstack down`"
            assert cleanup[0].get("timeout-minutes"), f"{name}/{job_id}: the cleanup needs its own timeout"
            # The cleanup removes the very stack the run created, without a terminal to ask on, and a stack the
            # run already removed is success there (down says "no such stack" with exit 4 otherwise).
            assert '--name "$STACK"' in script and 'trainstack down "$STACK" --yes --missing-ok' in cleanup[0]["run"]
    assert runs == 1


def test_train_concurrency_is_per_stack_and_never_cancels_a_run():
    job = workflow("train")["jobs"]["train"]
    assert job["concurrency"]["cancel-in-progress"] is False
    # The group is the stack name: the same expression names the stack the run creates.
    assert job["concurrency"]["group"] == f"train-{job['env']['STACK']}"
    assert "workflow_dispatch" in workflow("train")["on"] and workflow("train")["on"]["pull_request"]["types"] == [
        "labeled"
    ]
    inputs = workflow("train")["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"template", "owner", "overrides"}
    clusters = {
        p.name[len("Pulumi.") : -len(".yaml")]
        for p in (ROOT / "stacks").glob("Pulumi.*.yaml")
        if yaml.safe_load(p.read_text())["config"]["trainstack:kind"] == "cluster"
    }
    assert set(inputs["template"]["options"]) == clusters


def test_every_job_declares_least_privilege_permissions():
    for path in FILES:
        assert load(path).get("permissions") == {}, f"{path.name}: workflow-level permissions must be {{}}"
    for name, job_id, job in jobs():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{name}/{job_id}: no job-level permissions"
        assert perms.get("contents") == "read"
        assert ("id-token" in perms) == assumes_role(job), f"{name}/{job_id}: id-token only where a role is assumed"
        if "id-token" in perms:
            assert perms["id-token"] == "write"
        allowed = {"contents", "id-token"} | ({"pull-requests"} if name == "preview" else set())
        assert set(perms) <= allowed and all(v in ("read", "write") for v in perms.values())


def test_preview_runs_only_for_same_repository_pull_requests():
    wf = workflow("preview")
    job = wf["jobs"]["preview"]
    assert list(wf["on"]) == ["pull_request"]  # never pull_request_target: that would hand forks a token
    assert job["if"].replace(" ", "") == "github.event.pull_request.head.repo.full_name==github.repository"
    assert wf["concurrency"]["cancel-in-progress"] is True


def test_preview_covers_every_example_stack_with_the_policy_pack():
    job = workflow("preview")["jobs"]["preview"]
    stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
    assert sorted(job["strategy"]["matrix"]["stack"]) == stacks
    pulumi = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))["with"]
    assert pulumi["command"] == "preview" and pulumi["policyPacks"] == "trainstack/policies"
    assert pulumi["comment-on-pr"] is True and pulumi["stack-name"].startswith("organization/trainstack/")


def test_pr_closed_never_runs_the_pull_requests_code():
    wf = workflow("pr-closed")
    assert wf["on"] == {"pull_request_target": {"types": ["closed"]}}
    steps = wf["jobs"]["reap"]["steps"]
    checkout = next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@"))
    assert "ref" not in (checkout.get("with") or {}), "pull_request_target must check out the base branch"
    assert any('reap --prefix "pr-${PR_NUMBER}-" --yes' in str(s.get("run")) for s in steps)


def test_reaper_is_nightly_and_keeps_the_listing():
    wf = workflow("reaper")
    assert "schedule" in wf["on"] and "workflow_dispatch" in wf["on"]
    steps = wf["jobs"]["reap"]["steps"]
    assert any("trainstack reap --expired --yes" in str(s.get("run")) for s in steps)
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()" and "clusters-" in upload["with"]["path"]
    listings = [s for s in steps if "trainstack ls" in str(s.get("run")) and "--json" in str(s.get("run"))]
    assert listings and all(s.get("continue-on-error") or s.get("if") == "always()" for s in listings)


def test_actions_and_the_pulumi_cli_are_pinned():
    for name, job_id, job in jobs():
        for step in job.get("steps", []):
            uses = step.get("uses")
            if not uses:
                continue
            action, _, ref = uses.partition("@")
            assert re.fullmatch(r"v\d+(\.\d+){0,2}|[0-9a-f]{40}", ref), f"{name}/{job_id}: {uses} is not pinned"
            assert PINNED.get(action) == ref, f"{name}/{job_id}: {uses}; expected {action}@{PINNED.get(action)}"
            if action == "pulumi/actions":
                assert step["with"]["pulumi-version-file"] == ".pulumi-version"
    pulumi_pin = re.search(r'"pulumi==([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert (ROOT / ".pulumi-version").read_text().strip() == pulumi_pin == "3.272.0"


def test_no_secret_or_untrusted_text_inside_shell_scripts():
    """Values reach scripts through `env:` only: a `${{ }}` inside `run:` is pasted into the script
    (secrets end up in the process list and logs; event text is a script injection)."""
    for name, job_id, job in jobs():
        for step in job.get("steps", []):
            script = str(step.get("run", ""))
            assert "${{" not in script, f"{name}/{job_id}: expression inside run: {script!r}"
            assert not re.search(r"\bset -[a-z]*x|\bprintenv\b|^\s*env\s*$", script, re.M), (
                f"{name}/{job_id}: would print the environment"
            )
        for key, value in (job.get("env") or {}).items():
            assert "secrets." not in str(value), f"{name}/{job_id}: {key} comes from a secret; OIDC needs none"


# ---------------------------------------------------------------------------------------------
# IAM trust policies, one per workflow that assumes a role


def role_jobs():
    return [(name, job) for name, _, job in jobs() if assumes_role(job)]


def expected_subject(name: str, job: dict) -> str:
    """What GitHub puts in the token's `sub`: the environment if the job has one, else the event."""
    if job.get("environment"):
        return f"environment:{job['environment']}"
    assert list(workflow(name)["on"]) == ["pull_request"]
    return "pull_request"


@pytest.mark.parametrize("name", ["preview", "train", "reaper", "pr-closed"])
def test_each_role_trusts_only_its_workflows_oidc_subject(name):
    (job,) = [j for n, j in role_jobs() if n == name]
    doc = json.loads((IAM / f"{name}-trust.json").read_text())
    IAMTrustPolicyDocumentValidator(json.dumps(doc)).validate()  # raises on a malformed trust policy
    (statement,) = doc["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(f":oidc-provider/{OIDC_PROVIDER}")
    condition = statement["Condition"]
    assert set(condition) == {"StringEquals"}, "exact subjects only, no StringLike wildcards"
    assert condition["StringEquals"][f"{OIDC_PROVIDER}:aud"] == "sts.amazonaws.com"
    subject = expected_subject(name, job)
    # GitHub's classic and immutable (owner/repo ids) subject formats, nothing else.
    assert condition["StringEquals"][f"{OIDC_PROVIDER}:sub"] == [
        f"repo:OWNER/REPO:{subject}",
        f"repo:OWNER@OWNER_ID/REPO@REPO_ID:{subject}",
    ]


def test_every_role_assuming_workflow_has_a_trust_policy_and_no_other_exists():
    assert {p.name for p in IAM.glob("*-trust.json")} == {f"{n}-trust.json" for n, _ in role_jobs()}
    subjects = [expected_subject(n, j) for n, j in role_jobs()]
    assert len(set(subjects)) == len(subjects), "each role is assumable from one workflow only"


def test_trust_policies_create_roles_in_moto(aws_credentials):
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_open_id_connect_provider(
            Url=f"https://{OIDC_PROVIDER}", ClientIDList=["sts.amazonaws.com"], ThumbprintList=["0" * 40]
        )
        for path in sorted(IAM.glob("*-trust.json")):
            role = iam.create_role(
                RoleName=f"trainstack-{path.stem}", AssumeRolePolicyDocument=path.read_text(), MaxSessionDuration=21600
            )
            assert role["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Action"] == "sts:AssumeRoleWithWebIdentity"


def test_the_preview_role_permissions_are_valid_and_read_only():
    """What `pulumi preview` of the example stacks needs: the program's lookups, the stack state and
    the state key. Nothing that creates, changes or deletes cloud resources, and no data-lake reads."""
    text = (IAM / "preview-permissions.json").read_text()
    IAMPolicyDocumentValidator(text).validate()
    findings = {(f.issue, json.dumps(f.detail)) for f in analyze_policy_string(text).findings}
    # parliament's action database predates kms:ResourceAliases (AWS KMS ABAC by alias, 2021).
    assert {issue for issue, detail in findings} <= {"UNKNOWN_CONDITION_FOR_ACTION"}
    assert all("kms:ResourceAliases" in detail for _, detail in findings)
    actions = {
        a
        for st in json.loads(text)["Statement"]
        for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
    }
    writes = {a for a in actions if not re.match(r"^[a-z0-9]+:(Describe|Get|List)", a)}
    assert writes == {"s3:PutObject", "kms:Encrypt", "kms:Decrypt"}  # stack state and its secrets only
    state_writes = [st for st in json.loads(text)["Statement"] if "s3:PutObject" in st["Action"]]
    assert [st["Resource"] for st in state_writes] == ["arn:aws:s3:::trainstack-state-111122223333/.pulumi/*"]
