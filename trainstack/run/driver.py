"""The Pulumi CLI under the Automation API, with the signal handling a one-command run needs.

- `TrackedPulumiCommand` runs the CLI exactly as the SDK's `PulumiCommand.run` does (same argv,
  `--non-interactive`, `PULUMI_AUTOMATION_API`, PATH fix-up) but in its own process session, with
  a handle on the live process. Ctrl-C in the terminal then reaches only the driver, which decides
  what the CLI gets: the SDK as is lets `KeyboardInterrupt` out of `stack.up()` after 0.25 s and
  orphans the CLI mid-cancel with closed pipes (the CLI dies on its next write, the lock stays).
- `Interrupts` is the escalation state machine (1st signal: forward one SIGINT, the CLI cancels
  after its in-flight steps; 2nd: forward again, the CLI exits at once; 3rd: give up waiting).
- `StackDriver` opens workspaces on the project (local program, `stackConfigDir` as under `pulumi up`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from pulumi import automation as auto
from pulumi.automation._cmd import CommandResult, _fixup_path
from pulumi.automation.errors import create_command_error
from semver import VersionInfo

from trainstack.errors import UserError
from trainstack.project import REPO_ROOT  # noqa: E402 - re-exported: the default --root

INSTALL_HINT = "curl -fsSL https://get.pulumi.com | sh -s -- --version {version}"
# Where every command finds the CLI: this directory's bin/pulumi, else `pulumi` on PATH.
PULUMI_ROOT_ENV = "TRAINSTACK_PULUMI_ROOT"


class CliMissingError(UserError):
    """No usable `pulumi` executable: one clear message, raised before anything runs (exit 2)."""


class GiveUp(BaseException):
    """Third interrupt: stop waiting for anything and exit (BaseException: nothing may swallow it)."""


def required_version(root: Path = REPO_ROOT) -> str:
    path = root / ".pulumi-version"
    return path.read_text().strip().lstrip("v") if path.exists() else "3.272.0"


class TrackedPulumiCommand(auto.PulumiCommand):
    """`PulumiCommand` whose child runs in its own session and can be signalled by the driver."""

    def __init__(
        self, root: Optional[str] = None, version: Optional[VersionInfo] = None, skip_version_check: bool = False
    ):
        super().__init__(root=root, version=version, skip_version_check=skip_version_check)
        self.process: subprocess.Popen | None = None
        self.last_process: subprocess.Popen | None = None  # outlives the call (an abandoned CLI keeps running)
        self._lock = threading.Lock()
        self.argv_log: list[list[str]] = []  # every argv run, for transcripts

    def send_interrupt(self) -> bool:
        """Forward one SIGINT to the live CLI; False when none is running."""
        with self._lock:
            proc = self.process
        if proc is None or proc.poll() is not None:
            return False
        try:
            proc.send_signal(signal.SIGINT)
        except ProcessLookupError:
            return False
        return True

    def run(
        self,
        args: list[str],
        cwd: str,
        additional_env: Mapping[str, str],
        on_output: Optional[Callable[[str], Any]] = None,
        on_error: Optional[Callable[[str], Any]] = None,
    ) -> CommandResult:
        # Same argv and environment as PulumiCommand.run (pulumi 3.272.0, automation/_cmd.py).
        sep_index = args.index("--") if "--" in args else len(args)
        if "--non-interactive" not in args[:sep_index]:
            args.insert(0, "--non-interactive")
        env = {**os.environ, **additional_env, "PULUMI_AUTOMATION_API": "true"}
        if os.path.isabs(self.command):
            env = _fixup_path(env, os.path.dirname(self.command))
        cmd = [self.command, *args]
        self.argv_log.append(list(args))
        stdout_chunks: list[str] = []
        stderr_chunks: list[str] = []

        def consumer(stream, callback, chunks):
            for line in iter(stream.readline, ""):
                stripped = line.rstrip()
                if callback:
                    callback(stripped)
                chunks.append(stripped)
            stream.close()

        process = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            encoding="utf-8",
            start_new_session=True,
        )
        with self._lock:
            self.process = self.last_process = process
        readers = [
            threading.Thread(target=consumer, args=(process.stdout, on_output, stdout_chunks), daemon=True),
            threading.Thread(target=consumer, args=(process.stderr, on_error, stderr_chunks), daemon=True),
        ]
        for t in readers:
            t.start()
        try:
            # Signal handlers run between these waits; only GiveUp escapes them.
            for t in readers:
                t.join()
            code = process.wait()
        finally:
            with self._lock:
                self.process = None
        result = CommandResult(stderr="\n".join(stderr_chunks), stdout="\n".join(stdout_chunks), code=code)
        if code != 0:
            raise create_command_error(result)
        return result


def pulumi_command(root: str | None = None, *, project_root: Path = REPO_ROOT) -> TrackedPulumiCommand:
    """The CLI every command uses: `root`/bin/pulumi, else $TRAINSTACK_PULUMI_ROOT/bin/pulumi, else `pulumi`
    on PATH; at least `.pulumi-version`, or CliMissingError naming what was looked for and how to install it."""
    import shutil

    need = required_version(project_root)
    root = root or os.environ.get(PULUMI_ROOT_ENV) or None
    where = os.path.join(root, "bin", "pulumi") if root else shutil.which("pulumi")
    if not where or not os.path.exists(where):
        looked = f"no {where} (--pulumi-root / ${PULUMI_ROOT_ENV})" if root else "no `pulumi` on PATH"
        raise CliMissingError(
            f"the Pulumi CLI is not installed ({looked}); trainstack needs version {need} or newer "
            f"(.pulumi-version). Install it with: {INSTALL_HINT.format(version=need)}"
        )
    try:
        return TrackedPulumiCommand(root=root, version=VersionInfo.parse(need))
    except auto.InvalidVersionError as exc:
        raise CliMissingError(
            f"{exc} trainstack needs Pulumi CLI {need} or newer (.pulumi-version): {INSTALL_HINT.format(version=need)}"
        ) from None
    except (OSError, subprocess.CalledProcessError) as exc:
        raise CliMissingError(
            f"`{where} version` failed ({exc}); reinstall the Pulumi CLI {need}: {INSTALL_HINT.format(version=need)}"
        ) from None


class Interrupts:
    """SIGINT/SIGTERM escalation. Counts signals, forwards the first two to the live CLI,
    raises `GiveUp` on the third. The run loop reads `count` at every phase boundary."""

    def __init__(self, command: TrackedPulumiCommand | None, on_signal: Callable[[int], None] | None = None):
        self.command = command
        self.count = 0
        self.event = threading.Event()
        self._on_signal = on_signal
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        self.event.set()
        if self._on_signal:
            self._on_signal(self.count)
        if self.count >= 3:
            raise GiveUp()
        if self.command is not None:
            self.command.send_interrupt()

    @property
    def interrupted(self) -> bool:
        return self.count > 0

    @property
    def escalated(self) -> bool:
        return self.count > 1


@dataclass
class StackDriver:
    """Opens stacks of the trainstack project with the tracked command and the run's backend settings."""

    command: TrackedPulumiCommand
    root: Path = REPO_ROOT
    secrets_provider: str | None = None
    env: Mapping[str, str] | None = None

    def _opts(self) -> auto.LocalWorkspaceOptions:
        env = {"PULUMI_SKIP_UPDATE_CHECK": "true", **(self.env or {})}
        return auto.LocalWorkspaceOptions(
            work_dir=str(self.root), pulumi_command=self.command, secrets_provider=self.secrets_provider, env_vars=env
        )

    def create(self, name: str) -> auto.Stack:
        """A fresh stack; raises StackAlreadyExistsError rather than reusing one."""
        return auto.create_stack(name, work_dir=str(self.root), opts=self._opts())

    def select(self, name: str) -> auto.Stack:
        return auto.select_stack(name, work_dir=str(self.root), opts=self._opts())

    def workspace(self) -> auto.LocalWorkspace:
        """The project's workspace (list stacks, read another stack's outputs) without selecting a stack."""
        env = {"PULUMI_SKIP_UPDATE_CHECK": "true", **(self.env or {})}
        return auto.LocalWorkspace(
            work_dir=str(self.root), pulumi_command=self.command, secrets_provider=self.secrets_provider, env_vars=env
        )


