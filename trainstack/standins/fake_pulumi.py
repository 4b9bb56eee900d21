"""A strict fake of the `pulumi` CLI (3.272): a LOCAL STAND-IN for the Automation API tests and `trainstack try`.

Run as `python -m trainstack.standins.fake_pulumi` from a `bin/pulumi` script (tests/fakes/pulumi/bin/pulumi;
`trainstack try` writes its own). It never imports the stack programs: `up` runs `__main__.py` in this,
a separate process, as the real CLI would.

Implements exactly the argv the SDK emits for what trainstack uses (`version`, `stack init/select/
rm/ls/output/history`, `config set-all --json`, `config --json`, `preview`, `up`, `destroy`, `refresh`, `cancel`)
and rejects any other command or flag, so an SDK change fails loudly here. State (stacks, config,
resources, outputs, lock, pending operations, history, a call log) lives in `$FAKE_PULUMI_STATE`.

`preview`/`up` run the real program (`__main__.py`) under `trainstack.plan.offline.run_offline` with the
stack's config, serve a cluster's platform StackReference from the stored platform stack's outputs,
and stream engine events to the SDK over gRPC (`--event-log tcp://...`, as CLI > 3.205 does).
SIGINT like the CLI: first = finish the current step, then cancel ("update canceled", lock
released); second = exit at once, leaving the lock and a pending operation.

Scenario knobs: `$FAKE_PULUMI_STATE/scenario.json` (read at every command):
  {"fail_up_after": N, "fail_destroy": "once" | "always", "step_seconds": s, "program_error": "text",
   "init_error": "text", "hold_up_after": N}
`hold_up_after`: `up`, having created N resources, makes the next step last (stack locked, mid-update)
until the file `$FAKE_PULUMI_STATE/release` exists, so a test acts during a live update, or sends its
interrupts within one step, without timing it by sleeps.
Locks are written as the DIY backend writes them ({pid, username, hostname, timestamp}) and refused with
its wording (pulumi pkg/backend/diy/lock.go, checkForLock), holder included.
With `$FAKE_PULUMI_STANDINS` set, `up` and `destroy` also create / delete in the stand-in AWS
(`AWS_ENDPOINT_URL`, a moto server) what the stack's outputs name (trainstack.standins.cloud).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

VERSION = "v3.272.0"
STATE = Path(os.environ.get("FAKE_PULUMI_STATE", "/nonexistent"))

# command -> (flags taking a value, boolean flags, positional count)
_OP_FLAGS = {"--exec-kind", "--event-log", "--stack", "--policy-pack", "--message"}
COMMANDS: dict[tuple[str, ...], tuple[set[str], set[str], int]] = {
    ("version",): (set(), set(), 0),
    ("stack", "init"): ({"--secrets-provider", "--stack"}, {"--no-select"}, 1),
    ("stack", "select"): ({"--stack"}, set(), 0),
    ("stack", "rm"): ({"--stack"}, {"--yes", "--force", "--preserve-config"}, 1),
    ("stack", "ls"): (set(), {"--json", "--all"}, 0),
    ("stack", "output"): ({"--stack"}, {"--json", "--show-secrets"}, 0),
    ("stack", "history"): ({"--stack", "--page-size", "--page"}, {"--json", "--show-secrets"}, 0),
    ("config", "set-all"): ({"--stack", "--json"}, set(), 0),
    ("config",): ({"--stack"}, {"--show-secrets", "--json"}, 0),
    ("preview",): (_OP_FLAGS, set(), 0),
    ("up",): (_OP_FLAGS, {"--yes", "--skip-preview"}, 0),
    ("destroy",): (_OP_FLAGS, {"--yes", "--skip-preview"}, 0),
    ("refresh",): (_OP_FLAGS, {"--yes", "--skip-preview", "--clear-pending-creates"}, 0),
    ("cancel",): ({"--stack"}, {"--yes"}, 0),
}
EXIT_FAIL = 255


class Usage(Exception):
    pass


def parse(argv: list[str]) -> tuple[tuple[str, ...], dict[str, Any], list[str]]:
    args = list(argv)
    if args[:1] == ["--non-interactive"]:
        args = args[1:]
    for n in (2, 1):
        cmd = tuple(args[:n])
        if cmd in COMMANDS:
            break
    else:
        raise Usage(f"unknown command {' '.join(args[:2])!r}")
    valued, boolean, npos = COMMANDS[cmd]
    flags: dict[str, Any] = {}
    positional: list[str] = []
    rest = args[len(cmd) :]
    i = 0
    while i < len(rest):
        a = rest[i]
        if a == "--":
            positional.extend(rest[i + 1 :])
            break
        if a.startswith("--"):
            if a in valued:
                if i + 1 >= len(rest):
                    raise Usage(f"flag needs an argument: {a}")
                flags.setdefault(a, []).append(rest[i + 1])
                i += 2
                continue
            if a in boolean:
                flags[a] = True
                i += 1
                continue
            raise Usage(f"unknown flag: {a}")
        positional.append(a)
        i += 1
    if len(positional) != npos:
        raise Usage(f"{' '.join(cmd)} takes {npos} argument(s), got {positional}")
    return cmd, flags, positional


# ---------------------------------------------------------------------------------------------
# State


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _stack_file(name: str) -> Path:
    return STATE / "stacks" / f"{name.rsplit('/', 1)[-1]}.json"


def load(name: str) -> dict[str, Any]:
    path = _stack_file(name)
    if not path.exists():
        fail(f"error: no stack named '{name}' found")
    return json.loads(path.read_text())


def save(name: str, doc: dict[str, Any]) -> None:
    path = _stack_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(path)


def scenario() -> dict[str, Any]:
    path = STATE / "scenario.json"
    return json.loads(path.read_text()) if path.exists() else {}


def set_scenario(doc: dict[str, Any]) -> None:
    (STATE / "scenario.json").write_text(json.dumps(doc))


def fail(message: str, code: int = EXIT_FAIL) -> None:
    print(message, file=sys.stderr, flush=True)
    sys.exit(code)


def _lock_path(name: str) -> Path:
    return STATE / "locks" / f"{name.rsplit('/', 1)[-1]}.lock"


def lock_text(name: str) -> str:
    """The DIY backend's refusal (pulumi pkg/backend/diy/lock.go, checkForLock), naming the holder."""
    lock = _lock_path(name)
    try:
        held = json.loads(lock.read_text())
    except ValueError:
        held = {"pid": 0, "username": "?", "hostname": "?", "timestamp": "?"}
    return (
        "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end "
        f"or delete the lock file with `pulumi cancel`.\n  file://{lock}: created by "
        f"{held['username']}@{held['hostname']} (pid {held['pid']}) at {held['timestamp']}"
    )


