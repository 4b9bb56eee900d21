"""Scripts, installed as `trainstack.scripts`: what runs on an EC2 node (`ec2_bootstrap.py`, shipped in
its user data) and the plan benchmark (`bench.py`). Nothing here is imported by the tool at run time."""
