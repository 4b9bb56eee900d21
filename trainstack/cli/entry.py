"""The `trainstack` console script: `trainstack plan ...` is parsed by click alone
(`trainstack.cli.plan.command`, see there why); every other command line goes to the typer app."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["plan"]:
        from trainstack.cli.plan import command

        command.main(sys.argv[2:], prog_name="trainstack plan")
    else:
        from trainstack.cli.main import main as app

        app()


if __name__ == "__main__":
    main()
