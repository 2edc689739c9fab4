"""One Streamlit session, spoken over Streamlit's own websocket protocol as the browser speaks it.

A light stand-in for a browser tab in load tests (benchmarks/loadtest.py --client protocol): it opens
/_stcore/stream, sends BackMsg.rerun_script with the ClientState a browser would send, and keeps what the
ForwardMsgs say is on the page. What it copies from Streamlit 1.67's frontend:

- the first rerun names the page by its URL path (page_name); later ones by page_script_hash, taken from
  new_session; a page change sends the hash from the `navigation` message and drops the query string;
- every rerun carries the session's widget states: each widget's value is recorded when its element
  arrives (its `value` when the server set one, else its `default`), as a mounted widget does, and
  replaced when "the user" sets it; a button click is a trigger_value sent once; widgets no longer on the
  page are forgotten when a run ends; a widget inside a fragment reruns only that fragment;
- `auto_rerun` (a fragment's run_every) starts a timer that sends rerun_script with the fragment id and
  is_auto_rerun=True at that interval; a full run's new_session and a page change cancel every timer,
  `stop_auto_rerun` cancels the ones it names;
- the forward-message cache: large messages (metadata.cacheable) are kept by hash, each rerun lists the
  hashes it holds (cached_message_hashes), the server then sends ref_hash instead, and entries expire
  after max_cached_message_age runs as in the browser;
- the element tree: deltas go to metadata.delta_path; when a run ends, elements it did not send again are
  removed (for a fragment run, only the fragment's).

Not copied: static files and /_stcore/health polling, host heartbeats, file uploads, forms, and drawing.

    async with StreamlitSession("http://localhost:8501") as s:     # opens the app's default page
        await s.goto("Train")
        await s.set("train_name", "load-001")
        await s.click("train_button")
        print(s.texts(), s.metrics(), s.query_string)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.NumberInput_pb2 import NumberInput
from streamlit.proto.WidgetStates_pb2 import WidgetState

FINISHED = ForwardMsg.ScriptFinishedStatus
ID_PREFIX = "$$ID-"  # a widget id is "$$ID-<hash>-<user key>" (streamlit.elements.lib.utils)
TEXT_KINDS = ("markdown", "heading", "alert", "text", "code", "exception")


@dataclass
class Node:
    """One element or block on the page."""

    kind: str  # "block", or the Element's type: "markdown", "metric", "button", ...
    proto: object  # the Element's own message (e.g. a Markdown), or the Block
    run: str  # script_run_id of the run that sent it
    fragment: str  # the fragment that drew it, or ""
    script: str  # active_script_hash: the main script (sidebar, navigation) or the page's

    @property
    def widget_id(self) -> str:
        return getattr(self.proto, "id", "") if self.kind != "block" else ""


def widget_key(widget_id: str) -> str | None:
    if not widget_id.startswith(ID_PREFIX):
        return None
    key = widget_id[len(ID_PREFIX):].split("-", 1)[-1]
    return None if key == "None" else key


def mounted_value(kind: str, p) -> tuple[str, object] | None:
    """(WidgetState field, value) a freshly drawn widget reports before anyone touches it, or None."""
    if kind in ("text_input", "text_area"):
        value = p.value if p.set_value else (p.default if p.HasField("default") else None)
        return None if value is None else ("string_value", value)
    if kind == "selectbox":
        if p.set_value:
            return ("string_value", p.raw_value) if p.HasField("raw_value") else None
        return ("string_value", p.options[p.default]) if p.HasField("default") and p.options else None
    if kind == "multiselect":
        return "string_array_value", list(p.raw_values) if p.set_value else [p.options[i] for i in p.default]
    if kind == "button_group":
        return "string_array_value", list(p.raw_values) if p.set_value else [p.options[i].content for i in p.default]
    if kind == "slider":
        return "double_array_value", list(p.value if p.set_value else p.default)
    if kind == "number_input":
        value = p.value if p.set_value else (p.default if p.HasField("default") else None)
        if value is None:
            return None
        return ("int_value", int(value)) if p.data_type == NumberInput.INT else ("double_value", value)
    if kind == "checkbox":
        return "bool_value", p.value if p.set_value else p.default
    return None


def widget_state(widget_id: str, field: str, value) -> WidgetState:
    state = WidgetState(id=widget_id)
    if field.endswith("_array_value"):
        getattr(state, field).data.extend(value)
    else:
        setattr(state, field, value)
    return state


class StreamlitSession:
    def __init__(self, url: str, timeout: float = 60.0, auto_rerun: bool = True):
        parts = urllib.parse.urlsplit(url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.url_path = parts.path.strip("/")
        self.query_string = parts.query
        self.timeout, self.auto_rerun = timeout, auto_rerun
        self.nodes: dict[tuple[int, ...], Node] = {}
        self.states: dict[str, WidgetState] = {}  # the frontend's widget states, by widget id
        self.pages: dict[str, str] = {}  # page title and URL path -> page_script_hash
        self.page_hash = self.main_hash = self.run_id = ""
        self.fragments_this_run: tuple[str, ...] = ()
        self.running = False
        self.exceptions: list[str] = []  # st.exception / tracebacks shown, and session events
        self.fragment_seconds: dict[float, list[float]] = {}  # run_every interval -> auto-rerun latencies
        self.messages = self.bytes_in = 0
        self.log: collections.deque[str] = collections.deque(maxlen=400)  # recent reruns sent and runs seen
        self._awaiting: str | None = None  # the run a rerun waits for: "" a full run, else a fragment id
        self._timers: dict[str, tuple[float, asyncio.Task]] = {}
        self._fragment_sent: dict[str, tuple[float, float]] = {}  # fragment id -> (interval, sent at)
        self._cache: dict[str, list] = {}  # hash -> [ForwardMsg, run count when last used, fragment id]
        self._cache_runs, self._cache_max_age = 0, 2
        self._changed = asyncio.Condition()
        self._send_lock = asyncio.Lock()
        self._ws = self._reader = None
        self.closed = ""  # why the websocket is no longer read, once it is not

    # ------------------------------------------------------------ connection
    async def __aenter__(self) -> StreamlitSession:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def connect(self) -> float:
        """Open the websocket and run the page in the URL; seconds until that run ended."""
        ws_url = self.base.replace("http", "ws", 1) + "/_stcore/stream"
        self._ws = await websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None,
                                            open_timeout=self.timeout)
        self._reader = asyncio.create_task(self._read(), name="streamlit-reader")
        return await self._rerun_and_wait(page_name=self.url_path)

    async def close(self) -> None:
        self.closed = self.closed or "closed by the client"
        self._cancel_timers()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    # ------------------------------------------------------------ what a user does
    async def goto(self, page: str) -> float:
        """Open another page (its title or URL path), as a click in the sidebar does; seconds until drawn."""
        target = self.pages.get(page)
        if target is None:
            raise KeyError(f"no page {page!r}; pages: {sorted(self.pages)}")
        self._cancel_timers()
        if target != self.page_hash:
            self.query_string = ""  # the browser keeps only query parameters bound to widgets
        kept = {n.widget_id for n in self.nodes.values() if n.script == self.main_hash and n.widget_id}
        states = [s for i, s in self.states.items() if i in kept]
        return await self._rerun_and_wait(page_hash=target, states=states)

    async def set(self, key: str, value) -> float:
        """Give a widget a value and rerun (a text box's Enter, a slider released, an option picked)."""
        node = self.widget(key)
        field = {"text_input": "string_value", "text_area": "string_value", "selectbox": "string_value",
                 "slider": "double_array_value", "checkbox": "bool_value", "multiselect": "string_array_value",
                 "button_group": "string_array_value"}.get(node.kind)
        if node.kind == "number_input":
            field = "int_value" if node.proto.data_type == NumberInput.INT else "double_value"
        if field is None:
            raise TypeError(f"cannot set a {node.kind} ({key})")
        if node.kind == "selectbox" and isinstance(value, int):
            value = node.proto.options[value]
        if node.kind == "button_group" and isinstance(value, str):
            value = [value]
        if node.kind == "slider" and not isinstance(value, list | tuple):
            value = [value]
        self.states[node.widget_id] = widget_state(node.widget_id, field, value)
        return await self._rerun_and_wait(fragment_id=node.fragment)

    async def click(self, key: str) -> float:
        """Press a button: its trigger is sent with this one rerun, then forgotten."""
        node = self.widget(key)
        trigger = widget_state(node.widget_id, "trigger_value", True)
        return await self._rerun_and_wait(fragment_id=node.fragment, extra=[trigger])

    async def rerun_fragment(self, fragment_id: str) -> None:
        """What a run_every timer sends: the fragment's auto-rerun, without waiting for it."""
        await self._send(fragment_id=fragment_id, auto=True)

    # ------------------------------------------------------------ what the page shows
    def widget(self, key: str) -> Node:
        for node in self.nodes.values():
            if node.widget_id and widget_key(node.widget_id) == key:
                return node
        raise KeyError(f"no widget {key!r} on the page")

    def widgets(self) -> dict[str, Node]:
        return {k: n for n in self.nodes.values() if (k := widget_key(n.widget_id))}

    def elements(self, *kinds: str) -> list[Node]:
        return [self.nodes[p] for p in sorted(self.nodes) if not kinds or self.nodes[p].kind in kinds]

    def texts(self) -> list[str]:
        """Markdown, captions, headings, alerts and exception messages, in page order."""
        out = []
        for node in self.elements(*TEXT_KINDS):
            p = node.proto
            out.append(p.message if node.kind == "exception" else p.body)
        return out

    def metrics(self) -> list[tuple[str, str]]:
        return [(n.proto.label, n.proto.body) for n in self.elements("metric")]

    def find_text(self, prefix: str) -> str | None:
        return next((t for t in self.texts() if t.startswith(prefix)), None)

    async def wait_for(self, predicate: Callable[[], object], timeout: float | None = None):
        """Wait until predicate() is true, re-checked after every ForwardMsg; returns its value.
        Raises ConnectionError when the websocket closes first."""
        value = None

        def done() -> object:
            nonlocal value
            value = predicate()
            return value or self.closed

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(done), timeout or self.timeout)
        if not value:
            raise ConnectionError(f"the session ended: {self.closed}")
        return value

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until the run asked for has started and the session runs nothing."""
        await self.wait_for(lambda: self._awaiting is None and not self.running, timeout)

    # ------------------------------------------------------------ sending
    async def _rerun_and_wait(self, page_name: str = "", page_hash: str | None = None,
                              states: Iterable[WidgetState] | None = None, fragment_id: str = "",
                              extra: Iterable[WidgetState] = ()) -> float:
        started = time.monotonic()
        self._awaiting = fragment_id
        await self._send(page_name=page_name, page_hash=page_hash, states=states, fragment_id=fragment_id,
                         extra=extra)
        await self.wait_idle()
        return time.monotonic() - started

    async def _send(self, page_name: str = "", page_hash: str | None = None,
                    states: Iterable[WidgetState] | None = None, fragment_id: str = "", auto: bool = False,
                    extra: Iterable[WidgetState] = ()) -> None:
        msg = BackMsg()
        rerun = msg.rerun_script
        rerun.query_string = self.query_string
        rerun.widget_states.widgets.extend([*(self.states.values() if states is None else states), *extra])
        rerun.page_script_hash = self.page_hash if page_hash is None else page_hash
        rerun.page_name = page_name
        rerun.fragment_id = fragment_id
        rerun.is_auto_rerun = auto
        rerun.cached_message_hashes.extend(self._cache)
        info = rerun.context_info
        info.timezone, info.locale, info.color_scheme = "UTC", "en-US", "light"
        info.url = f"{self.base}/{self.url_path}" + (f"?{self.query_string}" if self.query_string else "")
        async with self._send_lock:
            await self._ws.send(msg.SerializeToString())
        self.note(f"sent rerun {fragment_id[:8] or 'app'}{' (auto)' if auto else ''}")

    def note(self, event: str) -> None:
        self.log.append(f"{time.monotonic():.2f} {event}")

    # ------------------------------------------------------------ receiving
    async def _read(self) -> None:
        try:
            async for data in self._ws:
                self.messages += 1
                self.bytes_in += len(data)
                msg = ForwardMsg()
                msg.ParseFromString(data)
                await self._deliver(msg)
            self.closed = "the server closed the websocket"
        except Exception as error:
            self.closed = f"{type(error).__name__}: {error}"
            self.exceptions.append(f"client: {self.closed}")
        finally:
            self.closed = self.closed or "closed"
            self._cancel_timers()
            async with self._changed:
                self._changed.notify_all()

    async def _deliver(self, msg: ForwardMsg) -> None:
        self._handle(msg)
        async with self._changed:
            self._changed.notify_all()

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind in ("new_session", "script_finished"):
            status = FINISHED.Name(msg.script_finished) if kind == "script_finished" else ""
            self.note(f"{kind} {status} {[f[:8] for f in msg.metadata.run.fragment_ids] or 'app'}")
        if kind == "ref_hash":
            cached = self._cache.get(msg.ref_hash)
            if cached is None:
                raise RuntimeError(f"ForwardMsg cache miss for {msg.ref_hash}")
            cached[1] = self._cache_runs
            full = ForwardMsg()
            full.CopyFrom(cached[0])
            full.metadata.CopyFrom(msg.metadata)
            msg, kind = full, full.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash:
            self._cache[msg.hash] = [msg, self._cache_runs, msg.delta.fragment_id if kind == "delta" else ""]
        if kind == "new_session":
            self._new_session(msg)
        elif kind == "delta":
            self._delta(msg)
        elif kind == "script_finished":
            self._finished(msg)
        elif kind == "navigation":
            # The page shown: a fragment's rerun names it, and an st.rerun() in that fragment reruns it
            # (sent with the main script's hash instead, the server drew the default page).
            self.page_hash = msg.navigation.page_script_hash or self.page_hash
            for page in msg.navigation.app_pages:
                self.pages[page.page_name] = self.pages[page.url_pathname] = page.page_script_hash
                if page.is_default:
                    self.pages[""] = page.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            self._start_timer(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fragment_id in msg.stop_auto_rerun.fragment_ids:
                self._stop_timer(fragment_id)
        elif kind == "session_event" and msg.session_event.WhichOneof("type") == "script_compilation_exception":
            self.exceptions.append(msg.session_event.script_compilation_exception.message)

    def _new_session(self, msg: ForwardMsg) -> None:
        session = msg.new_session
        self.page_hash, self.main_hash = session.page_script_hash, session.main_script_hash
        self._cache_max_age = session.config.max_cached_message_age or self._cache_max_age
        for page in session.app_pages:  # the old multipage mode; st.navigation sends `navigation` instead
            self.pages.setdefault(page.page_name, page.page_script_hash)
        self.run_id = msg.metadata.run.script_run_id
        self.fragments_this_run = tuple(msg.metadata.run.fragment_ids)
        if not self.fragments_this_run:
            self._cancel_timers()  # as the browser does on every full run; the run sends them again
        self.running = True
        if self._awaiting is not None and (self._awaiting in self.fragments_this_run
                                           or not (self._awaiting or self.fragments_this_run)):
            self._awaiting = None

    def _delta(self, msg: ForwardMsg) -> None:
        path = tuple(msg.metadata.delta_path)
        delta = msg.delta
        kind = delta.WhichOneof("type")
        if kind == "new_element":
            element: Element = delta.new_element
            sub = element.WhichOneof("type")
            node = Node(sub, getattr(element, sub), self.run_id, delta.fragment_id, msg.metadata.active_script_hash)
            for other in [p for p in self.nodes if p[: len(path)] == path and p != path]:
                del self.nodes[other]  # an element replaced a block
            if sub == "exception":
                self.exceptions.append(f"{node.proto.type}: {node.proto.message}")
            if node.widget_id:
                self._mount(node)
        elif kind == "add_block":
            node = Node("block", delta.add_block, self.run_id, delta.fragment_id, msg.metadata.active_script_hash)
        else:
            return  # new_transient: spinners and the like
        self.nodes[path] = node

    def _mount(self, node: Node) -> None:
        found = mounted_value(node.kind, node.proto)
        if found and (node.widget_id not in self.states or getattr(node.proto, "set_value", False)):
            self.states[node.widget_id] = widget_state(node.widget_id, *found)

    def _finished(self, msg: ForwardMsg) -> None:
        status = msg.script_finished
        if status == FINISHED.FINISHED_EARLY_FOR_RERUN:
            return  # another run follows at once
        self.running = False
        if status in (FINISHED.FINISHED_SUCCESSFULLY, FINISHED.FINISHED_FRAGMENT_RUN_SUCCESSFULLY):
            fragments = self.fragments_this_run
            stale = [p for p, n in self.nodes.items()
                     if n.run != self.run_id and (not fragments or n.fragment in fragments)]
            for path in stale:
                del self.nodes[path]
            for path in sorted(self.nodes):  # orphans of removed blocks (parents sort first)
                if len(path) > 2 and path[:-1] not in self.nodes:
                    del self.nodes[path]
            alive = {n.widget_id for n in self.nodes.values() if n.widget_id}
            self.states = {i: s for i, s in self.states.items() if i in alive}
            self._age_cache(fragments)
        now = time.monotonic()
        for fragment_id in self.fragments_this_run:
            if fragment_id in self._fragment_sent:
                interval, sent = self._fragment_sent.pop(fragment_id)
                self.fragment_seconds.setdefault(interval, []).append(now - sent)

    def _age_cache(self, fragments: tuple[str, ...]) -> None:
        self._cache_runs += 1
        for key, (_, used, fragment) in list(self._cache.items()):
            if fragments and fragment not in fragments:
                continue
            if self._cache_runs - used > self._cache_max_age:
                del self._cache[key]

    # ------------------------------------------------------------ run_every timers
    def _start_timer(self, fragment_id: str, interval: float) -> None:
        if not self.auto_rerun or not fragment_id:
            return
        if fragment_id in self._timers and self._timers[fragment_id][0] == interval:
            return
        self._stop_timer(fragment_id)
        self._timers[fragment_id] = (interval, asyncio.create_task(self._tick(fragment_id, interval)))

    async def _tick(self, fragment_id: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self._fragment_sent.setdefault(fragment_id, (interval, time.monotonic()))
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.rerun_fragment(fragment_id)

    def _stop_timer(self, fragment_id: str) -> None:
        timer = self._timers.pop(fragment_id, None)
        self._fragment_sent.pop(fragment_id, None)  # a rerun still in flight is dropped or answered late
        if timer:
            timer[1].cancel()

    def _cancel_timers(self) -> None:
        for fragment_id in list(self._timers):
            self._stop_timer(fragment_id)
