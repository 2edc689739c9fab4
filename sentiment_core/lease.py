"""Which of several app servers dispatches a jobs folder: a lease file with a heartbeat. Standard library only.

Several app servers (Streamlit processes, on one machine or on several sharing the folder) serve one class
from one jobs folder. Any of them takes, shows and stops jobs, since a job is its folder; but exactly one
must start queued jobs, or two would start the same one. That one holds the lease: `dispatcher.json` names
it and the time of its last heartbeat. It renews it every `seconds / 5` from its own thread; when that
stops (the server died or hangs), another takes the lease once it is `seconds` old, or at once when its
holder is a dead process on this machine. Holders compare their clocks, so machines sharing a folder need
synchronized clocks (NTP), as any shared storage does.

Reading and writing the lease, and any read-modify-write of a job record, happen under `SharedLock`, an
exclusive `flock` on `.lock` in the folder (local filesystems, and NFS v4 through its byte-range locks).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from .protocol import write_atomic

LEASE_FILE = "dispatcher.json"
LOCK_FILE = ".lock"
LEASE_SECONDS = float(os.environ.get("SENTIMENT_LEASE_SECONDS", 5.0))  # a silent holder loses it after this


class SharedLock:
    """An exclusive lock shared by every process that opens the same file; reentrant within this process
    (threads queue on an RLock first, and a nested use keeps the one flock)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> SharedLock:
        self._threads.acquire()
        if self._depth == 0:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                self._threads.release()
                raise
            self._fd = fd
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._threads.release()


def _alive_here(holder: dict) -> bool:
    """False only when the holder is a process of this machine that no longer exists."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder.get("pid", 0)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


class Lease:
    """This process's claim to dispatch one jobs folder."""

    def __init__(self, folder: Path, lock: SharedLock, seconds: float = LEASE_SECONDS):
        self.path = Path(folder) / LEASE_FILE
        self.lock = lock
        self.seconds = seconds
        self.me = {"holder": uuid.uuid4().hex[:12], "host": socket.gethostname(), "pid": os.getpid()}
        self._renewed: float | None = None  # time.monotonic() of our last heartbeat, while we hold it
        self._closing = threading.Event()
        self._beating: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lease: its heartbeat is younger than the lease (a heartbeat thread
        starved for longer may have been replaced, so it no longer counts on it)."""
        renewed = self._renewed
        return renewed is not None and time.monotonic() - renewed < self.seconds

    def holder(self) -> dict | None:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            return document if isinstance(document, dict) else None
        except (OSError, ValueError):
            return None

    def _write(self) -> None:
        write_atomic(self.path, json.dumps({**self.me, "renewed": time.time()}))
        self._renewed = time.monotonic()

    def acquire(self) -> bool:
        """Take the lease if nobody holds it, its holder is silent, or it is ours; then keep it renewed."""
        with self.lock:
            current = self.holder()
            free = (current is None or current.get("holder") == self.me["holder"] or not _alive_here(current)
                    or time.time() - float(current.get("renewed", 0)) > self.seconds)
            if not free:
                return False
            self._write()
        if self._beating is None or not self._beating.is_alive():
            self._closing.clear()
            self._beating = threading.Thread(target=self._beat, name="dispatcher-lease", daemon=True)
            self._beating.start()
        return True

    def _beat(self) -> None:
        while not self._closing.wait(self.seconds / 5):
            with self.lock:
                current = self.holder()
                if current is None or current.get("holder") != self.me["holder"]:
                    self._renewed = None  # another server took it over while we were silent
                    return
                self._write()

    def release(self) -> None:
        """Give the lease up (a clean shutdown), so another server takes over at once."""
        self._closing.set()
        if self._beating is not None:
            self._beating.join(timeout=5)
        with self.lock:
            current = self.holder()
            if current is not None and current.get("holder") == self.me["holder"]:
                self.path.unlink(missing_ok=True)
        self._renewed = None
