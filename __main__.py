"""trainstack: `pulumi up` entry point. All logic lives in programs/ (stack programs), components/ (ComponentResources) and trainstack/ (pure model)."""

from programs.program import main

main()