def output_values(workspace: auto.Workspace, stack_name: str) -> dict[str, Any]:
    """`stack_name`'s outputs as plain values, read with ONE CLI command: `pulumi stack output --json
    --show-secrets --stack NAME`.

    The SDK's `LocalWorkspace.stack_outputs` (pulumi 3.272.0, automation/_local_workspace.py) runs `stack output`
    twice, masked and then with --show-secrets, only to flag which values are secret; trainstack reads the
    values alone, which are the second command's output (the same argv, environment and errors: a missing stack
    raises StackNotFoundError through the SDK's `create_command_error`). Each CLI start reads the stack's state
    from the backend (an S3 object or the Pulumi Cloud API), so `ls`, `exec`, `attach`, `logs` and `down` start
    that much sooner. The environment is what `LocalWorkspace._run_pulumi_cmd_sync` passes (PULUMI_HOME, the
    workspace's env vars; trainstack opens no remote workspaces)."""
    env = {"PULUMI_HOME": workspace.pulumi_home} if workspace.pulumi_home else {}
    args = ["stack", "output", "--json", "--show-secrets", "--stack", stack_name]
    result = workspace.pulumi_command.run(args, workspace.work_dir, {**env, **workspace.env_vars})
    return json.loads(result.stdout)


def project_workspace(root: Path = REPO_ROOT, pulumi_root: str | None = None) -> auto.LocalWorkspace:
    """The workspace every command other than run/down uses (ls, upload --platform, sagemaker start):
    the same CLI resolution, so $TRAINSTACK_PULUMI_ROOT works everywhere."""
    return StackDriver(pulumi_command(pulumi_root, project_root=root), root=root).workspace()
