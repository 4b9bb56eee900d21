"""The GitHub Actions workflows: GitHub's schema, actionlint (with shellcheck), and our own rules.

Our rules are the ones a reviewer would otherwise have to remember: every `trainstack run` is
followed by an always-cleanup, OIDC tokens only where a role is assumed, forks never reach the
account, every action pinned to a commit SHA (with its version in a comment, kept current by
Dependabot) and the Pulumi CLI pinned, no secret or event text inside a shell script, each assumed
role has a trust policy conditioned on the workflow's OIDC subject, and a pull request's own code
reaches the account only through an approved environment, with a role that cannot write the stack
state (decided by the IAM engine, tests/iam/engine.py).
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

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
IAM = ROOT / ".github" / "iam"
BIN = Path(sys.executable).parent
FILES = sorted(WORKFLOWS.glob("*.yml"))
OIDC_PROVIDER = "token.actions.githubusercontent.com"
# Every action at a full commit SHA, its release in a comment (Dependabot moves both). The SHAs are the
# commits the releases' tags point at (each repository's tags read with git; the major tags v6/v7 the
# workflows used before point at the same commits). Current majors: node24 runtimes (actionlint flags
# node20 ones).
PINNED = {
    "actions/checkout": ("d23441a48e516b6c34aea4fa41551a30e30af803", "v6.1.0"),
    "actions/setup-python": ("ece7cb06caefa5fff74198d8649806c4678c61a1", "v6.3.0"),
    "actions/upload-artifact": ("b7c566a772e6b6bfb58ed0dc250532a479d7789f", "v6.0.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
    "pulumi/actions": ("8e5e406f4007fca908480587cb9893c07090f58d", "v7.0.0"),
}
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>\s+#.*)?$", re.M)
PINNED_USES = re.compile(r"(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})")
VERSION_COMMENT = re.compile(r"^\s+# (?P<version>v\d+\.\d+\.\d+)$")


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


def check_jsonschema(*args: str) -> tuple[int, str]:
    """check-jsonschema's command (its console script's click command, run in this process: the validation is the
    point, not the process; two interpreters cost ~1 s more): its exit code and output."""
    from check_jsonschema import main
    from click.testing import CliRunner

    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_workflows_match_githubs_workflow_schema():
    code, output = check_jsonschema("--builtin-schema", "vendor.github-workflows", *map(str, FILES))
    assert code == 0 and "ok -- validation done" in output, output


def test_the_schema_check_does_fail_on_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("name: broken\non: push\n")  # no jobs
    code, output = check_jsonschema("--builtin-schema", "vendor.github-workflows", str(broken))
    assert code == 1 and "'jobs' is a required property" in output, output


def at_major_tags(text: str) -> str:
    """`uses: a/b@<sha> # v6.1.0` -> `uses: a/b@v6`: actionlint knows popular actions' inputs by their
    major tag only, and checks nothing about an action pinned to a SHA."""
    return re.sub(r"@[0-9a-f]{40} # (v\d+)\.\d+\.\d+$", r"@\1", text, flags=re.M)


def actionlint(paths) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "actionlint"), f"-shellcheck={BIN / 'shellcheck'}", "-pyflakes=", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_actionlint_with_shellcheck_finds_nothing(tmp_path):
    out = actionlint(FILES)
    assert out.returncode == 0, out.stdout + out.stderr
    # Once more at the major tags, so the actions' inputs are checked too.
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    copies = [tmp_path / ".github" / "workflows" / p.name for p in FILES]
    for path, copy in zip(FILES, copies, strict=True):
        copy.write_text(at_major_tags(path.read_text()))
        assert "@v" in copy.read_text()
    out = actionlint(copies)
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
    # The same mistake behind a SHA pin is found only through the major-tag rewrite.
    pinned = tmp_path / "pinned.yml"
    sha, version = PINNED["pulumi/actions"]
    pinned.write_text(bad.read_text().replace("pulumi/actions@v7", f"pulumi/actions@{sha} # {version}"))
    assert "pulumi-version-fil" not in actionlint([pinned]).stdout
    pinned.write_text(at_major_tags(pinned.read_text()))
    assert "pulumi-version-fil" in actionlint([pinned]).stdout


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


def test_every_pull_request_gets_the_offline_plans_without_any_credentials():
    wf = workflow("preview")
    plan = wf["jobs"]["plan"]
    assert list(wf["on"]) == ["pull_request"]  # never pull_request_target: that would hand forks a token
    assert plan.get("permissions") == {"contents": "read"} and "environment" not in plan and "if" not in plan
    assert not assumes_role(plan)
    assert any(s.get("run") == "make plans" for s in plan["steps"])  # `trainstack plan` of every stack file


def test_the_real_preview_needs_the_plans_a_same_repository_pr_and_an_approved_environment():
    wf = workflow("preview")
    job = wf["jobs"]["preview"]
    assert job["needs"] == "plan"
    assert job["if"].replace(" ", "") == "github.event.pull_request.head.repo.full_name==github.repository"
    # The role trusts only this environment's subject (test_each_role_trusts_only_its_workflows_oidc_subject):
    # no approval, no job, no token.
    assert job["environment"] == "preview"
    assert wf["concurrency"]["cancel-in-progress"] is True


def test_preview_covers_every_example_stack_with_the_policy_pack_and_creates_no_stack():
    job = workflow("preview")["jobs"]["preview"]
    stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
    assert sorted(job["strategy"]["matrix"]["stack"]) == stacks
    pulumi = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@"))["with"]
    assert pulumi["command"] == "preview" and pulumi["policyPacks"] == "trainstack/policies"
    assert pulumi["comment-on-pr"] is True and pulumi["stack-name"].startswith("organization/trainstack/")
    # `upsert` would write a new stack file into the state: the role may not, and the stacks exist.
    assert "upsert" not in pulumi


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


def unpinned(text: str) -> list[str]:
    """Each `uses:` of a workflow's text that is not a third-party action at a full commit SHA with its
    release in a comment (local actions, `./...`, are the repository's own code)."""
    bad = []
    for m in USES.finditer(text):
        ref = m.group("ref").strip("\"'")
        if ref.startswith("./"):
            continue
        if not (PINNED_USES.fullmatch(ref) and VERSION_COMMENT.match(m.group("comment") or "")):
            bad.append(m.group(0).strip())
    return bad


def test_the_pin_check_catches_tags_branches_short_shas_and_missing_versions():
    sha = "0" * 40
    text = (
        "steps:\n"
        "  - uses: actions/checkout@v6\n"
        "  - uses: actions/checkout@main\n"
        "  - uses: actions/checkout@d23441a\n"
        f"  - uses: actions/checkout@{sha}\n"
        f"  - uses: actions/checkout@{sha} # latest\n"
        "  - uses: docker://alpine:3\n"
        f"  - uses: actions/checkout@{sha} # v6.1.0\n"
        "  - uses: ./.github/actions/local\n"
    )
    assert len(unpinned(text)) == 6


def test_every_action_is_pinned_to_a_commit_sha_with_its_version():
    for path in FILES:
        text = path.read_text()
        assert unpinned(text) == [], f"{path.name}: not pinned to a commit SHA with a # vX.Y.Z comment"
        for m in USES.finditer(text):
            pin = PINNED_USES.fullmatch(m.group("ref"))
            version = VERSION_COMMENT.match(m.group("comment")).group("version")
            # One pin per action across the workflows, and the comment names the release of that commit.
            assert PINNED.get(pin.group("action")) == (pin.group("sha"), version), f"{path.name}: {m.group(0)}"
    used = {PINNED_USES.fullmatch(m.group("ref")).group("action") for p in FILES for m in USES.finditer(p.read_text())}
    assert used == set(PINNED)


def test_the_pulumi_cli_is_pinned():
    for name, job_id, job in jobs():
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith("pulumi/actions@"):
                assert step["with"]["pulumi-version-file"] == ".pulumi-version", f"{name}/{job_id}"
    pulumi_pin = re.search(r'"pulumi==([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert (ROOT / ".pulumi-version").read_text().strip() == pulumi_pin == "3.272.0"


# ---------------------------------------------------------------------------------------------
# Dependabot keeps the pins current


DEPENDABOT = ROOT / ".github" / "dependabot.yml"


def test_dependabot_config_matches_its_schema():
    code, output = check_jsonschema("--builtin-schema", "vendor.dependabot", str(DEPENDABOT))
    assert code == 0 and "ok -- validation done" in output, output


def test_dependabot_watches_the_actions_the_python_pins_and_every_npm_lock():
    updates = yaml.safe_load(DEPENDABOT.read_text())["updates"]

    def dirs(ecosystem: str) -> set[str]:
        (u,) = [u for u in updates if u["package-ecosystem"] == ecosystem]
        assert u["schedule"]["interval"] in ("daily", "weekly")
        return set(u.get("directories") or [u["directory"]])

    assert dirs("github-actions") == {"/"}  # .github/workflows
    assert dirs("pip") == {"/"} and (ROOT / "pyproject.toml").exists() and (ROOT / "constraints.txt").exists()
    tracked = subprocess.run(["git", "ls-files", "*package.json"], cwd=ROOT, capture_output=True, text=True).stdout
    manifests = {"/" + str(Path(p).parent) for p in tracked.split()}
    assert manifests and dirs("npm") == manifests  # tests/mermaid, tests/iam
    assert all((ROOT / d.lstrip("/") / "package-lock.json").exists() for d in manifests)
    (pip,) = [u for u in updates if u["package-ecosystem"] == "pip"]
    # boto3 and botocore pin each other: one pull request moves both
    assert {"boto3", "botocore"} <= set(pip["groups"]["aws-sdk"]["patterns"])


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


STATE = "arn:aws:s3:::trainstack-state-111122223333"
DOC_ACCOUNT = "111122223333"  # the account the documents in .github/iam/ are written for


def test_the_preview_role_permissions_are_valid():
    from parliament import analyze_policy_string  # here, not at the top: 0.3 s of every collection

    text = (IAM / "preview-permissions.json").read_text()
    IAMPolicyDocumentValidator(text).validate()
    findings = {(f.issue, json.dumps(f.detail)) for f in analyze_policy_string(text).findings}
    # parliament's action database predates kms:ResourceAliases (AWS KMS ABAC by alias, 2021).
    assert {issue for issue, detail in findings} <= {"UNKNOWN_CONDITION_FOR_ACTION"}
    assert all("kms:ResourceAliases" in detail for _, detail in findings)


def test_the_preview_role_reads_state_and_can_never_write_it():
    """What a `pulumi preview` of the example stacks does, decided by the IAM engine against the role's
    policy: the program's lookups, reading the state (a DIY-backend preview takes no lock and saves no
    checkpoint: pulumi pkg/backend/diy/backend.go, Preview -> apply with DryRun), the state key. Denied:
    any write or delete in the state bucket (locks and stack creation included), any other key, the data
    lake, anything that creates cloud resources."""
    from tests.iam.engine import ALLOWED, Request, evaluate

    policy = json.loads((IAM / "preview-permissions.json").read_text())
    role = f"arn:aws:iam::{DOC_ACCOUNT}:role/trainstack-preview"
    key = f"arn:aws:kms:us-east-1:{DOC_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

    # The state key's policy: AWS's default key policy, which lets IAM policies in the account decide
    # (a KMS key answers to its key policy first; the README's adoption steps create it so).
    key_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{DOC_ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }

    def request(label, action, resource, **context):
        return Request(
            label,
            role,
            action,
            resource,
            context,
            [policy],
            resource_policy=key_policy if action.startswith("kms:") else None,
            resource_account=DOC_ACCOUNT,
        )

    stack = f"{STATE}/.pulumi/stacks/trainstack/platform.json"
    allowed = [
        request("describe images", "ec2:DescribeImages", "*"),
        request("list the state", "s3:ListBucket", STATE),
        request("read the backend meta", "s3:GetObject", f"{STATE}/.pulumi/meta.yaml"),
        request("read a stack", "s3:GetObject", stack),
        request(
            "decrypt with the state key", "kms:Decrypt", key, **{"kms:ResourceAliases": ["alias/trainstack-state"]}
        ),
    ]
    denied = [
        request("overwrite a stack", "s3:PutObject", stack),
        request("create a stack", "s3:PutObject", f"{STATE}/.pulumi/stacks/trainstack/new.json"),
        request("delete a stack", "s3:DeleteObject", stack),
        request("delete an old version", "s3:DeleteObjectVersion", stack),
        request("write a lock", "s3:PutObject", f"{STATE}/.pulumi/locks/organization/trainstack/platform/x.json"),
        request("write history", "s3:PutObject", f"{STATE}/.pulumi/history/trainstack/platform/x.json"),
        request("replace the bucket policy", "s3:PutBucketPolicy", STATE),
        request("decrypt with another key", "kms:Decrypt", key, **{"kms:ResourceAliases": ["alias/other"]}),
        request(
            "grant on the state key", "kms:CreateGrant", key, **{"kms:ResourceAliases": ["alias/trainstack-state"]}
        ),
        request("read the data lake", "s3:GetObject", "arn:aws:s3:::trainstack-lake-111122223333/raw/x"),
        request(
            "launch an instance",
            "ec2:RunInstances",
            f"arn:aws:ec2:us-east-1:{DOC_ACCOUNT}:instance/i-0123456789abcdef0",
        ),
        request("pass a role", "iam:PassRole", f"arn:aws:iam::{DOC_ACCOUNT}:role/anything"),
    ]
    decisions = evaluate(allowed + denied)
    assert {r.label: decisions[r.label] for r in allowed} == {r.label: ALLOWED for r in allowed}
    assert {r.label for r in denied if decisions[r.label] == ALLOWED} == set()
    # State writes are denied explicitly: no other policy attached to the role can grant them back.
    assert decisions["overwrite a stack"] == decisions["write a lock"] == "ExplicitlyDenied"
