"""The stack programs: platform and cluster, and the backends a cluster plugs in."""
