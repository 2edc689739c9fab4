"""Start the app as a real server for browser tests and benchmarks; find Debian's chromium.

Used by tests/test_e2e.py, benchmarks/screenshots.py and benchmarks/loadtest.py. Runs, jobs and the
encoded-data cache go to a folder of the caller's choosing, never to artifacts/runs.

    server = AppServer.start(tmp_dir, env={"SENTIMENT_MAX_TRAININGS": "2"})
    ...  # server.url, server.process (a psutil-friendly Popen)
    server.stop()

wait_idle() and full_page_screenshot() are for Playwright's sync API.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
# The app's root element; its attributes say whether the script is running and whether the websocket is up.
APP = "[data-testid='stApp']"
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning'][data-test-connection-state='CONNECTED']"


def chromium() -> str | None:
    """Path of a usable chromium (env CHROMIUM overrides), or None. Browsers are never downloaded."""
    for candidate in (os.environ.get("CHROMIUM"), *CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppServer:
    process: subprocess.Popen
    port: int
    base: Path
    log_path: Path
    started_at: float  # time.monotonic() just before `streamlit run` was launched

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    @classmethod
    def start(cls, base: Path, env: dict[str, str] | None = None, timeout: float = 120.0) -> AppServer:
        """`streamlit run streamlit_app.py` on a free port, with runs/jobs/cache under `base`; waits for health."""
        base = Path(base)
        base.mkdir(parents=True, exist_ok=True)
        port = free_port()
        full_env = {**os.environ, "SENTIMENT_RUNS_DIR": str(base / "runs"), "SENTIMENT_JOBS_DIR": str(base / "jobs"),
                    "SENTIMENT_CACHE": str(base / "cache"), "PYTHONUNBUFFERED": "1", **(env or {})}
        log_path = base / "server.log"
        log = open(log_path, "ab")  # noqa: SIM115 (kept open for the server's lifetime)
        started_at = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=full_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group: stop() takes the job workers down with it
        log.close()
        server = cls(process, port, base, log_path, started_at)
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {process.returncode}:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                    if response.status == 200 and response.read().strip() == b"ok":
                        return server
            except OSError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"streamlit did not answer /_stcore/health within {timeout:.0f} s:\n"
                                   f"{server.log_tail()}")
            time.sleep(0.25)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the whole process group (server and job workers), SIGKILL after `grace` seconds."""
        if self.process.poll() is not None:
            self._kill_group(signal.SIGKILL)  # workers may outlive a dead server
            return
        self._kill_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        self._kill_group(signal.SIGKILL)
        self.process.wait(timeout=10)

    def _kill_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)  # the group id is the server's pid (start_new_session)


def wait_idle(page, settle_ms: int = 300, timeout_ms: float | None = None) -> None:
    """Let a triggered rerun start, then wait until the script has finished and the websocket is up."""
    page.wait_for_timeout(settle_ms)
    page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout_ms)


def full_page_screenshot(page, path: Path, max_height: int = 12_000) -> None:
    """The app scrolls inside stMain, not the window: grow the viewport to the content, then shoot."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 0")
    size = page.viewport_size or {"width": 1400, "height": 1000}
    if height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": min(int(height) + 50, max_height)})
        page.wait_for_timeout(300)  # charts re-layout to the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
