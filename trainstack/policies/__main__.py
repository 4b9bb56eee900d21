"""Entry point of the policy pack: `pulumi preview --policy-pack trainstack/policies` runs this file.

Only here is the `PolicyPack` built: its constructor starts the gRPC server the engine talks to
and never returns. The rules live in `rules.py` beside it, importable without a server.
"""

import sys
from pathlib import Path

# The CLI runs this file by path (runpy), with `trainstack/policies/` on sys.path; the repo root makes
# `trainstack.policies.rules` importable even without the editable install.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi_policy import PolicyPack  # noqa: E402

from trainstack.policies.rules import pack_args  # noqa: E402

PolicyPack(**pack_args())
