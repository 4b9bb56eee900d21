"""The backend contract (see registry)."""
