"""Take the lesson home: the session as a Jupyter notebook (notebook.py writes it), and every
plot's toolbar downloading it as PNG (Plotly's camera, at twice the size: sharp on a slide) or as
SVG (a button added here: a figure that scales for a paper or a poster). Image grids download as
PNG from their own corner button (gr.Image's)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr

from ..notebook import spec_from_workspace, write_notebook
from .common import guard, workspace


# Each figure's Plotly config (plots.figure puts it in the figure's JSON; Gradio's Plot passes a
# "config" key through to Plotly): the camera saves a PNG at twice the drawn size.
def plot_config(title: str) -> dict:
    stem = "".join(ch if ch.isalnum() else "-" for ch in title.lower()).strip("-")
    name = "vae-explorer-" + "-".join(p for p in stem.split("-") if p)[:60]
    return {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "scale": 2, "filename": name},
        "modeBarButtonsToRemove": ["sendDataToCloud", "editInChartStudio"],
    }


# The SVG button needs a function, which JSON cannot carry: this script (run once per page)
# wraps Plotly.react/newPlot so that every figure drawn gets a "Download plot as SVG" button
# beside the camera, with the camera's file name, and redraws the figures already on the page.
SVG_BUTTON_JS = """
// An arrow down into a tray (a download), in a 1000-unit box drawn top-down.
const SVG_ICON = {width: 1000, height: 1000, transform: 'matrix(1 0 0 1 0 0)', path:
  'M420 60 H580 V520 H800 L500 820 L200 520 H420 Z M100 860 H900 V960 H100 Z'};
function svgButton(P) {
  return {name: 'Download plot as SVG', title: 'Download plot as SVG', icon: SVG_ICON,
    click: (gd) => {
      const opts = (gd._context && gd._context.toImageButtonOptions) || {};
      P.downloadImage(gd, {format: 'svg', filename: opts.filename || 'vae-explorer-plot'});
    }};
}
function withSvg(P, config) {
  const c = Object.assign({}, config || {});
  const extra = (c.modeBarButtonsToAdd || []).filter((b) => b && b.name !== 'Download plot as SVG');
  c.modeBarButtonsToAdd = [...extra, svgButton(P)];
  return c;
}
function patch() {
  const P = window.Plotly;
  if (!P || P.__vxSvg) return !!P;
  for (const fn of ['react', 'newPlot']) {
    const orig = P[fn];
    P[fn] = function (gd, data, layout, config) {
      if (data && !Array.isArray(data) && data.data) {  // react(gd, {data, layout, config})
        return orig.call(this, gd, Object.assign({}, data, {config: withSvg(P, data.config)}));
      }
      return orig.call(this, gd, data, layout, withSvg(P, config));
    };
  }
  P.__vxSvg = true;
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {  // drawn before the patch
    if (gd.data) P.react(gd, gd.data, gd.layout, Object.assign({}, gd._context));
  }
  return true;
}
const timer = setInterval(() => { if (patch()) clearInterval(timer); }, 200);
"""


def on_export_notebook(ws):
    """The session as a Jupyter notebook (.ipynb) that rebuilds it with the library — data set,
    every setting, seed, epochs trained — and draws the same figures; for your own images it
    reads the same file again (keep it next to the notebook)."""
    ws = workspace(ws)
    spec = guard(lambda: spec_from_workspace(ws))
    folder = Path(tempfile.mkdtemp(prefix="vae-explorer-"))
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in spec.dataset)[:40]
    path = folder / f"vae-{stem}-epoch{spec.epochs}.ipynb"
    guard(lambda: write_notebook(spec, path))
    return ws, str(path)


def build(state: gr.State) -> None:
    """The Export notebook button and its download."""
    btn = gr.Button("Export notebook (.ipynb)", size="sm", elem_id="export-notebook")
    out = gr.File(label="Notebook", interactive=False, elem_id="notebook-download")
    btn.click(on_export_notebook, [state], [state, out], api_name="export_notebook", concurrency_limit=None)


def svg_keeper() -> None:
    """The page's SVG button script, in a component that is drawn when the page opens (one in a
    closed accordion would run only once that is opened)."""
    gr.HTML("", js_on_load=SVG_BUTTON_JS, elem_id="svg-button-keeper", padding=False)
