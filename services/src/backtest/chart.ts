/**
 * Equity curve and drawdown as one SVG document (no dependency: two polylines, axes and labels).
 * Long curves are reduced to at most `width` columns keeping each column's minimum and maximum,
 * so spikes and the deepest drawdown stay visible however many bars the run had.
 */
export interface ChartInput {
  title: string;
  /** Epoch ms per point. */
  time: ArrayLike<number>;
  equity: ArrayLike<number>;
  /** Fraction under the running peak per point (0.1 = 10 %). */
  drawdown: ArrayLike<number>;
}

const W = 960;
const EQ_H = 300;
const DD_H = 140;
const PAD = { left: 80, right: 20, top: 36, gap: 28, bottom: 30 };

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c]!);
}

/** Indices to keep when drawing `y` in `columns` columns: per column, its minimum and maximum (in index order). */
export function envelopeIndices(y: ArrayLike<number>, columns: number): number[] {
  // The first and last points always stay (a curve must end on the final equity).
  const n = y.length;
  if (n <= columns * 2) return Array.from({ length: n }, (_, i) => i);
  const out: number[] = [];
  for (let c = 0; c < columns; c++) {
    const a = Math.floor((c * n) / columns);
    const b = Math.max(a + 1, Math.floor(((c + 1) * n) / columns));
    let lo = a;
    let hi = a;
    for (let i = a; i < b; i++) {
      if (y[i] < y[lo]) lo = i;
      if (y[i] > y[hi]) hi = i;
    }
    const first = Math.min(lo, hi);
    const second = Math.max(lo, hi);
    if (c === 0 && first !== 0) out.push(0);
    out.push(first);
    if (second !== first) out.push(second);
    if (c === columns - 1 && out[out.length - 1] !== n - 1) out.push(n - 1);
  }
  return out;
}

function path(idx: number[], y: ArrayLike<number>, x0: number, w: number, n: number, top: number, h: number, lo: number, hi: number): string {
  const span = hi - lo || 1;
  return idx
    .map((i) => `${(x0 + (n > 1 ? (i / (n - 1)) * w : 0)).toFixed(1)},${(top + h - ((y[i] - lo) / span) * h).toFixed(1)}`)
    .join(" ");
}

const fmt = (v: number) => (Math.abs(v) >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : Math.abs(v) >= 1e3 ? `${(v / 1e3).toFixed(1)}k` : v.toFixed(2));
const day = (t: number) => (Number.isFinite(t) ? new Date(t).toISOString().slice(0, 16).replace("T", " ") : "");

export function equityChartSvg(input: ChartInput): string {
  const n = input.equity.length;
  const plotW = W - PAD.left - PAD.right;
  const eqTop = PAD.top;
  const ddTop = eqTop + EQ_H + PAD.gap;
  const height = ddTop + DD_H + PAD.bottom;
  let lo = Infinity;
  let hi = -Infinity;
  let worst = 0;
  for (let i = 0; i < n; i++) {
    if (input.equity[i] < lo) lo = input.equity[i];
    if (input.equity[i] > hi) hi = input.equity[i];
    if (input.drawdown[i] > worst) worst = input.drawdown[i];
  }
  if (n === 0) lo = hi = 0;
  const eqIdx = envelopeIndices(input.equity, plotW);
  const under = Float64Array.from(input.drawdown, (v) => -v);
  const ddLine = path(envelopeIndices(under, plotW), under, PAD.left, plotW, n, ddTop, DD_H, -(worst || 0.01), 0);
  const x1 = PAD.left + plotW;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${height}" fill="#fff"/>`,
    `<text x="${PAD.left}" y="22" font-size="15" font-weight="bold">${escapeXml(input.title)}</text>`,
    `<g stroke="#ccc"><line x1="${PAD.left}" y1="${eqTop}" x2="${PAD.left}" y2="${eqTop + EQ_H}"/><line x1="${PAD.left}" y1="${eqTop + EQ_H}" x2="${x1}" y2="${eqTop + EQ_H}"/>`,
    `<line x1="${PAD.left}" y1="${ddTop}" x2="${PAD.left}" y2="${ddTop + DD_H}"/><line x1="${PAD.left}" y1="${ddTop}" x2="${x1}" y2="${ddTop}"/></g>`,
    `<text x="${PAD.left - 6}" y="${eqTop + 10}" text-anchor="end">${fmt(hi)}</text>`,
    `<text x="${PAD.left - 6}" y="${eqTop + EQ_H}" text-anchor="end">${fmt(lo)}</text>`,
    `<text x="${PAD.left + 6}" y="${eqTop + 14}" fill="#555">equity</text>`,
    `<polyline fill="none" stroke="#1f6feb" stroke-width="1.2" points="${path(eqIdx, input.equity, PAD.left, plotW, n, eqTop, EQ_H, lo, hi)}"/>`,
    `<text x="${PAD.left - 6}" y="${ddTop + 10}" text-anchor="end">0 %</text>`,
    `<text x="${PAD.left - 6}" y="${ddTop + DD_H}" text-anchor="end">-${(worst * 100).toFixed(1)} %</text>`,
    `<text x="${PAD.left + 6}" y="${ddTop + DD_H - 6}" fill="#555">drawdown</text>`,
    `<polyline fill="#f8514933" stroke="#d1242f" stroke-width="1" points="${PAD.left},${ddTop} ${ddLine} ${x1},${ddTop}"/>`,
    `<text x="${PAD.left}" y="${height - 8}">${day(input.time[0])}</text>`,
    `<text x="${x1}" y="${height - 8}" text-anchor="end">${day(input.time[n - 1])}</text>`,
    `</svg>`,
  ].join("\n");
}