def take_lock(name: str) -> None:
    lock = _lock_path(name)
    if lock.exists():
        fail(lock_text(name))
    import getpass
    import socket

    lock.parent.mkdir(parents=True, exist_ok=True)
    # Whole or absent, as the DIY backend's lock object in a bucket is: a reader never sees it half-written.
    tmp = lock.with_name(f".{lock.name}.{os.getpid()}")
    tmp.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "username": getpass.getuser(),
                "hostname": socket.gethostname(),
                "timestamp": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    )
    tmp.replace(lock)


def release_lock(name: str) -> None:
    _lock_path(name).unlink(missing_ok=True)


def stack_arg(flags: dict[str, Any]) -> str:
    if "--stack" in flags:
        return flags["--stack"][-1]
    current = STATE / "current"
    if not current.exists():
        fail("error: no stack selected; please use `pulumi stack select`")
    return current.read_text().strip()


def history_entry(
    kind: str, doc: dict[str, Any], result: str, started: str, changes: dict[str, int] | None = None
) -> None:
    doc.setdefault("history", []).insert(
        0,
        {
            "kind": kind,
            "startTime": started,
            "endTime": _now(),
            "message": "",
            "environment": {},
            "config": {k: {"value": v["value"], "secret": v.get("secret", False)} for k, v in doc["config"].items()},
            "result": result,
            "version": len(doc.get("history", [])) + 1,
            "resourceChanges": changes or {},
        },
    )


