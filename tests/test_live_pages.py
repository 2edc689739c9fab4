"""Pages watching a training on a real app server, spoken to over Streamlit's websocket protocol.

Jobs are synthetic (benchmarks/watch_cost.py writes their events as a worker would), so what is tested
is the page: it follows the job, and once the job ends it shows the final state within 5 s, on a server
whose cores are busy with training-like work.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import tempfile
from pathlib import Path

import pytest

from benchmarks.appserver import AppServer
from benchmarks.watch_cost import STALE_AFTER, watch


def _burn() -> None:
    while True:
        pass


@pytest.mark.e2e
def test_watching_pages_show_the_end_within_5_s_on_a_busy_server():
    """8 pages watch their own running job while every core is busy (as with trainings running);
    every job then ends at once, and each page must show "done" within STALE_AFTER seconds."""
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(os.cpu_count() or 2)]
    server = AppServer.start(Path(tempfile.mkdtemp(prefix="live-pages-")))
    try:
        for burner in burners:
            burner.start()
        result = asyncio.run(watch(server, sessions=8, seconds=12, warmup=4))
    finally:
        for burner in burners:
            burner.kill()
        server.stop()
    assert result["errors"] == []
    assert result["stale_pages"] == 0, result
    assert result["end_shown_seconds_max"] <= STALE_AFTER
    assert result["refresh_seconds_p50"] is not None  # the pages were refreshing on their own meanwhile
