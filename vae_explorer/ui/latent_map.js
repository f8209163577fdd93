// The latent map (vae_explorer/ui/latent_map.py builds its JSON value): the test set's μ by
// class, posteriors as ellipses, the prior's circles, one chosen input's draws, and on hover the
// point's own image. Runs as gr.HTML's js_on_load: element, props, trigger and watch are given.
// The template may be re-rendered when the value changes: look the nodes up each time.
const $ = (sel) => element.querySelector(sel);
// The app's one class palette (palette.py) comes with the value; this is only a fallback.
let COLORS = ['#1f77b4'];
const PAD = 28, FOCUS = '#4338ca';
let data = null, localMarker = null, hover = -1, shownZ = null, focusKey = '';
let spriteUrl = '';  // the test images as one tiled PNG (fetched once), for the hover thumbnail
function parse() {
  try { data = JSON.parse(props.value || 'null'); } catch (e) { data = null; }
  if (data && Array.isArray(data.colors) && data.colors.length) COLORS = data.colors;
  const s = data && data.sprite;
  if (s && s.url && s.url !== spriteUrl) { spriteUrl = s.url; new Image().src = s.url; }  // preload
}
// Point i's own input: tile i of the sheet, enlarged with crisp pixels to about 84 px.
function thumbnail(i) {
  const s = data.sprite, t = $('.vx-thumb');
  if (!t) return;
  if (!s || !s.url || i >= s.n) { t.style.display = 'none'; return; }
  const k = Math.max(1, Math.ceil(84 / Math.max(s.h, s.w)));
  Object.assign(t.style, {
    display: 'block', width: s.w * k + 'px', height: s.h * k + 'px',
    backgroundImage: `url("${s.url}")`, backgroundSize: `${s.cols * s.w * k}px auto`,
    backgroundPosition: `${-(i % s.cols) * s.w * k}px ${-Math.floor(i / s.cols) * s.h * k}px`,
  });
}
function size() { const c = $('canvas'); return [c.width - 2 * PAD, c.height - 2 * PAD]; }
// A view puts part of the plane (b = [x0, x1, y0, y1]) on a rectangle of the canvas.
function mainView() { const [W, H] = size(); return {b: data.bounds, x: PAD, y: PAD, w: W, h: H}; }
let view = null;
function toPx(x, y) {
  const v = view || mainView(), [x0, x1, y0, y1] = v.b;
  return [v.x + (x - x0) / (x1 - x0) * v.w, v.y + (y1 - y) / (y1 - y0) * v.h];
}
function toData(px, py) {
  const [x0, x1, y0, y1] = data.bounds, [W, H] = size();
  return [x0 + (px - PAD) / W * (x1 - x0), y1 - (py - PAD) / H * (y1 - y0)];
}
// A k·σ ellipse given in data units (semi-axes a, b; angle th from the x axis, y up).
function ellipse(ctx, c, ax, k) {
  const v = view || mainView(), [x0, x1, y0, y1] = v.b, sx = v.w / (x1 - x0), sy = v.h / (y1 - y0);
  ctx.save(); ctx.setTransform(sx, 0, 0, -sy, v.x - x0 * sx, v.y + y1 * sy);
  ctx.beginPath(); ctx.ellipse(c[0], c[1], k * ax[0] + 1e-9, k * ax[1] + 1e-9, ax[2], 0, 2 * Math.PI);
  ctx.restore();
}
function dot(ctx, p, r, color) {
  const [px, py] = toPx(p[0], p[1]);
  ctx.fillStyle = color; ctx.beginPath(); ctx.arc(px, py, r, 0, 2 * Math.PI); ctx.fill();
}
function label(ctx, p, text, dx, dy) {
  const [px, py] = toPx(p[0], p[1]);
  ctx.fillStyle = '#111827'; ctx.font = 'bold 14px sans-serif'; ctx.fillText(text, px + dx, py + dy);
}
function cross(ctx, x, y, color) {
  const [px, py] = toPx(x, y);
  ctx.strokeStyle = color; ctx.lineWidth = 3;
  ctx.beginPath();
  ctx.moveTo(px - 8, py); ctx.lineTo(px + 8, py); ctx.moveTo(px, py - 8); ctx.lineTo(px, py + 8);
  ctx.stroke(); ctx.lineWidth = 1;
}
function drawFocus(ctx, f, big) {
  if (f.axes) for (const k of [1, 2]) {
    ellipse(ctx, f.mu, f.axes, k); ctx.fillStyle = 'rgba(67,56,202,0.07)'; ctx.fill();
    ctx.strokeStyle = FOCUS; ctx.lineWidth = 2; ctx.setLineDash(k === 2 ? [6, 4] : []); ctx.stroke();
  }
  ctx.setLineDash([]); ctx.lineWidth = 1;
  for (const t of f.trail || []) dot(ctx, t, big ? 3 : 2, 'rgba(67,56,202,0.45)');
  dot(ctx, f.mu, 3, '#111827');
  const z = shownZ || f.z;
  if (z) {  // the step σ ⊙ ε from μ to z, then z itself
    const [ax, ay] = toPx(f.mu[0], f.mu[1]), [bx, by] = toPx(z[0], z[1]);
    ctx.strokeStyle = FOCUS; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(ax, ay); ctx.lineTo(bx, by); ctx.stroke(); ctx.lineWidth = 1;
    dot(ctx, z, big ? 6 : 4, FOCUS); dot(ctx, z, big ? 2.5 : 1.5, '#ffffff');
  }
  if (!big) { label(ctx, f.mu, f.title, 8, -8); return; }
  label(ctx, f.mu, 'μ', -14, 14);
  if (z) label(ctx, z, 'z', 8, -6);
}
// The true posterior p(z|x) of the chosen input (truth_layer.py): per cell a band, 3 inside its
// 50% region, 2 inside 90%, 1 inside 99%; row i of t.bands is the i-th row from the bottom.
const TRUTH = ['', 'rgba(234,88,12,0.16)', 'rgba(234,88,12,0.32)', 'rgba(234,88,12,0.55)'];
function drawTruth(ctx, t) {
  const [x0, x1, y0, y1] = t.b, dx = (x1 - x0) / t.n, dy = (y1 - y0) / t.n;
  t.bands.forEach((row, i) => {
    for (let j = 0; j < row.length; j++) {
      const k = row.charCodeAt(j) - 48;
      if (k <= 0) continue;
      // whole pixels, each cell from its own edge to the next one's: no overlap, no seam
      const [ax, ay] = toPx(x0 + j * dx, y0 + (i + 1) * dy), [bx, by] = toPx(x0 + (j + 1) * dx, y0 + i * dy);
      const l = Math.round(ax), t = Math.round(ay);
      ctx.fillStyle = TRUTH[k]; ctx.fillRect(l, t, Math.round(bx) - l, Math.round(by) - t);
    }
  });
}
// The chosen input's posterior magnified in the top right corner: z moving inside its ellipse.
function drawInset(ctx, f) {
  const S = 150, main = mainView(), x = main.x + main.w - S - 1, y = main.y + 1;
  // μ ± 2.6σ of q, or the window truth_layer.py chose to hold the true posterior as well
  const r = f.truth ? f.truth.r : 2.6 * Math.max(f.axes[0], 1e-6), zoom = (main.b[1] - main.b[0]) / main.w / (2 * r / S);
  ctx.fillStyle = '#ffffff'; ctx.fillRect(x, y, S, S + 16);
  ctx.strokeStyle = '#9ca3af'; ctx.strokeRect(x, y, S, S + 16);
  ctx.fillStyle = '#374151'; ctx.font = '11px sans-serif';
  ctx.fillText((f.truth ? 'q(z|x), p(z|x) ' : 'q(z|x) ') + 'magnified ×' + zoom.toFixed(zoom < 10 ? 1 : 0), x + 4, y + S + 12);
  view = {b: [f.mu[0] - r, f.mu[0] + r, f.mu[1] - r, f.mu[1] + r], x: x, y: y, w: S, h: S};
  ctx.save(); ctx.beginPath(); ctx.rect(x, y, S, S); ctx.clip();
  if (f.truth) drawTruth(ctx, f.truth.inset);
  drawFocus(ctx, f, true); ctx.restore();
  view = null;
}
function draw() {
  const canvas = $('canvas'), ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!data) return;
  const [W, H] = size();
  ctx.strokeStyle = '#d1d5db'; ctx.strokeRect(PAD, PAD, W, H);
  ctx.fillStyle = '#6b7280'; ctx.font = '14px sans-serif';
  ctx.fillText(data.xlabel, PAD + W / 2 - 10, canvas.height - 7);
  ctx.save(); ctx.translate(16, PAD + H / 2 + 10); ctx.rotate(-Math.PI / 2);
  ctx.fillText(data.ylabel, 0, 0); ctx.restore();
  ctx.save(); ctx.beginPath(); ctx.rect(PAD, PAD, W, H); ctx.clip();
  if (data.prior) for (const k of [1, 2]) {  // N(0, I): circles of radius 1 and 2
    ellipse(ctx, data.prior, [1, 1, 0], k); ctx.strokeStyle = '#6b7280'; ctx.setLineDash([3, 3]);
    ctx.stroke(); ctx.setLineDash([]);
    const [px, py] = toPx(data.prior[0] + k * 0.7071, data.prior[1] + k * 0.7071);
    ctx.fillStyle = '#6b7280'; ctx.fillText(k + 'σ prior', px + 3, py - 3);
  }
  const E = data.ellipses;
  if (E && document.body.classList.contains('vx-ellipses')) for (const i of data.sample) {
    const [x, y, c] = data.points[i], col = COLORS[c % COLORS.length];
    ellipse(ctx, [x, y], E[i], 1); ctx.globalAlpha = 0.06; ctx.fillStyle = col; ctx.fill();
    ctx.globalAlpha = 0.45; ctx.strokeStyle = col; ctx.stroke(); ctx.globalAlpha = 1;
  }
  ctx.globalAlpha = data.focus ? 0.4 : 0.75;  // a chosen input stands out
  for (const [x, y, c] of data.points) dot(ctx, [x, y], 3, COLORS[c % COLORS.length]);
  ctx.globalAlpha = 1;
  if (E && hover >= 0 && hover < data.points.length) {
    const [x, y, c] = data.points[hover];
    for (const k of [1, 2]) {
      ellipse(ctx, [x, y], E[hover], k); ctx.strokeStyle = COLORS[c % COLORS.length]; ctx.lineWidth = 2;
      ctx.setLineDash(k === 2 ? [5, 4] : []); ctx.stroke();
    }
    ctx.setLineDash([]); ctx.lineWidth = 1;
  }
  if (data.focus && data.focus.truth) drawTruth(ctx, data.focus.truth.main);
  if (data.focus) drawFocus(ctx, data.focus, false);
  ctx.restore();
  if (data.focus && data.focus.axes) drawInset(ctx, data.focus);
  const m = localMarker || data.marker;
  if (m) cross(ctx, m[0], m[1], '#111827');
  const legend = $('.vx-legend');
  legend.replaceChildren(...data.classes.map((n, i) => {
    const s = document.createElement('span');
    s.style.setProperty('--c', COLORS[i % COLORS.length]); s.textContent = n; return s;
  }));
  $('.vx-map-note').textContent = data.note || '';
}
// A new draw of the same input glides from the old z to the new one inside its ellipse.
function moveZ() {
  const f = data && data.focus, key = f ? JSON.stringify(f.mu) : '';
  const to = f && f.z, from = key === focusKey ? shownZ : null;
  focusKey = key; shownZ = to || null;
  if (!from || !to) return;
  const t0 = performance.now();
  const step = (now) => {
    const t = Math.min(1, (now - t0) / 350), e = t * (2 - t);
    shownZ = [from[0] + (to[0] - from[0]) * e, from[1] + (to[1] - from[1]) * e]; draw();
    if (t < 1) requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
}
function eventPx(ev) {
  const canvas = $('canvas'), r = canvas.getBoundingClientRect();
  return [(ev.clientX - r.left) * canvas.width / r.width, (ev.clientY - r.top) * canvas.height / r.height];
}
element.addEventListener('click', (ev) => {
  if (!data || ev.target.tagName !== 'CANVAS') return;
  const [x, y] = toData(...eventPx(ev));
  localMarker = [x, y]; draw();
  trigger('click', {x: x, y: y});
});
element.addEventListener('mousemove', (ev) => {
  const tip = $('.vx-tip');
  if (!data || ev.target.tagName !== 'CANVAS') { tip.style.display = 'none'; return; }
  const [px, py] = eventPx(ev);
  let best = -1, bestD = 64;
  data.points.forEach(([x, y], i) => {
    const [qx, qy] = toPx(x, y), d = (qx - px) ** 2 + (qy - py) ** 2;
    if (d < bestD) { bestD = d; best = i; }
  });
  if (best !== hover) { hover = best; draw(); }
  if (best < 0) { tip.style.display = 'none'; return; }
  const r = $('canvas').getBoundingClientRect();
  $('.vx-tip-text').textContent = 'class ' + data.classes[data.points[best][2]];
  thumbnail(best);
  tip.style.left = (ev.clientX - r.left + 12) + 'px'; tip.style.top = (ev.clientY - r.top + 12) + 'px';
  tip.style.display = 'block';
});
element.addEventListener('mouseleave', () => { $('.vx-tip').style.display = 'none'; hover = -1; draw(); });
window.addEventListener('vx-map-redraw', () => draw());
watch('value', () => { parse(); localMarker = null; hover = -1; moveZ(); draw(); });
parse(); moveZ(); draw();