# ---------------------------------------------------------------------------------------------
# Engine events over gRPC


class EventStream:
    """Streams engine events to the Automation API's event server, like the CLI's gRPC event sink."""

    def __init__(self, target: str | None):
        self.seq = 0
        self._queue: list[Any] = []
        self._cv = threading.Condition()
        self._done = False
        self._thread = None
        if target and target.startswith("tcp://"):
            import grpc

            channel = grpc.insecure_channel(target[len("tcp://") :])
            # pulumirpc.Events/StreamEvents (proto/pulumi/events.proto), client-streaming EventRequest.
            stream = channel.stream_unary(
                "/pulumirpc.Events/StreamEvents",
                request_serializer=encode_event_request,
                response_deserializer=lambda raw: None,
            )
            self._thread = threading.Thread(target=lambda: stream(self._requests()), daemon=True)
            self._thread.start()
        elif target:
            raise Usage(f"--event-log {target}: this fake speaks the gRPC event stream only (CLI > 3.205)")

    def _requests(self):
        while True:
            with self._cv:
                while not self._queue and not self._done:
                    self._cv.wait()
                if not self._queue and self._done:
                    return
                item = self._queue.pop(0)
            yield json.dumps(item)

    def emit(self, **event: Any) -> None:
        if self._thread is None:
            return
        self.seq += 1
        with self._cv:
            self._queue.append({"sequence": self.seq, "timestamp": int(time.time()), **event})
            self._cv.notify()

    def close(self) -> None:
        if self._thread is None:
            return
        with self._cv:
            self._done = True
            self._cv.notify()
        self._thread.join(10)


def encode_event_request(event: str) -> bytes:
    """`EventRequest{string event = 1}` on the wire, without importing the pulumi package (0.25 s per call):
    tag (field 1, length-delimited) + varint length + UTF-8 bytes."""
    data = event.encode()
    n, length = len(data), bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        length.append(byte | (0x80 if n else 0))
        if not n:
            break
    return b"\x0a" + bytes(length) + data


def _md(op: str, urn: str, type_: str) -> dict[str, Any]:
    return {"op": op, "urn": urn, "type": type_, "provider": ""}


# ---------------------------------------------------------------------------------------------
# Running the program


def _config_for_program(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v["objectValue"] if "objectValue" in v else v["value"] for k, v in doc["config"].items()}


def _source_fingerprint(cwd: str) -> list:
    """What the program's result depends on besides its config: a cached evaluation never outlives an edit."""
    root = Path(cwd)
    files = [root / "__main__.py", root / "Pulumi.yaml", root / "trainstack" / "__init__.py"]
    # What a program can import (the layer contracts keep it from the tools) and the engine that runs it.
    for folder in ("components", "scripts", *(f"trainstack/{p}" for p in ("programs", "model", "backends", "plan"))):
        files += sorted((root / folder).rglob("*.py"))
    files += sorted((root / "trainstack" / "model" / "data").glob("*"))
    return [(str(f.relative_to(root)), f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.exists()]


def evaluate(name: str, doc: dict[str, Any], cwd: str) -> tuple[list[dict[str, str]], dict[str, Any], list[str]]:
    """(resources [{urn, type}], outputs, warnings) of the real program under the mock engine. Cached by
    stack and config in $FAKE_PULUMI_CACHE so preview + up (and repeated tests) evaluate it once."""
    config = _config_for_program(doc)
    key = hashlib.sha256(json.dumps([name, config, _source_fingerprint(cwd)], sort_keys=True).encode()).hexdigest()[:16]
    cache_dir = Path(os.environ.get("FAKE_PULUMI_CACHE") or STATE / "cache")
    cached = cache_dir / f"{key}.json"
    if cached.exists():
        hit = json.loads(cached.read_text())
        return hit["resources"], hit["outputs"], hit["warnings"]
    sys.path.insert(0, cwd)
    os.chdir(cwd)
    import runpy

    from trainstack.plan.offline import run_offline

    stack_outputs: dict[str, Any] = {}
    ref = config.get("trainstack:platformStack")
    if ref:
        path = _stack_file(ref)
        if path.exists():
            stack_outputs[ref] = json.loads(path.read_text()).get("outputs", {})
    project = "trainstack"
    run = run_offline(
        lambda: runpy.run_path(os.path.join(cwd, "__main__.py"), run_name="__main__"),
        config=config,
        project=project,
        stack=name,
        stack_outputs=stack_outputs,
    )
    resources = [{"urn": r.urn, "type": r.type} for r in run.resources]
    out = {"resources": resources, "outputs": run.outputs, "warnings": run.warnings}
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(out, default=str))
    return resources, json.loads(json.dumps(run.outputs, default=str)), run.warnings


