"""The Google emulators started for tests and benchmarks: Firestore (gcloud's
cloud-firestore-emulator) and Auth (firebase-tools), each on free loopback ports.

One home for it, because every copy had to learn the same lessons: the emulator runs in a
session of its own, so a Ctrl-C at the terminal reaches only the caller, whose `finally`
then stops it; it is stopped as a whole process group, because gcloud's emulator is a
shell wrapper whose Java child is the server (stopping only the wrapper left Java
running, holding ~1 GB); and its output is drained for as long as it runs, since a full
pipe would stall it.

Production code never imports this module (like `cogmora.testing`, it ships for tests,
benchmarks and anyone embedding Cogmora).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

__all__ = [
    "FIRESTORE_READY",
    "EmulatorUnavailable",
    "FirestoreOnPort",
    "auth_emulator",
    "firestore_command",
    "firestore_emulator",
    "free_port",
    "start_group",
    "stop_group",
]

FIRESTORE_READY = "Dev App Server is now running"
AUTH_READY = "All emulators ready"
FIRESTORE_SCRIPTS = (
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator",
    "/usr/share/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator",
)


class EmulatorUnavailable(RuntimeError):
    """The emulator cannot be started here; the message says why (a test skips with it)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _firestore_script() -> str | None:
    candidates = list(FIRESTORE_SCRIPTS)
    gcloud = shutil.which("gcloud")
    if gcloud is not None:
        root = Path(gcloud).resolve().parent.parent
        candidates.insert(
            0, str(root / "platform/cloud-firestore-emulator/cloud_firestore_emulator")
        )
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


def firestore_command(port: int, *extra: str) -> list[str]:
    """The command that starts a Firestore emulator on `port` (`extra`: more of its flags,
    e.g. `--import-data=...`), or EmulatorUnavailable naming what is missing."""
    script = _firestore_script()
    if script is None:
        raise EmulatorUnavailable(
            "no Firestore emulator: set FIRESTORE_EMULATOR_HOST, or install the Google Cloud "
            "CLI's cloud-firestore-emulator component (Debian package "
            "google-cloud-cli-firestore-emulator); firebase-tools downloads its jar at run "
            "time, which this machine cannot"
        )
    if shutil.which("java") is None:
        raise EmulatorUnavailable("the Firestore emulator needs Java (11+), which is not installed")
    return [script, "start", "--host=127.0.0.1", f"--port={port}", *extra]


