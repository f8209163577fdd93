"""A lecture hall's load: N browser sessions explore while other sessions train.

Starts the real app (`python app.py`, a subprocess on a free port, with a short session TTL),
then:

1. warm-up: one session trains for an epoch and calls every endpoint once (data sets loaded,
   code warm); the server's memory after it is the baseline. The same session then makes 20
   calls alone: the latency floor;
2. N sessions (`--clients`, 50) each get a model of their own (/reset with a seed and a hidden
   size of their own, untrained, so no two sessions' weights can be equal), record its
   fingerprint (the weights hash from /model_info and the pixels of /decode at a fixed z) and
   download it (/save_checkpoint) for step 6;
3. phase "idle": every session makes `--requests` calls, cycling through click-decodes
   (/decode_point), interpolation (/interp_frame, /interp_strip) and /encode_image of a small
   PNG of its own, pausing a random 0-2x`--think` seconds between calls (a student's pace;
   0 = as fast as possible). Every 10 calls and at the end it checks its fingerprint again;
4. phase "training": `--trainers` (2) more sessions, gradio_client Clients, start /train with
   client.submit (Fashion-MNIST when it is on this machine, else digits) and, once training
   streams, the N sessions repeat step 3; then the trainings are stopped (/stop; one still
   waiting in the queue is cancelled). With the app's default of one training at a time, the
   second waits in the queue: that is what two students pressing Start get;
5. the sessions stay connected but idle until their workspaces expire (TTL + Gradio's 1-second
   state sweep); the server's memory then; every session is asked /model_info, which must now
   show a fresh workspace (the shipped model), proving the old one was dropped;
6. isolation, checked offline: every image any session received is recomputed here with the
   app's own handlers from that session's downloaded model and must match pixel for pixel; no
   two sessions may share a weights hash or a fingerprint.

A session (`--engine`) makes the requests a browser tab makes (engine "http", the default:
a heartbeat connection held open, POST /queue/join, the event stream, a GET per returned image,
on a keep-alive connection), or is a gradio_client.Client ("gradio_client"), or half of them
each ("mixed"). gradio_client polls every 50 ms on two threads per call: 50 of them in one
process burn more CPU than the server and measure themselves, so "http" is the default.

Reported: p50/p95/max latency per endpoint as a client sees it (upload, queue, handler and
image download included), split by whether a training was running during the call, with the
server's own time for the event and where the rest went; errors with the first messages; the
server's RSS (children included) at start, after warm-up, at peak and after expiry; CPU seconds
of the server and of this (client) process, which shares the machine. Goal on 2 cores: zero
errors, /decode_point p95 < 500 ms while training runs, memory back near the baseline after the
sessions expire.

    python bench/bench_load.py [--clients 50] [--requests 30] [--think 1.0] [--trainers 2]
        [--train-concurrency N] [--ttl 60] [--train-dataset auto] [--engine http] [--json PATH]

Ctrl-C stops the run and the server.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx
import numpy as np
from gradio_client import Client, handle_file
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STATE_SWEEP_S = 1.0  # gradio/route_utils.py `_delete_state`: expired State is dropped every second
CHECK_EVERY = 10  # calls between two fingerprint checks of a session
FIXED_Z = "[0.3, -0.7]"  # the /decode of this z is a fingerprint of a session's decoder
# What each session cycles through (its start shifted by its index, so the mix is even at any moment).
OPS = (
    "decode_point",
    "interp_frame",
    "encode_image",
    "decode_point",
    "interp_strip",
    "decode_point",
    "interp_frame",
)
DECODE_GOAL_MS = 500.0
# Where a call's time goes (engine "http"): uploading its file, POST /queue/join, waiting in the
# queue until the event starts, running (the handler and Gradio's pre/postprocessing, until the
# result reaches the client), fetching the images it returned.
PARTS = ("upload", "join", "queued", "run", "download")
FLOOR_CALLS = 20  # calls of one client alone, for the latency floor
MEMORY_NEAR = 0.10  # "near the baseline": within 10 % of the baseline RSS


@dataclasses.dataclass
class Settings:
    clients: int = 50
    requests: int = 30  # per session and phase
    think: float = 1.0  # mean pause between a session's calls, seconds (uniform on [0, 2x])
    trainers: int = 2
    train_concurrency: int | None = None  # VAE_EXPLORER_TRAIN_CONCURRENCY; None: the app's default
    train_dataset: str = "auto"  # auto: fashion-mnist if on this machine, else digits
    train_epochs: int = 30  # more than the phase needs: the trainings are stopped at its end
    ttl: float = 60.0  # VAE_EXPLORER_SESSION_TTL of the server
    phases: tuple[str, ...] = ("idle", "training")
    expiry: bool = True  # wait for the sessions to expire and check they did
    verify: bool = True  # recompute every received image from the session's own model
    timeout: float = 120.0  # seconds per call before it counts as an error
    engine: str = "http"  # "http": a browser's requests; "gradio_client": a Client each; "mixed": half each
    server_env: tuple[str, ...] = ()  # extra KEY=VALUE for the server (experiments)
    server_script: str = "app.py"  # what the server runs (experiments: a wrapper of app.py)
    seed: int = 0


@dataclasses.dataclass
class Call:
    session: int
    phase: str
    endpoint: str
    start: float
    end: float
    error: str | None = None
    training: bool = False  # a training was running at some point during the call
    server: float | None = None  # seconds the server reports for the event (engine "http")
    parts: dict[str, float] | None = None  # seconds per part of the call (engine "http", see PARTS)

    @property
    def ms(self) -> float:
        return 1000 * (self.end - self.start)


# -- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> int:
    """VmRSS of a process and all its descendants, kB (0 if it is gone)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (its waited-for children included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _train_concurrency(settings: Settings) -> int:
    if settings.train_concurrency is not None:
        return settings.train_concurrency
    return int(os.environ.get("VAE_EXPLORER_TRAIN_CONCURRENCY", "1"))  # as vae_explorer.ui.common reads it


_RUNNING: set[Server] = set()  # servers to end on Ctrl-C, SIGTERM or exit, whatever the main thread is doing
_INTERRUPTED = threading.Event()  # set by Ctrl-C / SIGTERM: every session stops making calls


def _stop_all_servers() -> None:
    for server in list(_RUNNING):
        server.kill()


atexit.register(_stop_all_servers)


class Server:
    """`python app.py` in its own process group; stop() (or leaving the `with`) ends it."""

    def __init__(
        self, env: dict[str, str], workdir: Path, script: str = "app.py", startup_timeout: float = 180.0
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = workdir / "server.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {
            **os.environ,
            "GRADIO_ANALYTICS_ENABLED": "False",
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(self.port),
            "GRADIO_TEMP_DIR": str(workdir / "gradio"),
            **env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, script],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends it and anything it started
        )
        _RUNNING.add(self)
        self._wait_ready(startup_timeout)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    r.read()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"app.py did not serve a page within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def kill(self) -> None:
        """SIGTERM to the server's process group, without waiting (safe in a signal handler)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self) -> None:
        self.kill()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        _RUNNING.discard(self)
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class MemorySampler(threading.Thread):
    """The server's RSS every `every` seconds, in the background."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append((time.monotonic(), rss_kb(self.pid)))
            self._halt.wait(self.every)

    def peak_between(self, t0: float, t1: float) -> int:
        return max((kb for t, kb in self.samples if t0 <= t <= t1), default=0)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