def _hold() -> None:
    """A step that lasts until the test releases it (scenario `hold_up_after`): like any step, a first ^C
    cancels once it ends, a second terminates at once."""
    deadline = time.monotonic() + 60
    while not (STATE / "release").exists():
        if time.monotonic() > deadline:
            fail("fake pulumi: held update never released (scenario hold_up_after)")
        time.sleep(0.01)


class Interrupt:
    """The CLI's cancellation scope: first ^C cancels after the current step, second terminates."""

    def __init__(self, on_terminate):
        self.count = 0
        self._on_terminate = on_terminate
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.count += 1
        if self.count == 1:
            print(
                "^C received; cancelling. If you would like to terminate immediately, press ^C again.",
                file=sys.stderr,
                flush=True,
            )
        else:
            print("^C received; terminating", file=sys.stderr, flush=True)
            self._on_terminate()
            os._exit(EXIT_FAIL)


def operation(cmd: str, flags: dict[str, Any], cwd: str) -> None:
    name = stack_arg(flags)
    doc = load(name)
    if flags.get("--exec-kind", ["auto.local"])[-1] != "auto.local":
        raise Usage("only local programs (--exec-kind auto.local) are faked")
    sc = scenario()
    started = _now()
    preview = cmd == "preview"
    if not preview:
        take_lock(name)
    events = EventStream((flags.get("--event-log") or [None])[-1])
    current: dict[str, Any] = {"urn": None}

    def terminate() -> None:  # second ^C: the state keeps a pending operation, the lock stays
        if current["urn"] and not preview:
            doc.setdefault("pending", []).append({"urn": current["urn"], "op": cmd})
            save(name, doc)

    intr = Interrupt(terminate)
    events.emit(preludeEvent={"config": {k: v["value"] for k, v in doc["config"].items()}})
    step = float(sc.get("step_seconds", 0))

    def finish(result: str, changes: dict[str, int], code: int = 0, message: str = "") -> None:
        events.emit(
            summaryEvent={"maybeCorrupt": False, "durationSeconds": 0, "resourceChanges": changes, "PolicyPacks": {}}
        )
        events.emit(cancelEvent={})
        events.close()
        if not preview:
            history_entry(cmd, doc, result, started, changes)
            save(name, doc)
            release_lock(name)
        if message:
            print(message, file=sys.stderr, flush=True)
        sys.stdout.flush()
        sys.exit(code)

    if cmd in ("preview", "up"):
        if sc.get("program_error"):
            events.emit(diagnosticEvent={"message": sc["program_error"], "color": "never", "severity": "error"})
            print("error: an unhandled error occurred: Program exited with non-zero exit code: 1")
            finish("failed", {}, EXIT_FAIL)
        try:
            resources, outputs, warnings = evaluate(name, doc, cwd)
        except Exception as exc:  # noqa: BLE001 - the program's own error, as the CLI reports it
            events.emit(diagnosticEvent={"message": str(exc), "color": "never", "severity": "error"})
            print(f"error: an unhandled error occurred: {exc}")
            finish("failed", {}, EXIT_FAIL)
        for w in warnings:
            events.emit(diagnosticEvent={"message": w, "color": "never", "severity": "warning"})
        have = {r["urn"] for r in doc.get("resources", [])}
        todo = [r for r in resources if r["urn"] not in have]
        done = 0
        for i, r in enumerate(todo):
            if intr.count:
                finish("failed", {"create": done}, EXIT_FAIL, "error: update canceled")
            if not preview and sc.get("fail_up_after") is not None and i >= int(sc["fail_up_after"]):
                events.emit(resourcePreEvent={"metadata": _md("create", r["urn"], r["type"])})
                msg = (
                    f"creating {r['type']} ({r['urn'].rsplit('::', 1)[-1]}): InsufficientInstanceCapacity: "
                    "We currently do not have sufficient capacity in the Availability Zone you requested"
                )
                events.emit(diagnosticEvent={"message": msg, "color": "never", "severity": "error", "urn": r["urn"]})
                events.emit(resOpFailedEvent={"metadata": _md("create", r["urn"], r["type"]), "status": 1, "steps": 1})
                finish("failed", {"create": done}, EXIT_FAIL, "error: update failed")
            current["urn"] = r["urn"]
            events.emit(resourcePreEvent={"metadata": _md("create", r["urn"], r["type"]), "planning": preview})
            if step:
                time.sleep(step)
            if not preview and i == sc.get("hold_up_after"):
                _hold()
            if not preview:
                doc.setdefault("resources", []).append(r)
                save(name, doc)
            events.emit(resOutputsEvent={"metadata": _md("create", r["urn"], r["type"]), "planning": preview})
            current["urn"] = None
            done += 1
        if intr.count:
            finish("failed", {"create": done}, EXIT_FAIL, "error: update canceled")
        if not preview:
            doc["outputs"] = outputs
            if os.environ.get("FAKE_PULUMI_STANDINS"):
                from trainstack.standins import cloud

                cloud.provision(name.rsplit("/", 1)[-1], outputs)
        finish("succeeded", {"create": done, "same": len(resources) - len(todo)})

    if cmd == "destroy":
        if doc.get("pending"):
            fail_msg = (
                "error: the current deployment has 1 resource(s) with pending operations: "
                f"{doc['pending'][0]['urn']}, interrupted while {doc['pending'][0]['op']}ing. "
                "Run `pulumi refresh --clear-pending-creates`."
            )
            events.emit(diagnosticEvent={"message": fail_msg, "color": "never", "severity": "error"})
            finish("failed", {}, EXIT_FAIL, "error: destroy failed")
        mode = sc.get("fail_destroy")
        done = 0
        for r in list(reversed(doc.get("resources", []))):
            if intr.count:
                finish("failed", {"delete": done}, EXIT_FAIL, "error: destroy canceled")
            if mode in ("once", "always"):
                if mode == "once":
                    sc["fail_destroy"] = None
                    set_scenario(sc)
                msg = (
                    f"deleting {r['type']} ({r['urn'].rsplit('::', 1)[-1]}): DependencyViolation: "
                    "resource has a dependent object"
                )
                events.emit(diagnosticEvent={"message": msg, "color": "never", "severity": "error", "urn": r["urn"]})
                events.emit(resOpFailedEvent={"metadata": _md("delete", r["urn"], r["type"]), "status": 1, "steps": 1})
                finish("failed", {"delete": done}, EXIT_FAIL, "error: destroy failed")
            current["urn"] = r["urn"]
            events.emit(resourcePreEvent={"metadata": _md("delete", r["urn"], r["type"])})
            if step:
                time.sleep(step)
            doc["resources"].remove(r)
            save(name, doc)
            events.emit(resOutputsEvent={"metadata": _md("delete", r["urn"], r["type"])})
            current["urn"] = None
            done += 1
        if os.environ.get("FAKE_PULUMI_STANDINS") and doc.get("outputs"):
            from trainstack.standins import cloud

            cloud.teardown(name.rsplit("/", 1)[-1], doc["outputs"])
        doc["outputs"] = {}
        finish("succeeded", {"delete": done})

    if cmd == "refresh":
        if flags.get("--clear-pending-creates"):
            doc["pending"] = []
        finish("succeeded", {"same": len(doc.get("resources", []))})


