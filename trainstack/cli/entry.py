"""The `trainstack` console script: `trainstack plan ...` is parsed without typer (`trainstack.cli.plan.main`,
see there why); every other command line goes to the typer app."""

from __future__ import annotations

import gc
import sys


def main() -> None:
    if sys.argv[1:2] == ["plan"]:
        # A plan is one short process that allocates a few hundred thousand long-lived objects (pulumi_aws's
        # modules and types, the program's resources) and frees little before it exits: the cyclic collector
        # would only re-scan them, in full collections that cost a quarter of a plan's CPU beyond its imports
        # (and that many again at interpreter exit). So a plan runs with the collector off, and at the end every
        # object is frozen (gc.freeze: kept out of the exit-time collections). Its peak memory grows by ~2 MB
        # (scripts/bench.py measures the plan's CPU).
        gc.disable()
        # The dataclasses the plan imports get their methods' compiled code from the last plan
        # (trainstack/cli/dataclass_code.py).
        from trainstack.cli import dataclass_code

        compiled = dataclass_code.install()
        try:
            from trainstack.cli.plan import main as plan

            plan(sys.argv[2:])
        finally:
            if compiled is not None:
                compiled.save()
            gc.freeze()
    else:
        from trainstack.cli.main import main as app

        app()


if __name__ == "__main__":
    main()
