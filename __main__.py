"""trainstack: `pulumi up` entry point. The program is `trainstack/programs/` (stack programs), built from
`components/` (ComponentResources, installed as `trainstack.components`) and `trainstack/model/` (pure model)."""

from trainstack.programs.program import main

main()
