/**
 * The self-contained HTML report of `medsyn-eval`: training curves as inline
 * SVG, the AUROC table, and retrieved thumbnails as data URIs. No scripts, no
 * network.
 *
 * @module
 */
import type { TrainLogEntry } from './contrastive_trainer.js';
import type { EvalMetrics } from './evaluate_run.js';

/** One text query of the report with its top images. */
export interface ReportQuery {
  caption: string;
  results: { thumbnail: string; caption: string; match: boolean; score: number }[];
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

/** A line chart of named series as an inline SVG. */
function lineChart(title: string, series: { name: string; points: [number, number][] }[]): string {
  const width = 520;
  const height = 240;
  const pad = { left: 48, right: 12, top: 24, bottom: 28 };
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return `<figure class="chart" data-chart="${escapeHtml(title)}"><figcaption>${escapeHtml(title)}: no data</figcaption></figure>`;
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y1 === y0) [y0, y1] = [y0 - 1, y1 + 1];
  const sx = (x: number): number => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const sy = (y: number): number => height - pad.bottom - ((y - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
  const paths = series
    .map((s, i) => {
      const d = s.points.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
      return `<path class="series" d="${d}" fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="1.5"><title>${escapeHtml(s.name)}</title></path>`;
    })
    .join('');
  const legend = series.map((s, i) => `<text x="${pad.left + 8 + i * 120}" y="16" fill="${COLOURS[i % COLOURS.length]}" font-size="12">${escapeHtml(s.name)}</text>`).join('');
  const axes =
    `<line x1="${pad.left}" y1="${height - pad.bottom}" x2="${width - pad.right}" y2="${height - pad.bottom}" stroke="#888"/>` +
    `<line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${height - pad.bottom}" stroke="#888"/>` +
    `<text x="4" y="${sy(y1) + 4}" font-size="11">${y1.toPrecision(3)}</text><text x="4" y="${sy(y0)}" font-size="11">${y0.toPrecision(3)}</text>` +
    `<text x="${pad.left}" y="${height - 8}" font-size="11">step ${x0}</text><text x="${width - pad.right - 60}" y="${height - 8}" font-size="11">step ${x1}</text>`;
  return `<figure class="chart" data-chart="${escapeHtml(title)}"><figcaption>${escapeHtml(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${axes}${paths}${legend}</svg></figure>`;
}

function format(value: number | null | undefined): string {
  return value === null || value === undefined || Number.isNaN(value) ? '—' : value.toFixed(3);
}

/**
 * The report's HTML.
 *
 * @example
 * ```ts
 * writeFileSync('report.html', renderEvalReport(metrics, logEntries, queries));
 * ```
 */
export function renderEvalReport(metrics: EvalMetrics, log: readonly TrainLogEntry[], queries: readonly ReportQuery[]): string {
  const steps = log.filter((entry): entry is Extract<TrainLogEntry, { event: 'step' }> => entry.event === 'step');
  const evals = log.filter((entry): entry is Extract<TrainLogEntry, { event: 'eval' }> => entry.event === 'eval');
  const charts = [
    lineChart('Loss', [
      { name: 'train loss', points: steps.map((e) => [e.step, e.loss]) },
      { name: 'validation loss', points: evals.map((e) => [e.step, e.valLoss]) },
    ]),
    lineChart('Validation retrieval', [
      { name: 'image→text R@1', points: evals.map((e) => [e.step, e.imageToText.r1]) },
      { name: 'text→image R@1', points: evals.map((e) => [e.step, e.textToImage.r1]) },
      { name: 'image→text R@5', points: evals.map((e) => [e.step, e.imageToText.r5]) },
      { name: 'text→image R@5', points: evals.map((e) => [e.step, e.textToImage.r5]) },
    ]),
  ];
  const rows = Object.values(metrics.observations)
    .map((o) => `<tr><td>${escapeHtml(o.name)}</td><td>${o.positives}</td><td>${o.negatives}</td><td>${format(o.zeroShotAuroc)}</td><td>${format(o.probeAuroc)}</td></tr>`)
    .join('\n');
  const r = metrics.retrieval;
  const retrieval = `<table><tr><th></th><th>R@1</th><th>R@5</th><th>R@10</th><th>median rank</th></tr>
<tr><td>image→text</td><td>${format(r.imageToText.r1)}</td><td>${format(r.imageToText.r5)}</td><td>${format(r.imageToText.r10)}</td><td>${r.imageToText.medianRank}</td></tr>
<tr><td>text→image</td><td>${format(r.textToImage.r1)}</td><td>${format(r.textToImage.r5)}</td><td>${format(r.textToImage.r10)}</td><td>${r.textToImage.medianRank}</td></tr></table>`;
  const gallery = queries
    .map(
      (q) =>
        `<section class="query"><h3>“${escapeHtml(q.caption)}”</h3><div class="results">${q.results
          .map(
            (result) =>
              `<figure class="${result.match ? 'match' : ''}"><img src="${result.thumbnail}" alt="retrieved image"><figcaption>${escapeHtml(result.caption)} (${result.score.toFixed(2)})</figcaption></figure>`,
          )
          .join('')}</div></section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>medsyn-eval report</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}
.chart{display:inline-block;margin:0 1em 1em 0}.results{display:flex;gap:8px;flex-wrap:wrap}
.results figure{margin:0;width:120px;font-size:11px}.results img{width:96px;height:96px;image-rendering:pixelated;border:3px solid transparent}
.results figure.match img{border-color:#2ca02c}
</style></head><body>
<h1>medsyn-eval</h1>
<p>Run <code>${escapeHtml(metrics.run)}</code>, checkpoint at step ${metrics.step}; ${metrics.samples} samples (${metrics.split}) from <code>${escapeHtml(metrics.data.join(' '))}</code>, labels from ${escapeHtml(metrics.labelSource)} (${metrics.labelled} labelled).</p>
<h2>Training</h2>
${charts.join('\n')}
<h2>Classification</h2>
<p>Zero-shot macro AUROC: <b>${format(metrics.zeroShot.macroAuroc)}</b> over ${metrics.zeroShot.counted.length} observations with both classes${metrics.probe ? `; linear probe macro AUROC: <b>${format(metrics.probe.macroAuroc)}</b> (${metrics.probe.trainCount} train, ${metrics.probe.testCount} test)` : ''}.</p>
<table id="auroc"><tr><th>Observation</th><th>positive</th><th>negative</th><th>zero-shot AUROC</th><th>probe AUROC</th></tr>
${rows}
</table>
<h2>Retrieval</h2>
<p>Over ${r.count} pairs.</p>
${retrieval}
<h2>Text queries and the images they retrieve</h2>
<p>The matching image has a green frame.</p>
${gallery}
</body></html>
`;
}
