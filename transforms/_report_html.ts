/**
 * The HTML of the dataset report: one page with inline CSS, SVG charts,
 * thumbnails as data URIs and a small inline script for the label filter. A
 * Content-Security-Policy forbids any fetch, so the page stays offline even if a
 * caption held a URL.
 *
 * @module
 */
import { OBSERVATION_NAMES, OBSERVATIONS, type Observation } from '../records.js';
import type { DatasetSummary } from './dataset_report.js';
import { REPORT_SCORES, type LabelCounts, type ReportScore, type ScoreHistogram } from './_report_tally.js';
import type { Thumbnail } from './_report_thumbnails.js';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A number with as many digits as its size warrants. */
function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '—';
  const magnitude = Math.abs(value);
  if (Number.isInteger(value) || magnitude >= 1000) return Math.round(value).toLocaleString('en-US');
  if (magnitude >= 10) return value.toFixed(1);
  if (magnitude >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

/** Bytes in B, kB, MB, GB (powers of 1000). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

const LABEL_COLOURS = { positive: '#d62728', uncertain: '#ff7f0e', negative: '#1f77b4', absent: '#dddddd' } as const;

const SCORE_TITLES: Record<ReportScore, string> = {
  mean: 'Mean intensity',
  contrast: 'Contrast (std. dev.)',
  entropy: 'Entropy (bits)',
  sharpness: 'Sharpness (Laplacian variance, log scale)',
  noise: 'Noise (gray levels)',
  blackShare: 'Share of near-black pixels',
  whiteShare: 'Share of near-white pixels',
  alignment: 'Image–caption alignment (cosine)',
};

/** A two-column table of counts, largest first. */
function countTable(id: string, heading: string, counts: Record<string, number>): string {
  const rows = Object.entries(counts);
  if (rows.length === 0) return `<table id="${id}"><tr><th>${escapeHtml(heading)}</th><th>samples</th></tr><tr><td colspan="2">none recorded</td></tr></table>`;
  return `<table id="${id}"><tr><th>${escapeHtml(heading)}</th><th>samples</th></tr>${rows.map(([name, count]) => `<tr><td>${escapeHtml(name)}</td><td>${formatNumber(count)}</td></tr>`).join('')}</table>`;
}

/** Horizontal bars, one per row, as an inline SVG. */
function barChart(name: string, title: string, rows: [string, number][], colour = '#1f77b4'): string {
  if (rows.length === 0) return `<figure class="chart" data-chart="${escapeHtml(name)}"><figcaption>${escapeHtml(title)}: none</figcaption></figure>`;
  const labelWidth = 190;
  const width = 560;
  const rowHeight = 20;
  const height = rows.length * rowHeight + 8;
  const max = Math.max(...rows.map(([, count]) => count), 1);
  const bars = rows
    .map(([label, count], i) => {
      const y = 4 + i * rowHeight;
      const w = Math.max(1, ((width - labelWidth - 70) * count) / max);
      return (
        `<text x="${labelWidth - 6}" y="${y + 14}" text-anchor="end" font-size="12">${escapeHtml(label)}</text>` +
        `<rect class="bar" x="${labelWidth}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowHeight - 6}" fill="${colour}"><title>${escapeHtml(label)}: ${count}</title></rect>` +
        `<text x="${(labelWidth + w + 4).toFixed(1)}" y="${y + 14}" font-size="12">${formatNumber(count)}</text>`
      );
    })
    .join('');
  return `<figure class="chart" data-chart="${escapeHtml(name)}"><figcaption>${escapeHtml(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${bars}</svg></figure>`;
}

/** The 14 observations as stacked bars: positive, uncertain, negative, absent. */
function labelChart(labels: Record<Observation, LabelCounts>, samples: number): string {
  const labelWidth = 190;
  const width = 620;
  const barWidth = width - labelWidth - 10;
  const rowHeight = 20;
  const height = OBSERVATIONS.length * rowHeight + 30;
  const rows = OBSERVATIONS.map((observation, i) => {
    const counts = labels[observation];
    const y = 4 + i * rowHeight;
    let x = labelWidth;
    const parts = (['positive', 'uncertain', 'negative', 'absent'] as const)
      .map((kind) => {
        const w = samples > 0 ? (barWidth * counts[kind]) / samples : 0;
        const rect =
          w > 0
            ? `<rect class="bar ${kind}" x="${x.toFixed(1)}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowHeight - 6}" fill="${LABEL_COLOURS[kind]}"><title>${escapeHtml(OBSERVATION_NAMES[observation])} ${kind}: ${counts[kind]}</title></rect>`
            : '';
        x += w;
        return rect;
      })
      .join('');
    return `<text x="${labelWidth - 6}" y="${y + 14}" text-anchor="end" font-size="12">${escapeHtml(OBSERVATION_NAMES[observation])}</text>${parts}`;
  }).join('');
  const legendY = OBSERVATIONS.length * rowHeight + 22;
  const legend = (Object.keys(LABEL_COLOURS) as (keyof typeof LABEL_COLOURS)[])
    .map((kind, i) => `<rect x="${labelWidth + i * 100}" y="${legendY - 10}" width="10" height="10" fill="${LABEL_COLOURS[kind]}"/><text x="${labelWidth + 14 + i * 100}" y="${legendY}" font-size="12">${kind}</text>`)
    .join('');
  return `<figure class="chart" data-chart="labels"><figcaption>Label distribution (share of ${formatNumber(samples)} samples)</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${rows}${legend}</svg></figure>`;
}

/** One score's histogram as an inline SVG of vertical bars. */
function histogramChart(name: ReportScore, histogram: ScoreHistogram): string {
  const width = 340;
  const height = 170;
  const pad = { left: 8, right: 8, top: 8, bottom: 34 };
  const plotWidth = width - pad.left - pad.right;
  const plotHeight = height - pad.top - pad.bottom;
  const max = Math.max(...histogram.bins, 1);
  const binWidth = plotWidth / histogram.bins.length;
  const scale = (x: number): number => (histogram.log ? Math.log1p(Math.max(x, 0)) : x);
  const edge = (i: number): number => {
    const position = scale(histogram.low) + (i / histogram.bins.length) * (scale(histogram.high) - scale(histogram.low));
    return histogram.log ? Math.expm1(position) : position;
  };
  const bars = histogram.bins
    .map((count, i) => {
      if (count === 0) return '';
      const h = Math.max(1, (plotHeight * count) / max);
      return `<rect class="bar" x="${(pad.left + i * binWidth + 0.5).toFixed(1)}" y="${(pad.top + plotHeight - h).toFixed(1)}" width="${(binWidth - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="#4c72b0"><title>${formatNumber(edge(i))} … ${formatNumber(edge(i + 1))}: ${count}</title></rect>`;
    })
    .join('');
  const axis =
    `<line x1="${pad.left}" y1="${pad.top + plotHeight}" x2="${width - pad.right}" y2="${pad.top + plotHeight}" stroke="#888"/>` +
    `<text x="${pad.left}" y="${height - 20}" font-size="11">${formatNumber(histogram.low)}</text>` +
    `<text x="${width / 2}" y="${height - 20}" font-size="11" text-anchor="middle">${formatNumber(edge(histogram.bins.length / 2))}</text>` +
    `<text x="${width - pad.right}" y="${height - 20}" font-size="11" text-anchor="end">${formatNumber(histogram.high)}</text>` +
    `<text x="${pad.left}" y="${height - 4}" font-size="11">n ${formatNumber(histogram.count)} · mean ${formatNumber(histogram.mean)} · min ${formatNumber(histogram.min)} · max ${formatNumber(histogram.max)}</text>`;
  return `<figure class="chart histogram" data-chart="${name}"><figcaption>${escapeHtml(SCORE_TITLES[name])}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${axis}${bars}</svg></figure>`;
}

function card(thumbnail: Thumbnail): string {
  const scores = Object.entries(thumbnail.scores)
    .filter(([name]) => name !== 'blackShare' && name !== 'whiteShare')
    .map(([name, value]) => `${name} ${formatNumber(value)}`)
    .join(' · ');
  const chips = thumbnail.positives.map((o) => `<span class="chip">${escapeHtml(OBSERVATION_NAMES[o])}</span>`).join('');
  return (
    `<figure class="card" data-key="${escapeHtml(thumbnail.key)}" data-labels="${thumbnail.positives.join(' ')}" data-sample="${thumbnail.inSample ? 1 : 0}"${thumbnail.inSample ? '' : ' hidden'}>` +
    `<img src="${thumbnail.src}" width="${thumbnail.width}" height="${thumbnail.height}" alt="${escapeHtml(thumbnail.key)}">` +
    `<figcaption><b>${escapeHtml(thumbnail.key)}</b>${thumbnail.attempt && thumbnail.attempt > 1 ? ` <i>attempt ${thumbnail.attempt}</i>` : ''}<br>${escapeHtml(thumbnail.caption)}` +
    `${scores ? `<br><span class="scores">${escapeHtml(scores)}</span>` : ''}${chips ? `<br>${chips}` : ''}</figcaption></figure>`
  );
}

/** The inline script of the label filter: `#label=<observation or its name>` is applied at load and kept in step with the select. */
const FILTER_SCRIPT = `(function () {
  var select = document.getElementById('label-filter');
  var shown = document.getElementById('shown');
  var cards = Array.prototype.slice.call(document.querySelectorAll('#grid .card'));
  function normal(text) { return String(text).toLowerCase().replace(/[^a-z]/g, ''); }
  function resolve(wanted) {
    var options = Array.prototype.slice.call(select.options);
    for (var i = 0; i < options.length; i++) {
      if (normal(options[i].value) === normal(wanted) || normal(options[i].dataset.name || '') === normal(wanted)) return options[i].value;
    }
    return 'all';
  }
  function apply(label) {
    var count = 0;
    cards.forEach(function (card) {
      var show = label === 'all' ? card.dataset.sample === '1' : card.dataset.labels.split(' ').indexOf(label) >= 0;
      card.hidden = !show;
      if (show) count++;
    });
    select.value = label;
    document.body.dataset.filter = label;
    shown.textContent = count + ' of ' + cards.length + ' thumbnails shown';
  }
  function fromHash() {
    var match = /(?:^#|&)label=([^&]*)/.exec(location.hash);
    apply(resolve(match ? decodeURIComponent(match[1]) : 'all'));
  }
  select.addEventListener('change', function () { location.hash = 'label=' + select.value; });
  window.addEventListener('hashchange', fromHash);
  fromHash();
})();`;

/**
 * The report's HTML.
 *
 * @example
 * ```ts
 * writeFileSync('report.html', renderReportHtml(await summarizeDataset('out/')));
 * ```
 */
export function renderReportHtml(summary: DatasetSummary): string {
  const t = summary;
  const meanImagesPerReport = t.reports > 0 ? t.samples / t.reports : 0;
  const tiles: [string, string, string][] = [
    ['samples', 'samples', formatNumber(t.samples)],
    ['reports', 'reports', formatNumber(t.reports)],
    ['images-per-report', 'images per report', formatNumber(meanImagesPerReport)],
    ['shards', 'shards read', `${formatNumber(t.shards.read)}${t.shards.listed !== t.shards.read ? ` of ${formatNumber(t.shards.listed)}` : ''}`],
    ['bytes', 'shard bytes', formatBytes(t.shards.bytes)],
    ['image-bytes', 'image bytes', formatBytes(t.imageBytes)],
    ['rejects', 'rejects', formatNumber(t.rejects.total)],
    ['with-quality', 'with quality scores', formatNumber(t.withQuality)],
  ];
  const totals = `<div id="totals">${tiles.map(([id, label, value]) => `<div class="tile" data-total="${id}"><span class="value">${escapeHtml(value)}</span><span class="label">${escapeHtml(label)}</span></div>`).join('')}</div>`;
  const notes: string[] = [];
  if (t.shards.skipped > 0) notes.push(`${t.shards.skipped} shards could not be read and were skipped: ${t.shards.errors.map(escapeHtml).join('; ')}`);
  if (t.withoutMetadata > 0) notes.push(`${t.withoutMetadata} samples have no readable JSON: they count as unlabelled.`);
  if (t.qualityFailed > 0) notes.push(`${t.qualityFailed} samples in the shards carry a quality verdict that did not pass.`);
  if (t.samples > 0 && t.withQuality === 0) notes.push('No sample carries quality scores (generated without checks and not filtered): run medsyn-filter to score them.');
  const tables = [
    countTable('backends', 'backend', t.backends),
    countTable('models', 'model', t.models),
    countTable('sizes', 'size', t.sizes),
    countTable('formats', 'format', t.formats),
    countTable('per-report', 'images per report', t.imagesPerReport),
    countTable('attempts', 'attempt kept', t.attempts),
    countTable('versions', 'medsyn version', t.versions),
  ].join('');

  const rejectChart = barChart('rejects', 'Rejects by reason', Object.entries(t.rejects.byReason), '#8c564b');
  const checksChart = Object.keys(t.rejects.qualityReasons).length > 0 ? barChart('quality-reasons', 'Quality checks failed by quality_failed rejects', Object.entries(t.rejects.qualityReasons), '#bcbd22') : '';
  const rejectSources = `<table id="reject-sources"><tr><th>counted in</th><th>rejects</th></tr>${
    t.rejects.bySource.length === 0 ? '<tr><td colspan="2">no rejects recorded (pass --rejects FILE to count a run\'s rejects file)</td></tr>' : t.rejects.bySource.map((row) => `<tr><td>${escapeHtml(row.source)}</td><td>${formatNumber(row.total)}</td></tr>`).join('')
  }</table>`;

  const labelRows = OBSERVATIONS.map((o) => {
    const c = t.labels[o];
    return `<tr data-observation="${o}"><td>${escapeHtml(OBSERVATION_NAMES[o])}</td><td>${c.positive}</td><td>${c.uncertain}</td><td>${c.negative}</td><td>${c.absent}</td></tr>`;
  }).join('');
  const labelTable = `<table id="labels"><tr><th>observation</th><th>positive</th><th>uncertain</th><th>negative</th><th>absent</th></tr>${labelRows}</table>`;

  const histograms = (Object.keys(REPORT_SCORES) as ReportScore[])
    .filter((name) => t.scores[name] !== undefined)
    .map((name) => histogramChart(name, t.scores[name]!))
    .join('');

  const inSample = t.thumbnails.filter((thumbnail) => thumbnail.inSample).length;
  const options = OBSERVATIONS.filter((o) => t.thumbnails.some((thumbnail) => thumbnail.positives.includes(o)))
    .map((o) => {
      const cards = t.thumbnails.filter((thumbnail) => thumbnail.positives.includes(o)).length;
      return `<option value="${o}" data-name="${escapeHtml(OBSERVATION_NAMES[o])}">${escapeHtml(OBSERVATION_NAMES[o])} (${cards} shown of ${t.labels[o].positive} positive)</option>`;
    })
    .join('');
  const grid =
    t.thumbnails.length === 0
      ? '<p>No thumbnails (none asked for, or no sample has an image).</p>'
      : `<p><label>Positive for <select id="label-filter"><option value="all">any label: the random sample of ${inSample}</option>${options}</select></label> <span id="shown">${inSample} of ${t.thumbnails.length} thumbnails shown</span></p>
<p class="note">The unfiltered grid is a random sample of the dataset (chosen by a hash of the key); a filter shows every kept thumbnail positive for the label, with a few extra positives kept per label. Link to a filter with <code>#label=Cardiomegaly</code>.</p>
<div id="grid">${t.thumbnails.map(card).join('\n')}</div>
<script>${FILTER_SCRIPT}</script>`;

  // Machine-readable copy of the counts; `<` escaped so that no string can close the element.
  const data = JSON.stringify({ ...summary, thumbnails: summary.thumbnails.length }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(t.title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
h2{margin-top:1.6em;border-bottom:1px solid #ddd}
#totals{display:flex;flex-wrap:wrap;gap:10px}.tile{border:1px solid #ccc;border-radius:6px;padding:8px 14px;min-width:110px}
.tile .value{display:block;font-size:1.5em;font-weight:600}.tile .label{color:#666;font-size:.85em}
.tables{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.chart{display:inline-block;margin:0 1em 1em 0;vertical-align:top}.chart figcaption{font-weight:600;font-size:.9em}
.note{color:#666;font-size:.9em}
#grid{display:flex;flex-wrap:wrap;gap:10px}
.card{margin:0;width:170px;font-size:11px;border:1px solid #ddd;border-radius:4px;padding:6px;background:#fafafa}
.card[hidden]{display:none}.card img{display:block;margin:0 auto 4px;background:#000}
.card .scores{color:#555}.chip{display:inline-block;background:#fde0e0;color:#8b1a1a;border-radius:3px;padding:0 4px;margin:2px 2px 0 0}
</style></head><body>
<h1>${escapeHtml(t.title)}</h1>
<p>medsyn ${escapeHtml(t.medsyn)}; ${formatNumber(t.samples)} samples from <code>${escapeHtml(t.sources.join(' '))}</code>${t.rejectFiles.length > 0 ? `; rejects from <code>${escapeHtml(t.rejectFiles.join(' '))}</code>` : ''}.</p>
${notes.map((note) => `<p class="note warning">${note}</p>`).join('\n')}
<h2>Totals</h2>
${totals}
<div class="tables">${tables}</div>
<h2>Rejects</h2>
${rejectChart}${checksChart}
${rejectSources}
<h2>Labels</h2>
${labelChart(t.labels, t.samples)}
${labelTable}
<h2>Quality scores</h2>
${histograms || '<p>No quality scores in the samples.</p>'}
<h2>Samples</h2>
${grid}
<script type="application/json" id="report-data">${data}</script>
</body></html>
`;
}
