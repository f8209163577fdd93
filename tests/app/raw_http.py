"""The HTTP protocol a browser speaks to a Gradio 6 app, for the requests gradio_client cannot
send: NaN and ±Infinity (its JSON encoder refuses them), gr.HTML trigger payloads of private
events, file references that were never uploaded, and a heartbeat that is dropped like a closed
tab. Not a test module: the app tests import it."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator

import httpx

TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(demo) -> str:
    """Launch ``demo`` the way app.py does (launch_kwargs), on a free port; its local URL."""
    from vae_explorer.ui import launch_kwargs

    demo.queue(default_concurrency_limit=1, max_size=64)
    kw = {k: v for k, v in launch_kwargs().items() if k not in ("server_port", "server_name")}
    _, url, _ = demo.launch(prevent_thread_lock=True, server_port=free_port(), quiet=True, **kw)
    return url


def _post_json(url: str, body: dict) -> httpx.Response:
    # json.dumps writes NaN and Infinity as the bare tokens Python's json module reads back.
    return httpx.post(url, content=json.dumps(body), headers={"content-type": "application/json"}, timeout=30)


def _sse(response: httpx.Response) -> Iterator[tuple[str | None, str]]:
    """(event name or None, data) of each server-sent event."""
    event, data = None, []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def call(url: str, api_name: str, data: list) -> tuple[str, object]:
    """Run a public endpoint through Gradio's REST route (/gradio_api/call/<api_name>) in a fresh
    session; ("complete", outputs) or ("error", the message the user would see, or None when
    Gradio shows its bare "Error")."""
    r = _post_json(f"{url}gradio_api/call/{api_name.strip('/')}", {"data": data})
    if r.status_code != 200:
        return "http", r.status_code
    event_id = r.json()["event_id"]
    with httpx.stream("GET", f"{url}gradio_api/call/{api_name.strip('/')}/{event_id}", timeout=TIMEOUT) as s:
        for event, payload in _sse(s):
            if event == "complete":
                return "complete", json.loads(payload)
            if event == "error":
                body = json.loads(payload) if payload not in ("", "null") else None
                return "error", body.get("error") if isinstance(body, dict) else None
    raise AssertionError(f"{api_name}: the stream ended without a result")


def config(url: str) -> dict:
    return httpx.get(f"{url}config", timeout=30).json()


def dependency(url: str, *, api_name: str | None = None, elem_id: str | None = None, trigger: str = "click"):
    """(fn_index, trigger component id) of an event: by API name, or by the elem_id of the
    component whose ``trigger`` event it is (private events have no API name)."""
    cfg = config(url)
    if api_name is not None:
        dep = next(d for d in cfg["dependencies"] if d.get("api_name") == api_name)
        return dep["id"], dep["targets"][0][0] if dep["targets"] else None
    comp = next(c["id"] for c in cfg["components"] if c.get("props", {}).get("elem_id") == elem_id)
    dep = next(d for d in cfg["dependencies"] if [comp, trigger] in [list(t) for t in d["targets"]])
    return dep["id"], comp


def join(url: str, fn_index: int, data: list, session: str, event_data=None, trigger_id=None) -> str:
    """Queue an event the way the browser does; its event id."""
    body = {
        "data": data,
        "event_data": event_data,
        "fn_index": fn_index,
        "trigger_id": trigger_id,
        "session_hash": session,
    }
    r = _post_json(f"{url}gradio_api/queue/join", body)
    r.raise_for_status()
    return r.json()["event_id"]


def messages(url: str, session: str) -> Iterator[dict]:
    """The session's queue messages (estimation, process_generating, log, process_completed, ...)
    as they arrive; close the iterator to drop the connection."""
    with httpx.stream("GET", f"{url}gradio_api/queue/data?session_hash={session}", timeout=TIMEOUT) as s:
        for _, payload in _sse(s):
            yield json.loads(payload)


def run_event(url: str, fn_index: int, data: list, session: str | None = None, **kw) -> tuple[dict, list]:
    """Queue one event and read until it completes: (its process_completed message, every
    message of that event before it)."""
    session = session or uuid.uuid4().hex
    event_id = join(url, fn_index, data, session, **kw)
    seen = []
    stream = messages(url, session)
    try:
        for msg in stream:
            if msg.get("event_id") != event_id:
                continue
            if msg.get("msg") == "process_completed":
                return msg, seen
            seen.append(msg)
    finally:
        stream.close()
    raise AssertionError("the queue stream ended before the event completed")


def heartbeat(url: str, session: str):
    """Open the connection a browser tab keeps while it is open (a context manager: leaving it
    is closing the tab)."""
    return httpx.stream("GET", f"{url}gradio_api/heartbeat/{session}", timeout=TIMEOUT)


def upload(url: str, path) -> str:
    """Upload a file the way the browser does; the server's path for it."""
    with open(path, "rb") as f:
        r = httpx.post(f"{url}gradio_api/upload", files={"files": (str(path), f)}, timeout=60)
    r.raise_for_status()
    return r.json()[0]


def file_data(server_path: str) -> dict:
    return {"path": server_path, "meta": {"_type": "gradio.FileData"}}
