// The rate–distortion plane (vae_explorer/ui/rd_view.py builds its JSON value): each sweep
// model's path and its current point labelled with β, lines of equal −ELBO (D + R = c), the
// distortion floor, the Train tab's run as a path; a click sends its data coordinates back.
// Runs as gr.HTML's js_on_load: element, props, trigger and watch are given.
const $ = (sel) => element.querySelector(sel);
const PAD = {l: 72, r: 16, t: 16, b: 48};
let data = null;
function parse() { try { data = JSON.parse(props.value || 'null'); } catch (e) { data = null; } }
function frame() {
  const c = $('canvas');
  return {W: c.width - PAD.l - PAD.r, H: c.height - PAD.t - PAD.b};
}
function toPx(r, d) {
  const [r0, r1, d0, d1] = data.bounds, {W, H} = frame();
  return [PAD.l + (r - r0) / (r1 - r0) * W, PAD.t + (d1 - d) / (d1 - d0) * H];
}
function toData(px, py) {
  const [r0, r1, d0, d1] = data.bounds, {W, H} = frame();
  return [r0 + (px - PAD.l) / W * (r1 - r0), d1 - (py - PAD.t) / H * (d1 - d0)];
}
function ticks(lo, hi, n) {  // about n round numbers between lo and hi
  const raw = (hi - lo) / n, p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}
