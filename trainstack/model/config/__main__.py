"""`python -m trainstack.model.config [--check] [--root DIR]` (`make config-docs`): write the `config:` schema
at the end of Pulumi.yaml and docs/configuration.md from the config table, or with --check only say which
of them is out of date (exit 1)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trainstack.model.config.generate import configuration_md, with_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainstack.model.config", description=__doc__)
    parser.add_argument("--root", default=".", help="the project folder (holding Pulumi.yaml); default: here")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    root = Path(args.root)
    project = root / "Pulumi.yaml"
    if not project.exists():
        parser.error(f"{project} not found: pass the project folder with --root")
    wanted = {project: with_config(project.read_text()), root / "docs" / "configuration.md": configuration_md()}
    stale = {path: text for path, text in wanted.items() if not path.exists() or path.read_text() != text}
    for path, text in stale.items():
        if args.check:
            print(f"{path} is out of date: run `make config-docs`", file=sys.stderr)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
