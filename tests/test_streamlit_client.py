"""benchmarks/streamlit_client.py: the load test's protocol client.

The unit tests feed it ForwardMsgs by hand (no server); the last one (e2e) drives the real app server.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from benchmarks.streamlit_client import StreamlitSession, mounted_value, widget_key


class FakeSocket:
    def __init__(self):
        self.sent: list[BackMsg] = []

    async def send(self, data: bytes) -> None:
        msg = BackMsg()
        msg.ParseFromString(data)
        self.sent.append(msg)


def new_session(run: str, fragments=(), page="page", main="main") -> ForwardMsg:
    msg = ForwardMsg()
    msg.new_session.page_script_hash, msg.new_session.main_script_hash = page, main
    msg.metadata.run.script_run_id = run
    msg.metadata.run.fragment_ids.extend(fragments)
    return msg


def markdown(path, body: str, fragment: str = "", script: str = "page") -> ForwardMsg:
    msg = ForwardMsg()
    msg.metadata.delta_path[:] = path
    msg.metadata.active_script_hash = script
    msg.delta.new_element.markdown.body = body
    msg.delta.fragment_id = fragment
    return msg


def block(path, fragment: str = "") -> ForwardMsg:
    msg = ForwardMsg()
    msg.metadata.delta_path[:] = path
    msg.delta.add_block.vertical.SetInParent()
    msg.delta.fragment_id = fragment
    return msg


def text_area(path, key: str, default: str, value: str | None = None) -> ForwardMsg:
    msg = ForwardMsg()
    msg.metadata.delta_path[:] = path
    area = msg.delta.new_element.text_area
    area.id, area.default = f"$$ID-abc123-{key}", default
    if value is not None:
        area.value, area.set_value = value, True
    return msg


def finished(status=ForwardMsg.FINISHED_SUCCESSFULLY) -> ForwardMsg:
    msg = ForwardMsg()
    msg.script_finished = status
    return msg


def feed(session: StreamlitSession, *messages: ForwardMsg) -> None:
    for msg in messages:
        session._handle(msg)


def test_widget_key_and_mounted_values():
    assert widget_key("$$ID-0a1b-train_name") == "train_name"
    assert widget_key("$$ID-0a1b-my-key-with-dashes") == "my-key-with-dashes"
    assert widget_key("$$ID-0a1b-None") is None and widget_key("plain") is None
    area = text_area([0, 1], "t", "hello").delta.new_element.text_area
    assert mounted_value("text_area", area) == ("string_value", "hello")
    area.value, area.set_value = "set by the server", True
    assert mounted_value("text_area", area) == ("string_value", "set by the server")
    box = ForwardMsg().delta.new_element.selectbox
    box.options[:] = ["a", "b"]
    box.default = 1
    assert mounted_value("selectbox", box) == ("string_value", "b")
    assert mounted_value("button", ForwardMsg().delta.new_element.button) is None


def test_tree_widgets_and_stale_elements():
    s = StreamlitSession("http://localhost:1/train?job=1")
    assert (s.url_path, s.query_string) == ("train", "job=1")
    feed(s, new_session("r1"), markdown([0, 0], "Title"), markdown([0, 1], "old"), text_area([0, 2], "t", "x"),
         block([0, 3], fragment="f"), markdown([0, 3, 0], "in the fragment", fragment="f"), finished())
    assert s.texts() == ["Title", "old", "in the fragment"] and not s.running
    assert s.widget("t").kind == "text_area" and s.states[s.widget("t").widget_id].string_value == "x"
    # a full run that does not draw [0, 1] any more, nor the widget: both go when it ends
    feed(s, new_session("r2"), markdown([0, 0], "Title"), block([0, 3], fragment="f"),
         markdown([0, 3, 0], "again", fragment="f"))
    assert s.running and s.texts() == ["Title", "old", "again"]  # until the run ends, old elements stay
    feed(s, finished())
    assert s.texts() == ["Title", "again"] and not s.states
    # a fragment run only clears the fragment's stale elements
    feed(s, markdown([0, 3, 1], "second in fragment", fragment="f"), markdown([0, 5], "outside", fragment=""))
    feed(s, new_session("r3", ["f"]), block([0, 3], fragment="f"),
         markdown([0, 3, 0], "fragment redrawn", fragment="f"), finished(ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY))
    assert s.texts() == ["Title", "fragment redrawn", "outside"]


def test_ref_hash_uses_cached_message_with_new_path():
    s = StreamlitSession("http://localhost:1/")
    big = markdown([0, 0], "a large chart")
    big.hash, big.metadata.cacheable = "h1", True
    feed(s, new_session("r1"), big, finished())
    assert "h1" in s._cache
    ref = ForwardMsg()
    ref.ref_hash = "h1"
    ref.metadata.delta_path[:] = [0, 5]
    feed(s, new_session("r2"), ref, finished())
    assert [p for p in s.nodes] == [(0, 5)] and s.texts() == ["a large chart"]


def test_reruns_send_what_a_browser_sends():
    async def scenario() -> list[BackMsg]:
        s = StreamlitSession("http://localhost:1/")
        s._ws = FakeSocket()
        feed(s, new_session("r1", page="p1"), text_area([0, 0], "t", "typed before"), finished())
        s.query_string = "job=abc"
        task = asyncio.create_task(s.set("t", "new text"))
        await asyncio.sleep(0.01)
        assert not task.done()  # it waits for the run it asked for
        for msg in new_session("r2", page="p1"), text_area([0, 0], "t", "typed before"), finished():
            await s._deliver(msg)
        await asyncio.wait_for(task, 1)
        # run_every: a timer sends auto-reruns of the fragment; a full run's new_session cancels it
        feed(s, _auto_rerun("frag", 0.01))
        await asyncio.sleep(0.05)
        feed(s, new_session("r3", page="p1"))
        count = len(s._ws.sent)
        await asyncio.sleep(0.05)
        assert len(s._ws.sent) == count
        return s._ws.sent

    sent = asyncio.run(scenario())
    first = sent[0].rerun_script
    assert first.query_string == "job=abc" and first.page_script_hash == "p1" and not first.fragment_id
    assert [(w.id, w.string_value) for w in first.widget_states.widgets] == [("$$ID-abc123-t", "new text")]
    autos = [m.rerun_script for m in sent[1:]]
    assert autos and all(a.fragment_id == "frag" and a.is_auto_rerun for a in autos)
    assert all(a.widget_states.widgets[0].string_value == "new text" for a in autos)


def test_a_fragment_rerun_names_the_page_that_navigation_shows():
    """With st.navigation, new_session carries the main script's hash and `navigation` the page's. The
    browser sends the page's with a fragment's rerun, and an st.rerun() in that fragment redraws that
    page (sent the main script's, the server drew the default page instead: a watching page left Train)."""
    async def scenario() -> BackMsg:
        s = StreamlitSession("http://localhost:1/train")
        s._ws = FakeSocket()
        nav = ForwardMsg()
        nav.navigation.page_script_hash = "train-hash"
        feed(s, new_session("r1", page="main-hash"), nav, finished())
        await s.rerun_fragment("frag")
        return s._ws.sent[-1]

    rerun = asyncio.run(scenario()).rerun_script
    assert rerun.fragment_id == "frag" and rerun.page_script_hash == "train-hash"


def test_waiting_ends_when_the_websocket_does():
    async def scenario() -> None:
        s = StreamlitSession("http://localhost:1/")
        waiter = asyncio.create_task(s.wait_for(lambda: False, timeout=5))
        await asyncio.sleep(0.01)
        s.closed = "gone"
        async with s._changed:
            s._changed.notify_all()
        with pytest.raises(ConnectionError, match="gone"):
            await waiter

    asyncio.run(scenario())


def _auto_rerun(fragment: str, interval: float) -> ForwardMsg:
    msg = ForwardMsg()
    msg.auto_rerun.fragment_id, msg.auto_rerun.interval = fragment, interval
    return msg


@pytest.mark.e2e
def test_the_app_over_the_protocol():
    """Home scores a typed review, and Predict's button scores one, as in the browser."""
    from benchmarks.appserver import AppServer

    async def scenario(url: str) -> tuple[list, list, dict]:
        async with StreamlitSession(url, timeout=120) as s:
            await s.set("home_text", "A wonderful, moving film with a great cast.")
            home = s.metrics()
            await s.goto("Predict")
            await s.set("predict_text", "Dreadful and boring, a waste of time.")
            await s.click("predict_button")
            return home, s.metrics(), {"exceptions": s.exceptions, "pages": s.pages}

    server = AppServer.start(Path(tempfile.mkdtemp(prefix="client-test-")))
    try:
        home, predict, info = asyncio.run(scenario(server.url))
    finally:
        server.stop()
    assert not info["exceptions"] and {"Home", "Train", "train"} <= set(info["pages"])
    assert dict(home)["Label"] == "positive" and dict(predict)["Label"] == "negative"
