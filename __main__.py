"""trainstack: `pulumi up` entry point. All logic lives in components/ (see components/program.py)."""

from components.program import main

main()
