"""The last run as a ghost: after a new Start, the run it replaced stays faintly on the
reconstruction and KL plots and on the rate–distortion plane, so "what did β = 4 change?" is
answered on one plot. One checkbox hides and shows it, in the browser: a class on <body> that
rd_plane.js reads, and that a small keeper applies to the Train plots' ghost traces (Plotly's
trace visibility) after each live redraw."""

from __future__ import annotations

import gradio as gr

from .plots import ema, thin  # the ghost is smoothed and thinned as the current run is

GHOST = "#94a3b8"
GROUP = "previous run"  # the legend group of the ghost traces: one legend entry toggles both

# The checkbox only switches a class on <body>; the keeper below (run once per page, as a
# gr.HTML's js_on_load) applies it to the Train plots after every redraw and to the plane.
TOGGLE_JS = """(on) => { document.body.classList.toggle('vx-no-ghost', !on); return on; }"""
KEEPER_JS = """
const want = () => (document.body.classList.contains('vx-no-ghost') ? 'legendonly' : true);
function apply() {
  const P = window.Plotly;
  if (!P) return;
  for (const gd of document.querySelectorAll('#recon-plot .js-plotly-plot, #kl-plot .js-plotly-plot')) {
    const v = want(), idx = [];
    (gd.data || []).forEach((t, i) => {
      if (t.legendgroup === 'previous run' && (t.visible ?? true) !== v) idx.push(i);
    });
    if (idx.length) P.restyle(gd, {visible: v}, idx);
  }
}
new MutationObserver(apply).observe(document.body, {attributes: true, attributeFilter: ['class']});
const plots = () => document.querySelectorAll('#recon-plot, #kl-plot');
const redrawn = new MutationObserver(() => requestAnimationFrame(apply));
const watchPlots = () => plots().forEach((el) => redrawn.observe(el, {childList: true, subtree: true}));
watchPlots();
setTimeout(watchPlots, 3000);  // the plots may render after this component
"""


def traces(previous, dataset: str, attr: str, test_key: str, until: int | None = None) -> list[dict]:
    """The previous run's smoothed curve of ``attr`` (a StepRecord field) and its per-epoch test
    ``test_key`` (an EpochRecord field), faint, up to step ``until`` (the current run's length:
    a longer run before it must not squeeze this one into a corner); none when there is no
    previous run on ``dataset``."""
    if previous is None or previous.dataset != dataset:
        return []
    out = []
    steps = [r for r in previous.steps if until is None or r.step <= until]
    if steps:
        x, y = thin([r.step for r in steps], ema([getattr(r, attr) for r in steps]))
        out.append(_trace(x, y, "lines", f"{attr}-steps", True))
    history = [h for h in previous.history if until is None or h.step <= until]
    if history:
        hx, hy = [h.step for h in history], [getattr(h, test_key) for h in history]
        out.append(_trace(hx, hy, "lines+markers", f"{attr}-test", not steps))
    return out


def _trace(x: list, y: list, mode: str, uid: str, legend: bool) -> dict:
    return {
        "type": "scatter",
        "mode": mode,
        "x": x,
        "y": y,
        "name": GROUP,
        "legendgroup": GROUP,
        "showlegend": legend,
        "uid": f"ghost-{uid}",
        "line": {"color": GHOST, "width": 2, "dash": "dot"},
        "marker": {"size": 4, "color": GHOST},
        "opacity": 0.6,
    }


def plane_path(previous, dataset: str, autoencoder: bool = False) -> list[list[float]]:
    """The previous run's place on the rate–distortion plane, epoch by epoch: [[R, D], …]."""
    if previous is None or previous.dataset != dataset or autoencoder:
        return []
    return [[round(h.test_kl, 4), round(h.test_recon, 3)] for h in previous.history]


def toggle() -> gr.Checkbox:
    """The checkbox under the Train plots (a browser-only switch), and its keeper."""
    gr.HTML("", js_on_load=KEEPER_JS, elem_id="ghost-keeper", padding=False)
    box = gr.Checkbox(True, label="Show the previous run (dotted, after a new Start)", elem_id="ghost-toggle")
    box.change(None, [box], [box], js=TOGGLE_JS, api_visibility="private")
    return box