def start_group(
    args: Sequence[str],
    ready: str,
    *,
    name: str = "the emulator",
    within: float = 90.0,
    cwd: Path | None = None,
    log: Path | None = None,
) -> subprocess.Popen[str]:
    """`args` started as the leader of a session of its own, returned once a line of its
    output contains `ready` (its output then goes on being drained, into `log` if given);
    EmulatorUnavailable, with the group stopped, if it exits or stays silent first."""
    proc = subprocess.Popen(
        list(args),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        out = log.open("a") if log is not None else None
        try:
            for line in proc.stdout:
                lines.put(line)
                if out is not None:
                    out.write(line)
                    out.flush()
        finally:
            lines.put("")
            if out is not None:
                out.close()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + within
    seen: list[str] = []
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise EmulatorUnavailable(f"{name} did not start within {within:.0f} s") from None
            seen.append(line)
            if ready in line:
                return proc
            if line == "":
                raise EmulatorUnavailable(f"{name} exited at start:\n" + "".join(seen[-20:]))
    except BaseException:
        stop_group(proc)
        raise


def stop_group(
    proc: subprocess.Popen[Any], grace: float = 10.0, signum: int = signal.SIGTERM
) -> None:
    """`signum` to the process's whole group (it leads its own session); SIGKILL to what is
    left of the group after `grace` seconds. Returns once the group is gone: the wrapper
    exits at once, its Java child a moment later."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signum)
    deadline = time.monotonic() + grace
    probe = 0
    while True:
        proc.poll()  # reap the leader, or it stays in the group as a zombie
        try:
            os.killpg(proc.pid, probe)
        except ProcessLookupError:
            return
        if time.monotonic() >= deadline:
            probe = signal.SIGKILL
        time.sleep(0.05)


@contextmanager
def firestore_emulator(within: float = 90.0, exit_on_signals: bool = False) -> Iterator[str]:
    """host:port of FIRESTORE_EMULATOR_HOST, or of an emulator of the caller's own on a free
    port, put in FIRESTORE_EMULATOR_HOST while it runs (so subprocesses find it too) and
    stopped however the caller ends.

    `exit_on_signals` (a benchmark's main thread): SIGTERM and SIGHUP raise SystemExit
    while it runs, since their default action would end Python without running any
    `finally`, and leave the emulator behind. Not for pytest, which would record the
    SystemExit as one failed test and go on.
    """
    given = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if given:
        yield given
        return
    port = free_port()
    args = firestore_command(port)
    previous = _exit_on_signals() if exit_on_signals else {}
    try:
        proc = start_group(args, FIRESTORE_READY, name="the Firestore emulator", within=within)
        with _published("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{port}", proc) as host:
            yield host
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class FirestoreOnPort:
    """A Firestore emulator of one caller's own on a fixed free port (never the shared
    one), for faults: killed like a crash and started again on the same port, with the
    data it exported just before, as a real Firestore's durability would carry it over
    (the emulator keeps its data in memory)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.workdir = workdir
        self.proc: subprocess.Popen[str] | None = None
        firestore_command(self.port)  # EmulatorUnavailable now, not at the first start

    def start(self, import_from: str | None = None, within: float = 180.0) -> None:
        """Blocks until it serves (from async code: `asyncio.to_thread`); its output goes
        to `workdir/emulator.log`."""
        extra = [f"--import-data={import_from}"] if import_from else []
        self.proc = start_group(
            firestore_command(self.port, *extra),
            FIRESTORE_READY,
            name=f"the Firestore emulator on {self.port}",
            within=within,
            log=self.workdir / "emulator.log",
        )

    def export(self, project: str) -> str:
        """The emulator's data now, on disk (`POST /emulator/v1/projects/P:export`);
        returns the metadata file `start(import_from=...)` takes."""
        target = self.workdir / f"export-{uuid.uuid4().hex[:6]}"
        target.mkdir()
        body = json.dumps(
            {
                "database": f"projects/{project}/databases/(default)",
                "export_directory": str(target),
            }
        ).encode()
        request = urllib.request.Request(
            f"http://{self.host}/emulator/v1/projects/{project}:export",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60):
            pass
        return str(next(target.glob("*/*.overall_export_metadata")))

    def kill(self) -> None:
        """SIGKILL to the whole group (a crash: nothing is flushed), until it is gone."""
        if self.proc is not None:
            stop_group(self.proc, signum=signal.SIGKILL)
            self.proc = None


def firebase_tools() -> str | None:
    """The `firebase` command (npm's firebase-tools; `.ci/run` installs it)."""
    return os.environ.get("COGMORA_FIREBASE_TOOLS") or shutil.which("firebase")


@contextmanager
def auth_emulator(project: str, within: float = 90.0) -> Iterator[str]:
    """host:port of FIREBASE_AUTH_EMULATOR_HOST, or of firebase-tools' Auth emulator
    (JavaScript: it runs offline) started for `project`, put in FIREBASE_AUTH_EMULATOR_HOST
    while it runs. Its hub and logging ports are free ones too, so it never clashes with
    another."""
    given = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST")
    if given:
        yield given
        return
    tool = firebase_tools()
    if tool is None:
        raise EmulatorUnavailable(
            "no Firebase Auth emulator: set FIREBASE_AUTH_EMULATOR_HOST, or install "
            "firebase-tools (`npm install -g firebase-tools`; .ci/run does)"
        )
    port, hub, logging_port = free_port(), free_port(), free_port()
    config = {
        "emulators": {
            "auth": {"host": "127.0.0.1", "port": port},
            "hub": {"host": "127.0.0.1", "port": hub},
            "logging": {"host": "127.0.0.1", "port": logging_port},
            "ui": {"enabled": False},
            "singleProjectMode": True,
        }
    }
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"cogmora-auth-{uuid.uuid4().hex[:8]}"
    workdir.mkdir(parents=True)
    try:
        (workdir / "firebase.json").write_text(json.dumps(config))
        args = [tool, "emulators:start", "--only", "auth", "--project", project]
        proc = start_group(args, AUTH_READY, name="the Auth emulator", within=within, cwd=workdir)
        with _published("FIREBASE_AUTH_EMULATOR_HOST", f"127.0.0.1:{port}", proc, 15.0) as host:
            yield host
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def _published(
    variable: str, host: str, proc: subprocess.Popen[str], grace: float = 10.0
) -> Iterator[str]:
    """`host` in the environment variable the clients read, for as long as the block
    runs; then the variable is gone and the emulator's group stopped."""
    os.environ[variable] = host
    try:
        yield host
    finally:
        os.environ.pop(variable, None)
        stop_group(proc, grace=grace)


def _exit_on_signals() -> dict[int, Any]:
    """SIGTERM and SIGHUP raise SystemExit (so `finally` blocks run); returns the old
    handlers. Only the main thread may set handlers: elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    return {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGHUP)}
