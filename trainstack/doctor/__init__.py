"""`trainstack doctor`: prove a real AWS account is ready for a stack before any money is spent.

A tool layer like plan/run/fleet: it reads the stack's offline plan (trainstack.plan) and the backend
declarations (trainstack.backends), calls AWS with boto3, and never imports components or programs.
One module per check family (identity, pulumi_backend, platform, quotas, capacity, images, permissions,
eks); `runner.diagnose` runs them concurrently; `probes` settles with throwaway resources what only a
real call can.
"""