def main(argv: list[str]) -> int:
    log = STATE / "calls.jsonl"
    try:
        cmd, flags, pos = parse(argv)
    except Usage as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if cmd != ("version",):
        if not STATE.is_dir():
            print(f"error: FAKE_PULUMI_STATE={STATE} is not a directory", file=sys.stderr)
            return 2
        with log.open("a") as f:
            f.write(json.dumps(argv) + "\n")
    if cmd == ("version",):
        print(VERSION)
        return 0
    if cmd == ("stack", "init"):
        name = pos[0]
        if scenario().get("init_error"):
            fail(f"error: {scenario()['init_error']}")
        if _stack_file(name).exists():
            fail(f"error: stack '{name}' already exists")
        save(
            name,
            {
                "name": name,
                "config": {},
                "resources": [],
                "outputs": {},
                "history": [],
                "secretsProvider": (flags.get("--secrets-provider") or ["passphrase"])[-1],
            },
        )
        (STATE / "current").write_text(name)
        print(f"Created stack '{name}'")
        return 0
    if cmd == ("stack", "select"):
        name = stack_arg(flags)
        load(name)
        (STATE / "current").write_text(name)
        return 0
    if cmd == ("stack", "rm"):
        name = pos[0]
        doc = load(name)
        if doc.get("resources") and not flags.get("--force"):
            fail(
                f"error: '{name}' still has resources; removal rejected. Possible actions:\n"
                "- Make sure that 'NAME' is the stack that you want to destroy\n- Run `pulumi destroy` to delete "
                "the resources, then run `pulumi stack rm`\n- Run `pulumi stack rm --force` to override this error"
            )
        if _lock_path(name).exists():
            fail(lock_text(name))
        _stack_file(name).unlink()
        print(f"Stack '{name}' has been removed!")
        return 0
    if cmd == ("stack", "ls"):
        current = (STATE / "current").read_text().strip() if (STATE / "current").exists() else ""
        out = []
        for p in sorted((STATE / "stacks").glob("*.json")):
            d = json.loads(p.read_text())
            out.append(
                {
                    "name": d["name"],
                    "current": d["name"] == current,
                    "updateInProgress": _lock_path(d["name"]).exists(),
                    "resourceCount": len(d.get("resources", [])),
                }
            )
        print(json.dumps(out))
        return 0
    if cmd == ("stack", "output"):
        print(json.dumps(load(stack_arg(flags)).get("outputs", {}), indent=2))
        return 0
    if cmd == ("stack", "history"):
        hist = load(stack_arg(flags)).get("history", [])
        if "--page-size" in flags:
            size, page = int(flags["--page-size"][-1]), int(flags.get("--page", ["1"])[-1])
            hist = hist[(page - 1) * size : page * size]
        print(json.dumps(hist))
        return 0
    if cmd == ("config", "set-all"):
        name = stack_arg(flags)
        doc = load(name)
        for key, entry in json.loads(flags["--json"][-1]).items():
            if ":" not in key or set(entry) - {"value", "objectValue", "secret"}:
                fail(f"error: invalid config entry {key}: {entry}")
            doc["config"][key] = entry
        save(name, doc)
        return 0
    if cmd == ("config",):  # `pulumi config --show-secrets --json`: the format `config set-all --json` took
        if not flags.get("--json"):
            raise_usage = "only `pulumi config --json` is faked"
            print(f"error: {raise_usage}", file=sys.stderr)
            return 2
        print(json.dumps(load(stack_arg(flags)).get("config", {}), indent=2))
        return 0
    if cmd == ("cancel",):
        name = stack_arg(flags)
        load(name)
        if not _lock_path(name).exists():
            fail(f"error: no update in progress for stack '{name}'")
        release_lock(name)
        print(f"The currently running update for '{name}' has been canceled!")
        return 0
    operation(cmd[0], flags, os.getcwd())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