function draw() {
  const canvas = $('canvas'), ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!data) return;
  const [r0, r1, d0, d1] = data.bounds, {W, H} = frame();
  ctx.font = '14px sans-serif'; ctx.fillStyle = '#374151'; ctx.strokeStyle = '#e5e7eb';
  for (const r of ticks(r0, r1, 6)) {
    const [x] = toPx(r, d0);
    ctx.beginPath(); ctx.moveTo(x, PAD.t); ctx.lineTo(x, PAD.t + H); ctx.stroke();
    ctx.fillText(String(r), x - 8, PAD.t + H + 18);
  }
  ctx.textAlign = 'right';
  for (const d of ticks(d0, d1, 5)) {
    const [, y] = toPx(r0, d);
    ctx.beginPath(); ctx.moveTo(PAD.l, y); ctx.lineTo(PAD.l + W, y); ctx.stroke();
    ctx.fillText(String(d), PAD.l - 6, y + 5);
  }
  ctx.textAlign = 'left';
  ctx.fillText('rate R = KL(q(z|x) ‖ p(z)), nats', PAD.l + W / 2 - 110, canvas.height - 8);
  ctx.save(); ctx.translate(16, PAD.t + H / 2 + 100); ctx.rotate(-Math.PI / 2);
  ctx.fillText('distortion D = −log p(x|z), nats', 0, 0); ctx.restore();
  ctx.save(); ctx.beginPath(); ctx.rect(PAD.l, PAD.t, W, H); ctx.clip();
  ctx.setLineDash([5, 5]); ctx.strokeStyle = '#9ca3af'; ctx.fillStyle = '#6b7280';
  for (const c of data.elbo_lines) {  // D + R = c: a line of slope −1
    const [ax, ay] = toPx(r0, c - r0), [bx, by] = toPx(r1, c - r1);
    ctx.beginPath(); ctx.moveTo(ax, ay); ctx.lineTo(bx, by); ctx.stroke();
    const lr = Math.max(r0, Math.min(r1, c - d0)) , [lx, ly] = toPx(lr - 0.02 * (r1 - r0), c - lr + 0.02 * (r1 - r0));
    ctx.fillText('−ELBO ' + c, Math.min(lx, PAD.l + W - 90), Math.max(ly - 4, PAD.t + 12));
  }
  if (data.floor != null) {
    const [, y] = toPx(r0, data.floor);
    ctx.strokeStyle = '#111827'; ctx.beginPath(); ctx.moveTo(PAD.l, y); ctx.lineTo(PAD.l + W, y); ctx.stroke();
    ctx.fillStyle = '#111827'; ctx.fillText(data.floor_label, PAD.l + 6, y - 6);
  }
  ctx.setLineDash([]);
  const prev = data.previous || [];
  if (prev.length && !document.body.classList.contains('vx-no-ghost')) {  // the run before it, faint
    ctx.strokeStyle = '#94a3b8'; ctx.lineWidth = 2; ctx.setLineDash([2, 4]); ctx.beginPath();
    prev.forEach(([r, d], i) => { const [x, y] = toPx(r, d); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke(); ctx.setLineDash([]); ctx.lineWidth = 1;
    const [r, d] = prev[prev.length - 1], [x, y] = toPx(r, d);
    ctx.fillStyle = '#94a3b8'; ctx.fillRect(x - 4, y - 4, 8, 8); ctx.fillText('previous run', x + 8, y - 8);
  }
  if (data.run && data.run.length) {  // the Train tab's own run, epoch by epoch
    ctx.strokeStyle = '#111827'; ctx.lineWidth = 2; ctx.beginPath();
    data.run.forEach(([r, d], i) => { const [x, y] = toPx(r, d); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke(); ctx.lineWidth = 1;
    const [r, d] = data.run[data.run.length - 1], [x, y] = toPx(r, d);
    ctx.fillStyle = '#111827'; ctx.fillRect(x - 5, y - 5, 10, 10);
    ctx.fillText('your Train run', x + 8, y + 16);
  }
  const places = [];  // each model's point in canvas pixels, for the browser tests (data-points)
  data.models.forEach((m, k) => {
    ctx.strokeStyle = m.color; ctx.globalAlpha = 0.5; ctx.lineWidth = 2; ctx.beginPath();
    m.path.forEach(([r, d], i) => { const [x, y] = toPx(r, d); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke(); ctx.globalAlpha = 1; ctx.lineWidth = 1;
    const [r, d] = m.path[m.path.length - 1], [x, y] = toPx(r, d);
    places.push([Math.round(x), Math.round(y)]);
    if (m.info != null) {  // I(x; z) at the same distortion: the rate's information part
      const [ix] = toPx(m.info, d);
      ctx.strokeStyle = m.color; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(ix, y); ctx.lineTo(x, y); ctx.stroke();
      ctx.fillStyle = '#ffffff'; ctx.beginPath(); ctx.arc(ix, y, 5, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
      ctx.lineWidth = 1;
    }
    ctx.fillStyle = m.color; ctx.beginPath(); ctx.arc(x, y, k === data.selected ? 10 : 7, 0, 2 * Math.PI); ctx.fill();
    if (k === data.selected) { ctx.strokeStyle = '#111827'; ctx.lineWidth = 3; ctx.stroke(); ctx.lineWidth = 1; }
    ctx.fillStyle = '#111827'; ctx.font = 'bold 15px sans-serif'; ctx.fillText('β ' + m.beta, x + 11, y - 8);
    ctx.font = '14px sans-serif';
  });
  ctx.restore();
  canvas.dataset.points = JSON.stringify(places);
  ctx.strokeStyle = '#d1d5db'; ctx.strokeRect(PAD.l, PAD.t, W, H);
  $('.vx-rd-note').textContent = data.models.length ? data.legend : '';
}
parse(); draw();
watch('value', () => { parse(); draw(); });
// The "Show the previous run" checkbox (ghost.py) switches a class on <body>: redraw with it.
new MutationObserver(draw).observe(document.body, {attributes: true, attributeFilter: ['class']});
$('canvas').addEventListener('click', (e) => {
  if (!data || !data.models.length) return;
  const c = $('canvas'), rect = c.getBoundingClientRect();
  const [r, d] = toData((e.clientX - rect.left) * c.width / rect.width, (e.clientY - rect.top) * c.height / rect.height);
  trigger('click', {x: r, y: d});
});
