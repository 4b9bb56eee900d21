"""`trainstack plan` output that is not a terminal is made without rich (trainstack/plan/render.py `plain_text`):
it must be what rich prints there, byte for byte, or not be used at all (None: rich draws the plan)."""

from __future__ import annotations

import copy
import io
import re
import sys

import pytest
from rich.console import Console

from tests.helpers import STACKS
from trainstack.plan.render import plain_text, plain_width, render
from trainstack.run.ui import console


def by_rich(result, width: int, monkeypatch) -> str:
    """What `trainstack plan` printed with rich alone: trainstack.run.ui.console on a file, COLUMNS=width."""
    monkeypatch.setenv("COLUMNS", str(width))
    out = io.StringIO()
    render(result, console(file=out))
    return out.getvalue()


@pytest.mark.parametrize("width", [80, 120, 200])
@pytest.mark.parametrize("stack", STACKS)
def test_every_example_plan_prints_what_rich_prints(example_plans, stack, width, monkeypatch):
    text = plain_text(example_plans[stack], width)
    assert text is not None  # the common case takes the plain path
    assert text == by_rich(example_plans[stack], width, monkeypatch)


def test_a_console_too_narrow_for_the_table_is_left_to_rich(example_plans, monkeypatch):
    """rich shrinks and wraps the columns of a table wider than the console: not done here."""
    result = example_plans["platform"]
    assert plain_text(result, 60) is None
    assert "┏" in by_rich(result, 60, monkeypatch)


def _edited(example_plans, change):
    result = copy.deepcopy(example_plans["dev-ecs"])
    change(result)
    return result


def _rename(result, old: str, new: str) -> None:
    for r in result.run.resources:
        if r.name == old:
            r.name = new


def test_off_a_terminal_a_long_label_and_the_title_are_printed_whole_by_both_renderers(example_plans, monkeypatch):
    """A CI log or a file keeps every tree line whole: rich alone cropped them at the console's width, which cut
    a cluster's `expires=` off its title at 80 columns."""
    long = "training-gpu-asg-" + "x" * 90
    result = _edited(example_plans, lambda r: _rename(r, "training-gpu-asg", long))
    text = plain_text(result, 80)
    assert text is not None
    (tree_line,) = [line for line in text.splitlines() if "── training-gpu-asg-x" in line]
    assert long + "  aws:autoscaling:Group" in tree_line and len(tree_line) > 100
    assert text.splitlines()[0].endswith(f"expires={result.config.cluster.expires_at_iso}")
    assert text == by_rich(result, 80, monkeypatch)


def test_on_a_terminal_rich_still_wraps_the_tree_at_the_console_width(example_plans):
    out = io.StringIO()
    render(example_plans["dev-ec2"], Console(file=out, width=60, force_terminal=True, color_system=None))
    assert max(len(line) for line in out.getvalue().splitlines()[:20]) <= 60


def test_a_warning_is_printed_as_rich_prints_it(example_plans, monkeypatch):
    result = _edited(example_plans, lambda r: r.run.logs.append(("WARNING", "trainstack:gpu.spot = false: pay more")))
    text = plain_text(result, 80)
    assert text is not None and "warning: trainstack:gpu.spot = false: pay more\n" in text
    assert text == by_rich(result, 80, monkeypatch)


@pytest.mark.parametrize(
    "change",
    [
        # rich reads brackets as markup (this one it drops), and :name: as an emoji (this one is 🆗)
        lambda r: r.run.logs.append(("WARNING", "types [bold] and [p3.2xlarge]")),
        lambda r: _rename(r, "training-gpu-asg", "gpu:ok:asg"),
        lambda r: _rename(r, "training-gpu-asg", "gpu-asg-ü"),  # wide and combining characters: rich's cell widths
    ],
    ids=["markup", "emoji", "non-ascii"],
)
def test_text_rich_would_change_is_left_to_rich(example_plans, change, monkeypatch):
    result = _edited(example_plans, change)
    assert plain_text(result, 80) is None
    by_rich(result, 80, monkeypatch)  # and rich draws it


def test_policy_violations_are_left_to_rich(example_plans):
    from trainstack.policies.offline import Violation

    def violate(result):
        v = Violation("required-tags", "mandatory", "training-cluster", "aws:ecs/cluster:Cluster", "urn", "Fix: tag it")
        result.policy.violations.append(v)

    assert plain_text(_edited(example_plans, violate), 80) is None


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"COLUMNS": "123"},
        {"COLUMNS": "0"},
        {"FORCE_COLOR": "1"},
        {"FORCE_COLOR": ""},
        {"TTY_COMPATIBLE": "0"},
        {"TTY_COMPATIBLE": "1"},
    ],
    ids=repr,
)
def test_the_plain_path_is_taken_exactly_where_rich_prints_no_styles(env, monkeypatch):
    """plain_width: None where rich's console on stdout would be a terminal (styles), else rich's width."""
    for key in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR", "TTY_INTERACTIVE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    rich_console = Console()
    expected = None if rich_console.is_terminal or rich_console.color_system else rich_console.width
    assert plain_width() == expected


def test_the_names_plain_text_needs_no_emoji_lookup_for_are_no_emoji_names_in_rich(example_plans):
    """render.py skips rich's emoji table for the names between the colons of resource types (`aws:s3:Bucket`):
    none may be a name rich turns into an emoji (rich/_emoji_codes.py), with or without its -emoji/-text suffix,
    and every name an example plan prints between colons is one of them."""
    from rich._emoji_codes import EMOJI

    from trainstack.plan import render

    assert not {n for n in render._NOT_EMOJI for v in ("", "-emoji", "-text") if n + v in EMOJI}
    assert "ok" in EMOJI and "ok" not in render._NOT_EMOJI  # the table is rich's, and the look-up still happens
    printed = set()
    for stack in STACKS:
        for line in (plain_text(example_plans[stack], 200) or "").splitlines():
            printed |= {m.group(1).lower() for m in re.finditer(r"(?=:(\S*?):)", line)}
    assert printed and printed <= render._NOT_EMOJI, printed - render._NOT_EMOJI
