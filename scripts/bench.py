"""`make bench`: wall time of `trainstack plan` per example stack next to the import floor.

The floor is what any offline evaluation must pay: starting Python and importing pulumi plus the
pulumi_aws modules the program uses. Target: plan <= 2x the floor. Each figure is the median of
several runs in fresh processes.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
AWS_MODULES = [
    "ec2.Vpc",
    "s3.Bucket",
    "kms.Key",
    "iam.Role",
    "autoscaling.Group",
    "ecs.Cluster",
    "sagemaker.TrainingJob",
    "scheduler.Schedule",
    "cloudwatch.LogGroup",
    "glue.CatalogDatabase",
    "vpc.SecurityGroupIngressRule",
    "ssm.get_parameter",
]
FLOOR = "import pulumi, pulumi.runtime, pulumi_aws as a, yaml, rich; " + "; ".join(f"a.{m}" for m in AWS_MODULES)


def wall(argv: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
    floor = wall([sys.executable, "-c", FLOOR])
    trainstack = str(Path(sys.executable).with_name("trainstack"))
    print(f"floor (python + pulumi + the pulumi_aws modules used): {floor:.2f}s  (median of {RUNS})")
    worst = 0.0
    for stack in stacks:
        t = wall([trainstack, "plan", stack])
        worst = max(worst, t / floor)
        print(f"trainstack plan {stack:<16} {t:.2f}s  = {t / floor:.2f}x floor")
    print(f"worst: {worst:.2f}x floor (target <= 2x): {'ok' if worst <= 2 else 'OVER TARGET'}")
    return 0 if worst <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
