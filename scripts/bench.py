"""`make bench`: CPU time of `trainstack plan STACK` per example stack over its own import floor, like for like.

A stack's import floor is what any offline evaluation of it must pay: starting Python, importing
pulumi and pulumi_aws and touching the SDK modules of the resource types the stack registers and the
functions it invokes (`aws:ecs/cluster:Cluster` -> `pulumi_aws.ecs.Cluster`, `kubernetes:core/v1:Namespace`
-> `pulumi_kubernetes.core.v1.Namespace`). Nothing else: not the CLI (click, rich), not YAML, not botocore.

`trainstack plan` runs with the cyclic garbage collector off and freezes its objects before exiting
(trainstack/cli/entry.py). The floor process runs under the same collector settings, so the ratio is what
the plan costs beyond its imports, like for like; that ratio is the gate. The floor with Python's default
collector (whose collections during the imports and at exit are about a third of its CPU) is measured in the
same pairs and its ratio printed for reference only.

Each stack is measured in paired runs in fresh processes, floor and plan alternated, CPU time (user +
sys, from the children's rusage) rather than wall time, so a busy machine slows both sides of a pair
alike; the figure is the median of the per-pair ratios. Above the target (1.3x) the bench fails. One
unmeasured plan first warms what any second plan finds: the page cache, .pyc files, the platform outputs
(trainstack/plan/platform_cache.py) and the compiled dataclass methods (trainstack/cli/dataclass_code.py).

Then the slowest stack is profiled (a sampling profiler in a process that first loads its floor, so only
what the plan costs beyond the floor is seen) and its top three costs are printed, each named by what
it is (`import botocore`, `policy pack`, `program: EcsTrainingCluster`, ...), so a regression names its cause.

    python scripts/bench.py [--runs N] [--target X] [STACK ...]
"""

from __future__ import annotations

import argparse
import collections
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.3
# Nine pairs: with five, the median ratio of one commit moved by ±0.15 between runs on this 2-core machine (the
# floor's CPU alone varied 0.51-0.63 s for dev-sagemaker), enough to flip a 1.3x verdict either way.
RUNS = 9
DETAIL = bool(os.environ.get("BENCH_DETAIL"))  # label each sample with its innermost function too


def _snake(name: str) -> str:
    import re

    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def floor_touches(types: list[str], invokes: list[str]) -> list[str]:
    """The SDK attributes a program registering `types` and calling `invokes` must load."""
    out: list[str] = []
    for token in [*types, *invokes]:
        parts = token.split(":")
        if len(parts) != 3:
            continue
        pkg, mod, member = parts
        if pkg == "pulumi" and mod == "providers":  # pulumi:providers:kubernetes -> the package's Provider
            out.append({"aws": "pulumi_aws", "kubernetes": "pulumi_kubernetes"}.get(member, "pulumi") + ".Provider")
            continue
        if pkg == "aws":
            module = mod.split("/")[0]
            attr = _snake(member) if member[:1].islower() else member  # getParameter -> get_parameter
            out.append("pulumi_aws." + (attr if module == "index" else f"{module}.{attr}"))
        elif pkg == "kubernetes":
            group, version = mod.split("/")
            out.append(f"pulumi_kubernetes.{group.split('.')[0]}.{version}.{member}")
    return sorted(set(out))


def floor_code(touches: list[str], *, plan_gc: bool = False) -> str:
    """The floor's program; with `plan_gc`, under the collector settings `trainstack plan` runs with."""
    packages = sorted({t.split(".")[0] for t in touches} | {"pulumi_aws"})
    lines = ["import pulumi, pulumi.runtime", *(f"import {p}" for p in packages)]
    lines += [t for t in touches]  # attribute access: loads the (lazily imported) SDK module
    if plan_gc:
        lines = ["import gc", "gc.disable()", *lines, "gc.freeze()"]
    return "\n".join(lines)


def stack_names() -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