# -- one session ----------------------------------------------------------------------------


def png_of_a_digit(path: Path, rng: random.Random) -> None:
    """A small image of its own for a session to encode: a dark stroke on white (the app
    inverts mostly-light images), a ring or a bar at a random place and size."""
    im = Image.new("L", (64, 64), 255)
    d = ImageDraw.Draw(im)
    x0, y0 = rng.randint(4, 20), rng.randint(2, 14)
    if rng.random() < 0.5:
        d.ellipse((x0, y0, x0 + rng.randint(20, 38), y0 + rng.randint(30, 46)), outline=0, width=7)
    else:
        d.line((x0 + 20, y0, x0 + rng.randint(5, 35), y0 + 45), fill=0, width=8)
    im.save(path)


def image_array(path: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def pixels_hash(path: str) -> str:
    return hashlib.sha256(image_array(path).tobytes()).hexdigest()[:16]


class LocalFile:
    """A file a session sends (each engine uploads it its own way)."""

    def __init__(self, path: Path) -> None:
        self.path = path


class ClientEngine:
    """A gradio_client.Client: one session, exactly as a script drives the app."""

    name = "gradio_client"

    def __init__(self, url: str, out_dir: Path, timeout: float) -> None:
        self.client = Client(url, verbose=False, download_files=str(out_dir))
        self.timeout = timeout
        self.last_duration: float | None = None  # not reported by gradio_client
        self.last_parts: dict[str, float] | None = None

    def predict(self, api_name: str, *args, **kwargs):
        args = tuple(handle_file(str(a.path)) if isinstance(a, LocalFile) else a for a in args)
        job = self.client.submit(*args, api_name=api_name, **kwargs)
        try:
            return job.result(timeout=self.timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                job.cancel()
            raise

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


class Api:
    """What a browser knows from /config and a script from /info: each API name's event index,
    the kinds of its inputs and outputs, and its parameters (names, defaults) in order."""

    def __init__(self, url: str) -> None:
        cfg = httpx.get(f"{url}config", timeout=60).json()
        info = httpx.get(f"{url}gradio_api/info", timeout=60).json()
        kinds = {c["id"]: c["type"] for c in cfg["components"]}
        self.events = {
            "/" + d["api_name"]: (d["id"], [kinds[i] for i in d["inputs"]], [kinds[i] for i in d["outputs"]])
            for d in cfg["dependencies"]
            if d.get("api_name")
        }
        self.params = {name: ep["parameters"] for name, ep in info["named_endpoints"].items()}

    def payload(self, api_name: str, args: tuple, kwargs: dict) -> tuple[int, list, list[str]]:
        """(event index, the data list a browser sends, output kinds) for a call like predict's."""
        values, kwargs = list(args), dict(kwargs)
        for param in self.params[api_name][len(args) :]:
            name = param["parameter_name"]
            if name in kwargs:
                values.append(kwargs.pop(name))
            elif param["parameter_has_default"]:
                values.append(param["parameter_default"])
            else:
                raise TypeError(f"{api_name}: no value for {name}")
        if kwargs:
            raise TypeError(f"{api_name}: unknown arguments {sorted(kwargs)}")
        fn, inputs, outputs = self.events[api_name]
        it = iter(values)
        return fn, [None if kind == "state" else next(it) for kind in inputs], outputs


class HttpEngine:
    """One browser tab, by the requests a browser makes: a heartbeat connection held open while
    the tab is, and per call POST /queue/join, the session's event stream until the call
    completes, and a GET of each image it returns, on one keep-alive connection. Much cheaper
    than gradio_client (which polls every 50 ms on two threads per call), so that 50 sessions
    on the server's own 2 cores measure the server rather than the load generator."""

    name = "http"

    def __init__(self, url: str, out_dir: Path, timeout: float, api: Api) -> None:
        self.url, self.out_dir, self.api = url, out_dir, api
        self.session_hash = uuid.uuid4().hex[:11]
        self.http = httpx.Client(timeout=httpx.Timeout(timeout, connect=30))
        self.last_duration: float | None = None  # seconds the server reports for the event
        self.last_parts: dict[str, float] | None = None  # where the last call's time went
        self._n = 0
        self._heartbeat = httpx.Client(timeout=httpx.Timeout(None, connect=30))
        threading.Thread(target=self._beat, daemon=True).start()
        out_dir.mkdir(parents=True, exist_ok=True)

    def _beat(self) -> None:
        with contextlib.suppress(Exception):
            url = f"{self.url}gradio_api/heartbeat/{self.session_hash}"
            with self._heartbeat.stream("GET", url) as r:
                for _ in r.iter_bytes():
                    pass

    def _upload(self, path: Path) -> dict:
        with open(path, "rb") as f:
            r = self.http.post(f"{self.url}gradio_api/upload", files={"files": (path.name, f, "image/png")})
        r.raise_for_status()
        return {"path": r.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def _download(self, file: dict) -> str:
        r = self.http.get(file["url"])
        r.raise_for_status()
        self._n += 1
        dest = self.out_dir / f"{self._n:05d}-{Path(file['path']).name}"
        dest.write_bytes(r.content)
        return str(dest)

    def predict(self, api_name: str, *args, **kwargs):
        t = [time.monotonic()]  # start, uploaded, joined, started, completed, downloaded
        args = tuple(self._upload(a.path) if isinstance(a, LocalFile) else a for a in args)
        t.append(time.monotonic())
        fn, data, kinds = self.api.payload(api_name, args, kwargs)
        body = {"data": data, "event_data": None, "fn_index": fn, "trigger_id": None}
        r = self.http.post(
            f"{self.url}gradio_api/queue/join", json={**body, "session_hash": self.session_hash}
        )
        r.raise_for_status()
        event_id = r.json()["event_id"]
        t.append(time.monotonic())
        params = {"session_hash": self.session_hash}
        with self.http.stream("GET", f"{self.url}gradio_api/queue/data", params=params) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("event_id") != event_id:
                    continue
                if msg.get("msg") == "process_starts":
                    t.append(time.monotonic())
                if msg.get("msg") != "process_completed":
                    continue
                if len(t) < 4:
                    t.append(t[-1])
                t.append(time.monotonic())
                out = msg.get("output") or {}
                if not msg.get("success"):
                    raise RuntimeError(out.get("error") or "the app answered Error")
                self.last_duration = out.get("duration")
                values = [
                    self._download(v) if isinstance(v, dict) and v.get("url") and kind != "json" else v
                    for v, kind in zip(out["data"], kinds, strict=True)
                    if kind != "state"
                ]
                t.append(time.monotonic())
                self.last_parts = dict(zip(PARTS, np.diff(t).tolist(), strict=True))
                return values[0] if len(values) == 1 else tuple(values)
        raise RuntimeError(f"{api_name}: the event stream ended before the call completed")

    def close(self) -> None:
        self._heartbeat.close()  # a closed tab
        self.http.close()


class Session:
    """One browser session (an engine: gradio_client or the browser's HTTP requests) and what
    it saw."""

    def __init__(
        self, index: int, url: str, workdir: Path, settings: Settings, calls: list[Call], api: Api | None
    ) -> None:
        self.index = index
        self.settings = settings
        self.rng = random.Random(settings.seed * 100_003 + index)
        self.dir = workdir / f"s{index:03d}"
        self.dir.mkdir(parents=True, exist_ok=True)
        out = self.dir / "out"
        # "mixed": odd sessions are gradio_client Clients (the warm-up session, -1, is not).
        client = settings.engine == "gradio_client" or (
            settings.engine == "mixed" and index % 2 == 1 and index > 0
        )
        self.engine = (
            ClientEngine(url, out, settings.timeout)
            if client
            else HttpEngine(url, out, settings.timeout, api)
        )
        self.calls = calls  # shared, appended to under the GIL
        self.model: dict | None = None  # the /reset settings of its own model
        self.weights: str | None = None  # weights_sha256 after it set its model
        self.fingerprint: str | None = None  # pixels of /decode at FIXED_Z
        self.checkpoint: str | None = None  # its model, downloaded (/save_checkpoint), to verify offline
        self.seen: list[tuple] = []  # (endpoint, arguments, output paths) to verify offline
        self.isolation: list[str] = []  # what went wrong with its fingerprint, if anything
        self.busy = False  # making its calls of a phase (else idle, waiting for the others)
        self.image = self.dir / "mine.png"
        png_of_a_digit(self.image, self.rng)

    def call(self, phase: str, endpoint: str, *args, **kwargs):
        """One request, timed; its outputs (files downloaded), or None if it failed."""
        c = Call(self.index, phase, endpoint, time.monotonic(), 0.0)
        self.engine.last_duration = self.engine.last_parts = None
        try:
            out = self.engine.predict(endpoint, *args, **kwargs)
        except Exception as err:
            c.end = time.monotonic()
            c.error = f"{type(err).__name__}: {str(err)[:300]}"
            self.calls.append(c)
            return None
        c.end = time.monotonic()
        c.server, c.parts = self.engine.last_duration, self.engine.last_parts
        self.calls.append(c)
        return out

    def own_model(self, phase: str = "setup") -> bool:
        """A fresh untrained model with a seed nobody else has, its fingerprint, and a copy of
        it (the offline check recomputes what the session received from these very weights)."""
        # A hidden size of its own too: no two sessions can hold the same weights, even if two
        # models built at the same moment drew the same numbers (see verify_isolation).
        self.model = {
            **TRAIN_DEFAULTS,
            "hidden_dim": 64 + 8 * (self.index % 100),
            "seed": 10_000 + self.index,
        }
        if self.call(phase, "/reset", **self.model) is None or not self.record_fingerprint(phase):
            return False
        self.checkpoint = self.call(phase, "/save_checkpoint")
        return self.checkpoint is not None

    def record_fingerprint(self, phase: str) -> bool:
        info = self.call(phase, "/model_info")
        img = self.call(phase, "/decode", z_text=FIXED_Z, label=None)
        if info is None or img is None:
            return False
        self.weights, self.fingerprint = info["weights_sha256"], pixels_hash(img)
        self.seen.append(("/decode", (FIXED_Z,), (img,)))
        return True

    def check_fingerprint(self, phase: str) -> None:
        """The weights hash and the decode of FIXED_Z must still be those it recorded."""
        info = self.call(phase, "/model_info")
        if info is not None and info["weights_sha256"] != self.weights:
            self.isolation.append(f"session {self.index}: weights changed in phase {phase}")
        img = self.call(phase, "/decode", z_text=FIXED_Z, label=None)
        if img is not None:
            self.seen.append(("/decode", (FIXED_Z,), (img,)))
            if pixels_hash(img) != self.fingerprint:
                self.isolation.append(f"session {self.index}: decode of z={FIXED_Z} changed in phase {phase}")

    def one_request(self, phase: str, k: int, op: str | None = None) -> None:
        op = op or OPS[(self.index + k) % len(OPS)]
        r = self.rng
        if op == "decode_point":
            x, y = round(r.uniform(-3, 3), 3), round(r.uniform(-3, 3), 3)
            out = self.call(phase, "/decode_point", x=x, y=y, method="identity", n=2000)
            if out is not None:
                self.seen.append(("/decode_point", (x, y), (out[0],)))
        elif op == "encode_image":
            out = self.call(phase, "/encode_image", "identity", 2000, LocalFile(self.image))
            if out is not None:
                self.seen.append(("/encode_image", (), (out[1],)))
        else:
            ends = (
                "test images",
                str(r.randrange(10)),
                r.randrange(20),
                str(r.randrange(10)),
                r.randrange(20),
                r.choice(("linear", "slerp")),
                "hold A's",
            )
            t = round(r.random(), 2)
            if op == "interp_frame":
                out = self.call(phase, "/interp_frame", *ends, t)
                if out is not None:
                    self.seen.append(("/interp_frame", (*ends, t), (out,)))
            else:
                frames = r.randint(4, 12)
                out = self.call(phase, "/interp_strip", *ends, frames, t)
                if out is not None:
                    self.seen.append(("/interp_strip", (*ends, frames, t), (out[2], out[3])))

    def run_phase(self, phase: str, halt: threading.Event) -> None:
        try:
            for k in range(self.settings.requests):
                if halt.is_set():
                    return
                if self.settings.think > 0:
                    halt.wait(self.rng.uniform(0, 2 * self.settings.think))
                self.one_request(phase, k)
                if (k + 1) % CHECK_EVERY == 0:
                    self.check_fingerprint(phase)
            self.check_fingerprint(phase)
        finally:
            self.busy = False

    def close(self) -> None:
        self.engine.close()


TRAIN_DEFAULTS = {  # every /train and /reset argument, as a script sends them
    "dataset": "digits",
    "arch": "mlp",
    "latent_dim": 2,
    "hidden_dim": 256,
    "likelihood": "bernoulli",
    "gaussian_variance": "fixed",
    "gaussian_std": 0.1,
    "binarize": False,
    "conditional": False,
    "beta": 1.0,
    "kl_schedule": "constant",
    "warmup_epochs": 10,
    "cycles": 4,
    "cycle_ratio": 0.5,
    "free_bits": 0.0,
    "lr": 1e-3,
    "batch_size": 64,
    "epochs": 1,
    "grad_clip": 1.0,
    "seed": 0,
}


def train_settings(dataset: str, epochs: int, seed: int) -> dict:
    if dataset == "digits":
        return {**TRAIN_DEFAULTS, "epochs": epochs, "seed": seed}
    # The MLP of the VAE paper on a 28x28 set: the heavy training of a lecture.
    return {
        **TRAIN_DEFAULTS,
        "dataset": dataset,
        "latent_dim": 20,
        "hidden_dim": 400,
        "batch_size": 128,
        "epochs": epochs,
        "seed": seed,
    }


class Trainer(threading.Thread):
    """A session that trains (client.submit of /train) until it is stopped; records when its
    training streamed first and when it ended."""

    def __init__(self, index: int, url: str, workdir: Path, settings: dict, timeout: float) -> None:
        super().__init__(daemon=True)
        self.index, self.settings, self.timeout = index, settings, timeout
        self.client = Client(url, verbose=False, download_files=str(workdir / f"t{index}" / "out"))
        self.job = None
        self.started: float | None = None
        self.ended: float | None = None
        self.error: str | None = None
        self.final_status = ""
        self.cancelled = False  # stopped while still waiting in the queue
        self._submitted = threading.Event()

    def run(self) -> None:
        try:
            self.job = self.client.submit(**self.settings, api_name="/train")
            self._submitted.set()
            while not self.job.done():
                if self.started is None and self.job.outputs():
                    self.started = time.monotonic()
                time.sleep(0.05)
            if self.started is None and self.job.outputs():
                self.started = time.monotonic()
            self.ended = time.monotonic()
            with contextlib.suppress(Exception):
                self.final_status = str(self.job.outputs()[-1][0])
            self.job.result(timeout=0)  # raises what the job raised
        except Exception as err:
            self.ended = self.ended or time.monotonic()
            # gradio_client ends a job cancelled in the queue with CancelledError or, at times,
            # a KeyError about the empty answer of the cancelled event: neither is a failure.
            if not (isinstance(err, _cancelled_errors()) or (self.cancelled and self.started is None)):
                self.error = f"{type(err).__name__}: {str(err)[:300]}"
        finally:
            self._submitted.set()

    def stop(self) -> None:
        """Stop a running training (/stop) or cancel one still waiting in the queue."""
        self._submitted.wait(30)
        if self.job is None or self.job.done():
            return
        if self.started is None:
            self.cancelled = True
            self.job.cancel()
            self.join(timeout=5)
        if self.is_alive():  # training (perhaps it started just as it was cancelled)
            try:
                self.client.submit(api_name="/stop").result(timeout=self.timeout)
            except Exception as err:
                self.error = self.error or f"/stop: {type(err).__name__}: {str(err)[:300]}"
        self.join(timeout=self.timeout)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


def _cancelled_errors() -> tuple[type[BaseException], ...]:
    import concurrent.futures

    return (concurrent.futures.CancelledError,)


# -- the run ----------------------------------------------------------------------------------


def _in_threads(fn, items, workers: int = 16) -> list:
    """fn(item) for each item on a few threads (creating 50 clients one by one takes long)."""
    import concurrent.futures

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    try:
        return list(pool.map(fn, items))
    finally:  # on Ctrl-C, do not wait for the calls still under way
        pool.shutdown(wait=False, cancel_futures=True)


def _keepalive_until(sessions: list[Session], done: threading.Event, ttl: float) -> None:
    """While others finish, a waiting session calls /model_info now and then so its workspace
    does not expire before the next phase (an idle session expires TTL after its last call).
    These calls are not part of the figures."""
    every = max(1.0, ttl / 4)
    while not done.wait(every):
        for s in sessions:
            if not s.busy and not done.is_set():
                s.call("keepalive", "/model_info")


def _run_phase(sessions: list[Session], phase: str, halt: threading.Event) -> tuple[float, float]:
    t0 = time.monotonic()
    for s in sessions:
        s.busy = True
    threads = [threading.Thread(target=s.run_phase, args=(phase, halt), daemon=True) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)
            if halt.is_set():
                break
    return t0, time.monotonic()


def _warm_up(url: str, workdir: Path, settings: Settings, dataset: str, calls: list[Call], api) -> str:
    """One session calls everything once and trains an epoch (data sets loaded, code warm).
    Returns the shipped model's weights hash (what a fresh workspace has)."""
    s = Session(-1, url, workdir, dataclasses.replace(settings, think=0), calls, api)
    try:
        info = s.call("warm-up", "/model_info")
        shipped = info["weights_sha256"] if info else ""
        s.call("warm-up", "/train", **train_settings(dataset, 1, 0))
        s.own_model("warm-up")
        for k in range(len(OPS)):
            s.one_request("warm-up", k)
        # The floor: one client alone on an idle server (gradio_client's own overhead included).
        for _ in range(FLOOR_CALLS):
            s.one_request("floor", 0, "decode_point")
            s.call("floor", "/model_info")
        return shipped
    finally:
        s.close()


def _start_trainers(url: str, workdir: Path, settings: Settings, dataset: str, log) -> list[Trainer]:
    """Submit the trainings and wait until those that may run at once stream."""
    trainers = [
        Trainer(i, url, workdir, train_settings(dataset, settings.train_epochs, 100 + i), settings.timeout)
        for i in range(settings.trainers)
    ]
    for t in trainers:
        t.start()
    expect = min(settings.trainers, _train_concurrency(settings))
    deadline = time.monotonic() + settings.timeout
    running = 0
    while running < expect and time.monotonic() < deadline:
        time.sleep(0.1)
        running = sum(t.started is not None for t in trainers)
    log(f"  {running} of {len(trainers)} trainings running")
    return trainers


def _stop_trainers(trainers: list[Trainer], phase_end: float, log) -> None:
    for t in trainers:
        if t.started is not None and t.ended is not None and t.ended < phase_end:
            log(f"  note: training {t.index} ended before the phase did: {t.final_status[:60]}")
    for t in sorted(trainers, key=lambda t: t.started is not None):  # cancel queued ones first
        t.stop()


def _expire(
    sessions: list[Session],
    trainers: list[Trainer],
    calls: list[Call],
    settings: Settings,
    shipped,
    pid: int,
    halt: threading.Event,
    log,
) -> tuple[int, dict]:
    """Wait until every session's workspace has expired (TTL after its last call, plus Gradio's
    sweep), read the server's memory, then ask every session what model it has now."""
    last = max([c.end for c in calls] + [t.ended for t in trainers if t.ended], default=time.monotonic())
    wait = last + settings.ttl + STATE_SWEEP_S + 3.0 - time.monotonic()
    log(f"waiting {max(wait, 0):.0f} s for the sessions to expire (clients stay connected)")
    if wait > 0:
        halt.wait(wait)
    after = rss_kb(pid)
    probes = _in_threads(lambda s: s.call("probe", "/model_info"), sessions)
    fresh = [p is not None and p["weights_sha256"] == shipped for p in probes]
    return after, {"sessions": len(sessions), "fresh_after_ttl": sum(fresh), "ok": all(fresh)}


def run(settings: Settings, log=print) -> dict:
    """The whole benchmark; returns the report (see `summarize`)."""
    from vae_explorer.data import availability

    dataset = settings.train_dataset
    if dataset == "auto":
        dataset = "fashion-mnist" if availability("fashion-mnist")[0] else "digits"
    workdir = Path(tempfile.mkdtemp(prefix="vae-bench-load-"))
    old_tempdir = tempfile.tempdir
    tempfile.tempdir = str(workdir)  # gradio_client leaves a folder per download in the temp dir
    env = {"VAE_EXPLORER_SESSION_TTL": str(settings.ttl)}
    if settings.train_concurrency is not None:
        env["VAE_EXPLORER_TRAIN_CONCURRENCY"] = str(settings.train_concurrency)
    env.update(kv.split("=", 1) for kv in settings.server_env)
    calls: list[Call] = []
    sessions: list[Session] = []
    trainers: list[Trainer] = []
    halt = _INTERRUPTED
    halt.clear()
    mem: dict[str, float] = {}
    cpu: dict[str, float] = {}
    marks: dict[str, float] = {}
    expiry: dict = {}
    shipped, server_log = "", ""
    try:
        log(
            f"starting python {settings.server_script} (TTL {settings.ttl:g} s, "
            f"{_train_concurrency(settings)} trainings at once)"
        )
        with Server(env, workdir, settings.server_script) as server:
            log(f"  server pid {server.pid} at {server.url}")
            sampler = MemorySampler(server.pid)
            sampler.start()
            time.sleep(1.0)
            mem["start"] = rss_kb(server.pid)
            log(f"warm-up (the trainings use {dataset})")
            api = Api(server.url) if settings.engine != "gradio_client" else None
            shipped = _warm_up(server.url, workdir, settings, dataset, calls, api)
            time.sleep(1.0)
            mem["warm"] = rss_kb(server.pid)
            cpu0 = (cpu_seconds(server.pid), own_cpu_seconds())
            log(f"{settings.clients} sessions: connect, /reset to a model of their own")
            marks["load_start"] = time.monotonic()
            sessions = _in_threads(
                lambda i: Session(i, server.url, workdir, settings, calls, api), range(settings.clients)
            )
            ok = _in_threads(lambda s: s.own_model(), sessions)
            if not all(ok):
                log(f"  {ok.count(False)} sessions could not set their model")
            for phase in settings.phases:
                if phase == "training" and settings.trainers > 0:
                    trainers = _start_trainers(server.url, workdir, settings, dataset, log)
                log(f"phase {phase}: {settings.clients} sessions x {settings.requests} calls")
                done = threading.Event()
                keep = threading.Thread(
                    target=_keepalive_until, args=(sessions, done, settings.ttl), daemon=True
                )
                keep.start()
                marks[f"{phase}_start"], marks[f"{phase}_end"] = _run_phase(sessions, phase, halt)
                done.set()
                keep.join()
                if phase == "training":
                    _stop_trainers(trainers, marks["training_end"], log)
            marks["load_end"] = time.monotonic()
            mem["peak"] = sampler.peak_between(marks["load_start"], marks["load_end"])
            mem["end_of_load"] = rss_kb(server.pid)
            cpu1 = (cpu_seconds(server.pid), own_cpu_seconds())
            cpu["server"], cpu["clients"] = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
            cpu["wall"] = marks["load_end"] - marks["load_start"]
            if settings.expiry:
                mem["after_expiry"], expiry = _expire(
                    sessions, trainers, calls, settings, shipped, server.pid, halt, log
                )
            sampler.stop()
            mem["server_hwm"] = _hwm_kb(server.pid)
            server_log = server.log_tail(15)
        isolation = {"ok": None}
        if settings.verify:
            try:
                isolation = verify_isolation(sessions, shipped)
            except Exception as err:  # report the figures anyway
                isolation = {"ok": None, "error": f"{type(err).__name__}: {err}"}
                log(f"the isolation check failed to run: {isolation['error']}")
        report = summarize(settings, dataset, calls, trainers, mem, cpu, marks, expiry, isolation)
        report["server_log_tail"] = server_log
        return report
    except KeyboardInterrupt:
        log("interrupted: the server is stopped")
        raise
    finally:
        halt.set()
        for s in sessions:
            s.close()
        for t in trainers:
            t.close()
        tempfile.tempdir = old_tempdir
        _remove(workdir)


def _hwm_kb(pid: int) -> int:
    with contextlib.suppress(OSError, StopIteration):
        status = Path(f"/proc/{pid}/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return 0


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# -- isolation, checked offline -----------------------------------------------------------------


def _expected(ws, endpoint: str, args: tuple, session: Session) -> list[np.ndarray]:
    """What the app's own handlers give for this call on this session's model."""
    from vae_explorer.ui import generate_tab, interpolate_tab, latent_tab

    if endpoint == "/decode":
        return [generate_tab.on_decode(ws, args[0], None)[1]]
    if endpoint == "/decode_point":
        return [latent_tab.on_decode_point(ws, None, args[0], args[1], "identity", 2000)[1]]
    if endpoint == "/encode_image":
        return [latent_tab.on_encode(ws, None, "identity", 2000, str(session.image))[2]]
    if endpoint == "/interp_frame":
        return [interpolate_tab.on_frame(ws, None, *args)[1]]
    if endpoint == "/interp_strip":
        out = interpolate_tab.on_strip(ws, None, *args)
        return [out[3], out[4]]
    raise ValueError(endpoint)


def _same(got: np.ndarray, want: np.ndarray) -> bool:
    if got.ndim == 3 and want.ndim == 2:  # saved as RGB: compare each channel
        want = np.repeat(want[:, :, None], got.shape[2], axis=2)
    return got.shape == want.shape and np.array_equal(got, want)


def verify_isolation(sessions: list[Session], shipped: str) -> dict:
    """Every image a session received must be what its own model gives: recomputed here with the
    app's handlers from the session's checkpoint (saved right after it set its model; its weights
    hash must be the one /model_info reported). No two sessions may share weights or a
    fingerprint. Also counts the sessions whose weights are those their seed gives when built
    alone (a model built while other sessions build theirs may not be: see the report)."""
    import torch

    from vae_explorer.build import build_model
    from vae_explorer.device import configure_threads
    from vae_explorer.session import Workspace
    from vae_explorer.ui.generate_tab import on_model_info

    configure_threads()
    problems = [p for s in sessions for p in s.isolation]
    checked = mismatched = reproducible = 0
    weights = [s.weights for s in sessions if s.weights]
    prints = [s.fingerprint for s in sessions if s.fingerprint]
    with torch.inference_mode():
        for s in sessions:
            if s.checkpoint is None or s.model is None:
                problems.append(f"session {s.index}: no model of its own to check against")
                continue
            ws = Workspace.from_shipped()
            ws.load(s.checkpoint)
            if on_model_info(ws)[1]["weights_sha256"] != s.weights:
                problems.append(f"session {s.index}: its saved model is not the one /model_info reported")
            alone = build_model(ws.model.config, s.model["seed"]).state_dict()
            reproducible += all(torch.equal(v, alone[k]) for k, v in ws.model.state_dict().items())
            for endpoint, args, paths in s.seen:
                wants = _expected(ws, endpoint, args, s)
                for path, want in zip(paths, wants, strict=True):
                    checked += 1
                    if not _same(image_array(path), want):
                        mismatched += 1
                        if mismatched <= 5:
                            problems.append(
                                f"session {s.index}: {endpoint}{args} is not its own model's output"
                            )
    if len(set(weights)) != len(weights) or shipped in weights:
        problems.append("two sessions (or a session and the shipped model) have the same weights hash")
    if len(set(prints)) != len(prints):
        problems.append(
            "two sessions' decodes of the fixed z are identical: the check cannot tell them apart"
        )
    return {
        "ok": not problems and checked > 0,
        "images_checked": checked,
        "images_not_own": mismatched,
        "distinct_weight_hashes": len(set(weights)),
        "distinct_fingerprints": len(set(prints)),
        "sessions": len(sessions),
        "seed_reproducible": reproducible,
        "problems": problems[:10],
    }


# -- the report ---------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100])."""
    if not values:
        return float("nan")
    v = sorted(values)
    return v[max(0, math.ceil(q / 100 * len(v)) - 1)]


def _stats(calls: list[Call]) -> dict:
    ok = [c.ms for c in calls if c.error is None]
    server = [1000 * c.server for c in calls if c.error is None and c.server is not None]
    return {
        "n": len(calls),
        "errors": sum(c.error is not None for c in calls),
        "p50_ms": round(percentile(ok, 50), 1),
        "p95_ms": round(percentile(ok, 95), 1),
        "max_ms": round(max(ok), 1) if ok else float("nan"),
        # the event's own time as the server reports it (queue wait and transfer excluded)
        "server_p50_ms": round(percentile(server, 50), 1),
        "server_p95_ms": round(percentile(server, 95), 1),
        "parts_p50_ms": {
            k: round(percentile([1000 * c.parts[k] for c in calls if c.parts], 50), 1) for k in PARTS
        },
    }


def summarize(settings, dataset, calls, trainers, mem, cpu, marks, expiry, isolation) -> dict:
    intervals = [(t.started, t.ended or math.inf) for t in trainers if t.started is not None]
    for c in calls:
        c.training = any(a < c.end and c.start < b for a, b in intervals)
    measured = [c for c in calls if c.phase in settings.phases]
    table = {}
    for ep in sorted({c.endpoint for c in measured}):
        for cond in ("idle", "training"):
            group = [c for c in measured if c.endpoint == ep and c.training == (cond == "training")]
            if group:
                table[f"{ep} {cond}"] = _stats(group)
    floor = {
        ep: _stats([c for c in calls if c.phase == "floor" and c.endpoint == ep])
        for ep in ("/decode_point", "/model_info")
    }
    errors = [c for c in calls if c.error is not None]
    trainer_errors = [f"trainer {t.index}: {t.error}" for t in trainers if t.error]
    phase_s = {p: round(marks[f"{p}_end"] - marks[f"{p}_start"], 1) for p in settings.phases}
    n_phase = {p: sum(c.phase == p for c in calls) for p in settings.phases}
    decode_train = table.get("/decode_point training")
    mb = {k: round(v / 1024, 1) for k, v in mem.items()}
    goals = {
        "zero_errors": not errors and not trainer_errors,
        "decode_p95_under_500ms_while_training": None
        if decode_train is None
        else decode_train["p95_ms"] < DECODE_GOAL_MS,
        "memory_near_baseline": None
        if "after_expiry" not in mem
        else mem["after_expiry"] <= (1 + MEMORY_NEAR) * mem["warm"],
        "isolation": isolation.get("ok"),
        "sessions_expired": expiry.get("ok"),
    }
    return {
        "settings": dataclasses.asdict(settings),
        "train_dataset": dataset,
        "train_concurrency": _train_concurrency(settings),
        "machine": {"cpus": len(os.sched_getaffinity(0)), "loadavg_1min_at_end": os.getloadavg()[0]},
        "latency": table,
        "latency_one_client_alone": floor,
        "phase_seconds": phase_s,
        "calls_per_second": {p: round(n_phase[p] / max(phase_s[p], 1e-9), 1) for p in settings.phases},
        "trainings": [
            {
                "started_s": None if t.started is None else round(t.started - marks["load_start"], 1),
                "ended_s": None if t.ended is None else round(t.ended - marks["load_start"], 1),
                "status": t.final_status[:200],
                "error": t.error,
            }
            for t in trainers
        ],
        "errors": {
            "count": len(errors) + len(trainer_errors),
            "first": trainer_errors[:5]
            + [f"{c.endpoint} (session {c.session}): {c.error}" for c in errors[:5]],
        },
        "memory_mb": mb,
        "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
        "expiry": expiry,
        "isolation": isolation,
        "goals": goals,
    }


def print_report(r: dict, out=sys.stdout) -> None:
    p = lambda *a: print(*a, file=out)  # noqa: E731
    s = r["settings"]
    p(
        f"\n{s['clients']} sessions x {s['requests']} calls per phase (think {s['think']:g} s), "
        f"{s['trainers']} trainers on {r['train_dataset']} ({r['train_concurrency']} at once), "
        f"{r['machine']['cpus']} CPUs, engine {s['engine']}"
    )
    p(f"phases: {r['phase_seconds']} s, calls/s {r['calls_per_second']}")
    head = ("endpoint", "while", "calls", "errors", "p50 ms", "p95 ms", "max ms", "server p50", "p95")
    row = "{:<16} {:<9} {:>6} {:>6} {:>8} {:>8} {:>8}   {:>10} {:>6}"
    p("\n" + row.format(*head))
    rows = [(*key.rsplit(" ", 1), st) for key, st in r["latency"].items()]
    rows += [(ep, "1 alone", st) for ep, st in r["latency_one_client_alone"].items()]
    keys = ("n", "errors", "p50_ms", "p95_ms", "max_ms", "server_p50_ms", "server_p95_ms")
    for ep, cond, st in rows:
        p(row.format(ep, cond, *(f"{st[k]:.0f}" for k in keys)))
    parts = [(ep, cond, st["parts_p50_ms"]) for ep, cond, st in rows if cond != "1 alone"]
    if any(not math.isnan(v) for *_, d in parts for v in d.values()):
        p("\nwhere the time of a call goes, p50 ms: " + ", ".join(PARTS))
        for ep, cond, d in parts:
            p(f"{ep:<16} {cond:<9} " + " ".join(f"{d[k]:>8.0f}" for k in PARTS))
    e = r["errors"]
    p(f"\nerrors: {e['count']}" + "".join(f"\n  {m}" for m in e["first"]))
    for i, t in enumerate(r["trainings"]):
        if t["started_s"] is None:
            p(f"training {i}: waited in the queue (one training at a time), cancelled at {t['ended_s']} s")
        else:
            p(f"training {i}: streamed from {t['started_s']} s to {t['ended_s']} s")
    m = r["memory_mb"]
    p("server RSS (MB): " + ", ".join(f"{k} {v:g}" for k, v in m.items()) + f"   CPU s: {r['cpu_seconds']}")
    if r["expiry"]:
        x = r["expiry"]
        p(f"expiry: {x['fresh_after_ttl']} of {x['sessions']} sessions had a fresh workspace after the TTL")
    iso = r["isolation"]
    if iso.get("error"):
        p(f"isolation: the check failed to run: {iso['error']}")
    if iso.get("ok") is not None:
        p(
            f"isolation: {iso['images_checked']} images recomputed from each session's own model, "
            f"{iso['images_not_own']} differ; {iso['distinct_weight_hashes']} distinct weight hashes, "
            f"{iso['distinct_fingerprints']} distinct fingerprints for {iso['sessions']} sessions; "
            f"{iso['seed_reproducible']} have the weights their seed gives when built alone"
            + "".join(f"\n  {x}" for x in iso["problems"])
        )
    p(
        "goals: "
        + ", ".join(
            f"{k} {'met' if v else 'NOT met' if v is False else 'n/a'}" for k, v in r["goals"].items()
        )
    )


def _parse(argv: list[str] | None) -> tuple[Settings, str | None]:
    d = Settings()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=d.clients, help="exploring sessions")
    p.add_argument("--requests", type=int, default=d.requests, help="calls per session and phase")
    p.add_argument("--think", type=float, default=d.think, help="mean seconds between a session's calls")
    p.add_argument("--trainers", type=int, default=d.trainers, help="sessions training in phase 'training'")
    p.add_argument(
        "--train-concurrency", type=int, default=d.train_concurrency, help="trainings at once [the app's]"
    )
    p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE", help="for experiments")
    p.add_argument("--server-script", default=d.server_script, help="for experiments: a wrapper of app.py")
    p.add_argument("--train-dataset", default=d.train_dataset, help="auto, digits, fashion-mnist, ...")
    p.add_argument("--train-epochs", type=int, default=d.train_epochs)
    p.add_argument("--ttl", type=float, default=d.ttl, help="VAE_EXPLORER_SESSION_TTL of the server")
    p.add_argument("--phases", default=",".join(d.phases), help="idle,training or one of them")
    p.add_argument("--no-expiry", action="store_true", help="do not wait for the sessions to expire")
    p.add_argument("--no-verify", action="store_true", help="skip the offline isolation check")
    p.add_argument("--timeout", type=float, default=d.timeout, help="seconds per call")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--engine",
        choices=("http", "gradio_client", "mixed"),
        default=d.engine,
        help="each session makes a browser's HTTP requests, or is a gradio_client.Client, or half each",
    )
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON ('-': stdout only)")
    a = p.parse_args(argv)
    phases = tuple(x for x in a.phases.split(",") if x)
    if not phases or any(x not in ("idle", "training") for x in phases):
        p.error("--phases takes idle and/or training")
    settings = Settings(
        clients=a.clients,
        requests=a.requests,
        think=a.think,
        trainers=a.trainers,
        train_concurrency=a.train_concurrency,
        train_dataset=a.train_dataset,
        train_epochs=a.train_epochs,
        ttl=a.ttl,
        phases=phases,
        expiry=not a.no_expiry,
        verify=not a.no_verify,
        timeout=a.timeout,
        seed=a.seed,
        engine=a.engine,
        server_env=tuple(a.server_env),
        server_script=a.server_script,
    )
    return settings, a.json


def main(argv: list[str] | None = None) -> int:
    settings, json_path = _parse(argv)

    def _interrupt(signum, frame):
        # End the server and the sessions' loops first: even if the KeyboardInterrupt below lands
        # somewhere that swallows it, nothing is left running.
        _INTERRUPTED.set()
        _stop_all_servers()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    quiet = json_path == "-"
    log = (lambda *a: print(*a, file=sys.stderr)) if quiet else print
    try:
        report = run(settings, log=log)
    except KeyboardInterrupt:
        return 130
    if quiet:
        print(json.dumps(report, indent=2))
    else:
        buf = io.StringIO()
        print_report(report, buf)
        print(buf.getvalue())
        if json_path:
            Path(json_path).write_text(json.dumps(report, indent=2))
    return 0 if report["goals"]["zero_errors"] and report["goals"]["isolation"] is not False else 1


if __name__ == "__main__":
    sys.exit(main())
