"""`trainstack plan` is parsed by click alone (trainstack.cli.plan.command), every other command by the typer
app (trainstack.cli.main.app), which keeps its own `plan` command. Both must take the same command lines to
the same call, refuse the same ones, and report a failing plan with the same message and exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner as ClickRunner
from typer.testing import CliRunner as TyperRunner

from tests.cli.test_errors import CASES, isolate, prepare
from trainstack.cli import plan as plan_cli
from trainstack.cli.main import app

COMMAND_LINES = [
    [],
    ["dev-ecs"],
    ["dev-ecs", "--json"],
    ["--json", "dev-ecs"],
    ["dev-ecs", "--format", "mermaid"],
    ["dev-ecs", "--format=dot"],
    ["--format", "png", "dev-ecs"],  # parsed; plan_command refuses the value
    ["dev-ecs", "--root", "/tmp/p"],
    ["--root=/tmp/p", "--live-prices", "--json", "dev-eks"],
    ["--", "dev-ecs"],
    # usage errors: both refuse them before planning, exit 2
    ["a", "b"],
    ["--nope"],
    ["dev-ecs", "--format"],
    ["dev-ecs", "--root"],
    ["--json=yes"],
    ["--debug", "dev-ecs"],  # --debug belongs before the command (`trainstack --debug plan`)
    # plain command lines the console script reads without click (trainstack.cli.plan.simple_args)
    ["--live-prices", "dev-eks", "--json", "--json"],
    ["--format=text", "--root", "/tmp/p", "platform-eks"],
    ["dev-ecs", "--root="],  # an empty value: left to click
    ["dev-ecs", "--format", "--json"],  # a value like an option: left to click
    ["dev-ecs", "--format", "dot", "--format", "mermaid"],  # an option twice: left to click
    ["-h"],
    ["--help"],
]


def _calls(monkeypatch) -> list[dict]:
    calls: list[dict] = []

    def record(stack, **kw):
        calls.append({"stack": stack, **kw})
        return 0

    monkeypatch.setattr(plan_cli, "plan_command", record)
    return calls


@pytest.mark.parametrize("args", COMMAND_LINES, ids=lambda a: " ".join(a) or "(none)")
def test_click_and_typer_parse_every_plan_command_line_alike(args, monkeypatch):
    calls = _calls(monkeypatch)
    by_typer = TyperRunner().invoke(app, ["plan", *args])
    typer_calls = list(calls)
    calls.clear()
    by_click = ClickRunner().invoke(plan_cli.command, args)
    assert (by_click.exit_code, calls) == (by_typer.exit_code, typer_calls), (by_click.output, by_typer.output)
    simple = plan_cli.simple_args(args)
    if simple is not None:  # what the console script reads without click: the very call click makes
        assert by_click.exit_code == 0 and calls == [simple], (args, simple)
    if by_typer.exit_code == 2:  # a usage error names the offending option or argument in both
        assert not calls and "Error" in by_click.output and "Error" in by_typer.output


def test_plain_command_lines_are_read_without_click_and_the_rest_by_click():
    plain = [args for args in COMMAND_LINES if plan_cli.simple_args(args) is not None]
    assert plain == [
        [],
        ["dev-ecs"],
        ["dev-ecs", "--json"],
        ["--json", "dev-ecs"],
        ["dev-ecs", "--format", "mermaid"],
        ["dev-ecs", "--format=dot"],
        ["--format", "png", "dev-ecs"],
        ["dev-ecs", "--root", "/tmp/p"],
        ["--root=/tmp/p", "--live-prices", "--json", "dev-eks"],
        ["--live-prices", "dev-eks", "--json", "--json"],
        ["--format=text", "--root", "/tmp/p", "platform-eks"],
    ]


def test_both_helps_name_the_same_options():
    by_typer = TyperRunner().invoke(app, ["plan", "--help"], terminal_width=400).output
    by_click = ClickRunner().invoke(plan_cli.command, ["--help"], terminal_width=400).output
    for text in ("STACK", "--json", "--root", "--format", "--live-prices", plan_cli.HELP.split(":")[0]):
        assert text in by_typer and text in by_click, text


PLAN_CASES = [c for c in CASES if c.args[0] == "plan"]


@pytest.mark.parametrize("case", PLAN_CASES, ids=[c.id for c in PLAN_CASES])
def test_a_failing_plan_is_reported_as_the_app_reports_it(case, tmp_path, monkeypatch, request):
    """tests/cli/test_errors.py's plan cases, through the click command (the console script's path)."""
    env, args = prepare(case, tmp_path, request)
    isolate(monkeypatch, env)
    result = ClickRunner().invoke(plan_cli.command, args[1:])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and result.exit_code == case.code, result.output
    message = result.stderr
    assert message.startswith("error: ") and message.count("error: ") == 1, message
    for part in case.says:
        assert part in message, message
    as_json = ClickRunner().invoke(plan_cli.command, [*args[1:], "--json"])
    assert as_json.exit_code == case.code and '"ok": false' in as_json.stdout and not as_json.stderr


def test_the_console_script_plans_without_typer(tmp_path):
    """What makes `trainstack plan` start fast: neither typer nor pydantic (nor click, for a plain command line)
    is imported on its path, and the plan runs without the cyclic garbage collector, its objects frozen at the
    end (trainstack/cli/entry.py)."""
    code = (
        "import gc, sys; from trainstack.cli.entry import main\n"
        "sys.argv = ['trainstack', 'plan', 'nope']\n"
        "try:\n    main()\nexcept SystemExit as e:\n"
        "    print(e.code, *(m in sys.modules for m in ('typer', 'pydantic', 'click')), gc.isenabled(),\n"
        "          gc.get_freeze_count() > 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["2", "False", "False", "False", "False", "True"], proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: plan failed for stack nope: ") and "Traceback" not in proc.stderr
    exe = Path(sys.executable).parent / "trainstack"  # and the installed script is this entry point
    assert "trainstack.cli.entry" in exe.read_text()
