"""Live progress of a Pulumi operation from the Automation API's engine events.

`reduce(state, event)` is pure: it turns one `EngineEvent` into the state a display needs
(resources done / total, the operations in flight, failures, diagnostics). `ProgressView` feeds it
from the SDK's event thread and draws it: a rich progress line on a terminal, plain lines otherwise
(CI logs keep every step).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from pulumi.automation import EngineEvent, OpType

# Operations that change nothing: not shown, not counted.
_QUIET_OPS = {OpType.SAME, OpType.READ, OpType.REFRESH, OpType.DISCARD, OpType.DISCARD_REPLACED}


@dataclass
class ProgressState:
    total: int = 0  # expected resource operations (the offline plan's count); 0: unknown (destroy)
    done: int = 0
    planning: bool = False  # a preview: its steps arrive as `planning` events and are what is counted
    in_flight: dict[str, str] = field(default_factory=dict)  # urn -> op
    failed: list[str] = field(default_factory=list)  # urns
    lines: list[str] = field(default_factory=list)  # what a plain log prints, in order
    errors: list[str] = field(default_factory=list)
    policy_violations: list[str] = field(default_factory=list)
    summary: dict[str, int] | None = None
    cancelled: bool = False

    @property
    def current(self) -> str:
        if not self.in_flight:
            return ""
        urn, op = next(reversed(self.in_flight.items()))
        return f"{op} {_short(urn)}"


def _short(urn: str) -> str:
    # urn:pulumi:stack::project::type$type::name -> type name
    parts = urn.split("::")
    if len(parts) >= 4:
        return f"{parts[2].rsplit('$', 1)[-1]} {parts[3]}"
    return urn


def reduce(state: ProgressState, event: EngineEvent) -> ProgressState:
    """Apply one engine event to the state (mutates and returns it)."""
    if event.resource_pre_event is not None:
        md = event.resource_pre_event.metadata
        counted = bool(event.resource_pre_event.planning) == state.planning
        if counted and md.op not in _QUIET_OPS and md.type != "pulumi:pulumi:Stack":
            state.in_flight[md.urn] = md.op.value
    elif event.res_outputs_event is not None:
        md = event.res_outputs_event.metadata
        op = state.in_flight.pop(md.urn, None)
        if op is not None:
            state.done += 1
            # No known total (destroy): a plain count, never a made-up "[1/1]".
            count = f"{state.done}/{max(state.total, state.done)}" if state.total else f"{state.done}"
            state.lines.append(f"[{count}] {op} {_short(md.urn)}")
    elif event.res_op_failed_event is not None:
        md = event.res_op_failed_event.metadata
        state.in_flight.pop(md.urn, None)
        state.failed.append(md.urn)
        state.lines.append(f"FAILED {md.op.value} {_short(md.urn)}")
    elif event.diagnostic_event is not None:
        d = event.diagnostic_event
        if d.severity == "error":
            text = d.message.strip()
            state.errors.append(text)
            state.lines.append(f"error: {text}")
        elif d.severity == "warning":
            state.lines.append(f"warning: {d.message.strip()}")
    elif event.policy_event is not None:
        p = event.policy_event
        text = f"policy {p.policy_pack_name}/{p.policy_name} ({p.enforcement_level}): {p.message.strip()}"
        state.policy_violations.append(text)
        state.lines.append(text)
    elif event.summary_event is not None:
        changes = event.summary_event.resource_changes or {}
        state.summary = {getattr(k, "value", k): v for k, v in changes.items()}  # OpType keys: plain str in JSON
        state.in_flight.clear()
        if not state.failed:
            state.total = state.done  # the operation is over: the bar ends full, whatever was estimated
    elif event.cancel_event is not None:
        state.cancelled = True
    return state


class ProgressView:
    """Thread-safe sink for `on_event`: a rich live line on a terminal, plain lines otherwise.

    At 80 columns the count and the elapsed time keep their width; only the current operation's text is
    shortened (with an ellipsis)."""

    def __init__(self, console: Any, title: str, total: int, *, live: bool | None = None, preview: bool = False):
        self.console = console
        self.title = title
        self.state = ProgressState(total=total, planning=preview)
        self._lock = threading.Lock()
        self._printed = 0
        self._live = console.is_terminal if live is None else live
        self._progress: Any = None  # rich.progress.Progress on a terminal
        self._task: Any = None

    def __enter__(self) -> "ProgressView":
        if self._live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            from rich.table import Column

            fixed = Column(no_wrap=True)
            self._progress = Progress(
                TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True, max_width=40)),
                BarColumn(bar_width=16, table_column=fixed),
                MofNCompleteColumn(table_column=Column(no_wrap=True, min_width=7)),
                TimeElapsedColumn(table_column=fixed),
                TextColumn("{task.fields[current]}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
                console=self.console,
                transient=False,
                expand=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.title, total=self.state.total or None, current="")
        elif self.state.total:
            self.console.print(f"{self.title}: {self.state.total} resource operation(s) expected", highlight=False)
        else:
            self.console.print(f"{self.title}:", highlight=False)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def on_event(self, event: EngineEvent) -> None:
        with self._lock:
            reduce(self.state, event)
            new = self.state.lines[self._printed :]
            self._printed = len(self.state.lines)
            if self._progress is not None:
                for line in new:
                    if not line.startswith("["):  # failures, diagnostics, policy: keep them above the bar
                        self._progress.console.print(line, markup=False, highlight=False)
                self._progress.update(
                    self._task,
                    completed=self.state.done,
                    total=(max(self.state.total, self.state.done) or None) if self.state.total else None,
                    current=self.state.current,
                )
            else:
                for line in new:
                    self.console.print(line, markup=False, highlight=False)
