"""AWS clients for the doctor: one session, bounded timeouts and retries, safe to share across threads.

botocore clients are thread-safe; sessions are not (boto3 docs, "Multithreading or multiprocessing
with clients"), so every client is made under a lock from one session and then shared by the checks
that run in the thread pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

# A doctor answers in seconds: a call that hangs is a failed check, not a stuck command.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 15
MAX_ATTEMPTS = 3  # botocore "standard" retry mode: the first call and two retries


def client_config() -> Any:
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        user_agent_extra="trainstack-doctor",
    )


class Aws:
    """Clients of one region (and `client(name, region)` for another), made once each."""

    def __init__(self, region: str, session: Any = None, factory: Callable[[str, str], Any] | None = None):
        self.region = region
        self._session = session
        self._factory = factory
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    @property
    def session(self) -> Any:
        if self._session is None:
            import boto3

            self._session = boto3.Session()
        return self._session

    def client(self, name: str, region: str | None = None) -> Any:
        key = (name, region or self.region)
        with self._lock:
            if key not in self._clients:
                if self._factory is not None:
                    self._clients[key] = self._factory(*key)
                else:
                    self._clients[key] = self.session.client(key[0], region_name=key[1], config=client_config())
            return self._clients[key]


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def is_access_denied(exc: BaseException) -> bool:
    code = error_code(exc)
    return code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError") or (
        "not authorized" in str(exc)
    )


def short_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