def used_types(stacks: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    """stack -> (resource types registered, functions invoked), from one offline plan each."""
    from trainstack.plan.planner import plan

    out = {}
    for s in stacks:
        r = plan(s, ROOT)
        out[s] = (sorted({x.type for x in r.run.resources}), sorted({token for token, _ in r.run.invokes}))
    return out


def cpu_of(argv: list[str]) -> float:
    """User + sys CPU seconds of one run of `argv` (a fresh process; its output discarded)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cpus"


# ---------------------------------------------------------------------------------------------
# Where the time beyond the floor goes: a sampling profiler in a process that loaded the floor first.

PHASES = [  # (path part, function or None for any) -> label; the innermost match names a non-import sample
    ("/typer/", None, "cli"),
    ("trainstack/cli/", None, "cli"),
    ("trainstack/plan/planner.py", "plan", "planner"),
    ("trainstack/plan/planner.py", "load_raw_config", "reading the stack file"),
    ("trainstack/plan/planner.py", "platform_outputs", "platform outputs (stack reference)"),
    ("trainstack/plan/platform_cache.py", None, "platform outputs (stack reference)"),
    ("trainstack/model/config/__init__.py", "parse_config", "config validation"),
    ("trainstack/plan/offline.py", "run_offline", "program: pulumi runtime"),
    ("trainstack/policies/offline.py", "check_plan", "policy pack"),
    ("trainstack/plan/provider_schema.py", "check", "provider-schema check"),
    ("trainstack/plan/planner.py", "_cost", "cost estimate"),
    ("trainstack/plan/planner.py", "timing", "timing estimate"),
    ("trainstack/plan/render.py", None, "render"),
    ("/botocore/", None, "botocore (service models, validation)"),
    ("/yaml/", None, "yaml parsing"),
]


def _module_label(name: str) -> str:
    parts = name.split(".")
    if parts[0] in ("pulumi_aws", "pulumi_kubernetes") and len(parts) > 1 and not parts[1].startswith("_"):
        return ".".join(parts[:2])
    if parts[0] == "trainstack":
        return ".".join(parts[:3])
    return parts[0]


def classify(frames: list) -> str:
    """A label for one sample's stack (outermost frame first)."""
    ours = ("trainstack", "__main__")
    for f in frames:
        name = f.f_globals.get("__name__", "")
        if f.f_code.co_name == "<module>" and name.split(".")[0] not in ours and name != "__main__":
            return "import " + _module_label(name)
    modules = [f.f_globals.get("__name__", "") for f in frames if f.f_code.co_name == "<module>"]
    importing = [m for m in modules if m.startswith("trainstack.")]
    if importing:
        return "import " + _module_label(importing[-1])
    label = "other"
    plans = 0
    for f in frames:
        path = f.f_code.co_filename.replace(os.sep, "/")
        if path.endswith("trainstack/plan/planner.py") and f.f_code.co_name == "plan":
            plans += 1
            if plans == 2:  # a cluster plan evaluating its platform stack
                return "platform stack evaluation (stack reference)"
        if "/components/" in path and f.f_code.co_name == "__init__" and label.startswith("program"):
            cls = f.f_locals.get("self")
            return f"program: {type(cls).__name__}" if cls is not None else label
        for part, func, name in PHASES:
            if part in path and (func is None or f.f_code.co_name == func):
                label = name
    return label


def profile(stack: str, touches: list[str], interval: float = 0.001) -> dict[str, float]:
    """CPU seconds beyond the floor per label, for one `trainstack plan STACK` in this process."""
    exec(floor_code(touches, plan_gc=True), {})
    main = threading.main_thread().ident
    assert main is not None
    counts: collections.Counter[str] = collections.Counter()
    done = threading.Event()

    def sampler() -> None:
        while not done.is_set():
            frame = sys._current_frames().get(main)
            stack_: list = []
            while frame is not None:
                stack_.append(frame)
                frame = frame.f_back
            label = classify(stack_[::-1])
            if DETAIL and stack_:
                inner = stack_[0]
                label += f" @ {inner.f_code.co_filename.rsplit('/', 2)[-2:]}:{inner.f_code.co_name}"
            counts[label] += 1
            time.sleep(interval)

    sys.setswitchinterval(interval)
    thread = threading.Thread(target=sampler, daemon=True)
    started = time.process_time()
    thread.start()
    devnull = open(os.devnull, "w")
    real_stdout, sys.stdout = sys.stdout, devnull
    sys.argv = ["trainstack", "plan", stack]
    try:
        from trainstack.cli.entry import main as trainstack

        trainstack()  # what the console script runs
    except SystemExit:
        pass
    finally:
        sys.stdout = real_stdout
        done.set()
        thread.join()
    spent = time.process_time() - started
    total = sum(counts.values()) or 1
    return {label: spent * n / total for label, n in counts.most_common()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("stacks", nargs="*", help="stacks to measure (default: every example stack)")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", RUNS)), help="pairs per stack")
    ap.add_argument("--target", type=float, default=TARGET, help="the highest plan/floor ratio that passes")
    ap.add_argument("--profile", metavar="STACK", help=argparse.SUPPRESS)  # the child of the profiling step
    ap.add_argument("--touches", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.profile:
        print(json.dumps(profile(args.profile, [t for t in args.touches.split(",") if t])))
        return 0

    stacks = args.stacks or stack_names()
    # Byte-compiled, as an installed wheel or any run that may write `__pycache__` has it (this
    # environment may set PYTHONDONTWRITEBYTECODE, which would make every run compile the package anew).
    for folder in ("trainstack", "components", "scripts"):
        compileall.compile_dir(str(ROOT / folder), quiet=1)
    print(f"trainstack plan vs its import floor, CPU seconds (user+sys), median of {args.runs} paired runs")
    print("  the gate: the floor under the plan's collector settings (gc off, frozen at exit), like for like;")
    print("  in brackets, for reference: the floor under Python's default collector")
    print(f"start: {load()}")
    types = used_types(stacks)
    trainstack = str(Path(sys.executable).with_name("trainstack"))
    rows = []
    for stack in stacks:
        touches = floor_touches(*types[stack])
        floor_argv = [sys.executable, "-c", floor_code(touches, plan_gc=True)]
        default_argv = [sys.executable, "-c", floor_code(touches)]
        plan_argv = [trainstack, "plan", stack]
        cpu_of(floor_argv), cpu_of(plan_argv)  # warm-up (see the module docstring)
        floors: list[float] = []
        plans: list[float] = []
        defaults: list[float] = []
        ratios: list[float] = []
        default_ratios: list[float] = []
        for i in range(args.runs):
            order = [(floor_argv, floors), (plan_argv, plans), (default_argv, defaults)]
            for argv_, into in order if i % 2 == 0 else order[::-1]:
                into.append(cpu_of(argv_))
            ratios.append(plans[-1] / floors[-1])
            default_ratios.append(plans[-1] / defaults[-1])
        row = (stack, statistics.median(floors), statistics.median(plans), statistics.median(ratios), touches)
        rows.append(row)
        verdict = "ok" if row[3] <= args.target else "OVER"
        print(
            f"  {stack:<16} floor {row[1]:5.2f}s  plan {row[2]:5.2f}s  = {row[3]:.2f}x  {verdict:<4}"
            f"  (default-GC floor {statistics.median(defaults):5.2f}s: {statistics.median(default_ratios):.2f}x)",
            flush=True,
        )
    worst = max(rows, key=lambda r: r[3])
    print(f"end: {load()}")
    print(f"worst: {worst[0]} {worst[3]:.2f}x its floor (target <= {args.target}x)")
    out = subprocess.run(
        [sys.executable, __file__, "--profile", worst[0], "--touches", ",".join(worst[4])],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    costs = json.loads(out.strip().splitlines()[-1])
    beyond = sum(costs.values())
    print(f"top costs of {worst[0]} beyond its floor ({beyond:.2f}s CPU sampled, one run):")
    for label, seconds in list(costs.items())[:3]:
        print(f"  {seconds:5.2f}s  {100 * seconds / beyond:3.0f}%  {label}")
    if worst[3] > args.target:
        print(f"FAIL: {worst[0]} plans at {worst[3]:.2f}x its floor, over the target {args.target}x")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
