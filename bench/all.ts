/**
 * `npm run bench`: runs every benchmark under bench/ (clean, shard, gen, quality,
 * engine, train, onnx), each in its own process with its figures asked for as JSON
 * (`MEDSYN_BENCH_JSON`, see `_figures.ts`), and prints ONE table on stdout:
 * benchmark, figure, value, reference (measured in the same run), ratio. What the
 * benchmarks print themselves goes to stderr as they run.
 *
 *     npm run bench [-- --quick] [-- --only clean,shard] [-- --json figures.json]
 *
 * `--quick` gives each benchmark smaller inputs and fewer rounds, so the whole table
 * takes a few minutes on two cores; the corpora they need (bench/_mimic_corpus.ts,
 * phantom shards) are generated on the way and cached in bench/out/. A benchmark that
 * fails is a row saying so (and the exit status is 1); the others still run. The
 * engine benchmark compares with PyTorch when python3 can import torch, and otherwise
 * says in its row that the reference is a recorded figure, not one measured here.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FIGURES_ENV, type FigureFile } from './_figures.js';
import { figureRow, formatTable, type TableRow } from './_table.js';

/** Every benchmark, with the arguments of `--quick` (the full run takes the defaults). */
export const BENCHMARKS: ReadonlyArray<{ name: string; quick: string[] }> = [
  { name: 'clean', quick: ['--count', '20000'] },
  { name: 'shard', quick: ['--samples', '400', '--rounds', '1'] },
  { name: 'gen', quick: ['--reports', '96', '--rounds', '1'] },
  { name: 'quality', quick: ['--images', '96', '--rounds', '1', '--stored', '50000', '--queries', '2000', '--scan-queries', '100'] },
  { name: 'engine', quick: ['--rounds', '4', '--steps', '5', '--warmup', '5'] },
  { name: 'train', quick: ['--samples', '200', '--size', '64', '--epochs', '2'] },
  { name: 'onnx', quick: ['--quick'] },
];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    json: { type: 'string' },
  },
});
const here = dirname(fileURLToPath(import.meta.url));
const only = values.only?.split(',').map((name) => name.trim()).filter(Boolean);
const unknown = only?.filter((name) => !BENCHMARKS.some((bench) => bench.name === name)) ?? [];
if (unknown.length > 0) {
  process.stderr.write(`bench/all: unknown benchmark ${unknown.join(', ')} (benchmarks: ${BENCHMARKS.map((bench) => bench.name).join(', ')})\n`);
  process.exit(2);
}
const chosen = BENCHMARKS.filter((bench) => !only || only.includes(bench.name));

/** Runs one benchmark; resolves to its figures, or to why there are none. */
function runBenchmark(name: string, args: string[], figuresPath: string): Promise<{ file?: FigureFile; code: number | null; seconds: number; tail: string }> {
  return new Promise((resolve) => {
    const started = performance.now();
    rmSync(figuresPath, { force: true });
    const child = spawn(process.execPath, [join(here, `${name}.js`), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, [FIGURES_ENV]: figuresPath },
    });
    let tail = '';
    const relay = (chunk: Buffer): void => {
      process.stderr.write(chunk);
      tail = (tail + chunk.toString()).slice(-2000);
    };
    child.stdout.on('data', relay);
    child.stderr.on('data', relay);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      let file: FigureFile | undefined;
      if (existsSync(figuresPath)) file = JSON.parse(readFileSync(figuresPath, 'utf8')) as FigureFile;
      resolve({ ...(file ? { file } : {}), code, seconds, tail });
    });
  });
}

const load = (): string => loadavg().map((value) => value.toFixed(2)).join(' ');
const machine = `${availableParallelism()} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
const loadBefore = load();
const work = mkdtempSync(join(tmpdir(), 'medsyn-bench-'));
const rows: TableRow[] = [];
const files: Array<FigureFile & { seconds: number; code: number | null }> = [];
let failed = false;
const startedAll = performance.now();
try {
  for (const bench of chosen) {
    const args = values.quick ? bench.quick : [];
    process.stderr.write(`\n== bench/${bench.name} ${args.join(' ')}\n`);
    const result = await runBenchmark(bench.name, args, join(work, `${bench.name}.json`));
    process.stderr.write(`== bench/${bench.name}: exit ${result.code} in ${result.seconds.toFixed(1)} s\n`);
    if (result.file && result.code === 0) {
      files.push({ ...result.file, seconds: result.seconds, code: result.code });
      for (const figure of result.file.figures) rows.push(figureRow(bench.name, figure));
    } else {
      failed = true;
      const last = result.tail.trim().split('\n').filter(Boolean).at(-1) ?? '';
      rows.push({
        benchmark: bench.name,
        figure: 'FAILED',
        value: `exit ${result.code}${result.file ? '' : ', no figures'}`,
        reference: last.slice(0, 120),
        ratio: '—',
      });
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const totalSeconds = (performance.now() - startedAll) / 1000;
process.stdout.write(
  [
    `medsyn benchmarks${values.quick ? ' (--quick: smaller inputs, fewer rounds)' : ''}: node dist/bench/all.js ${process.argv.slice(2).join(' ')}`.trimEnd(),
    `machine: ${machine}; load average ${loadBefore} before, ${load()} after; ${totalSeconds.toFixed(0)} s in all`,
    'ratio: value / reference (both measured in the same run) unless the figure says otherwise; > 1 is faster for rates',
    '',
    formatTable(rows),
  ].join('\n'),
);
if (values.json) writeFileSync(values.json, `${JSON.stringify({ format: 'medsyn-bench-all/1', quick: values.quick, machine, seconds: totalSeconds, benchmarks: files }, null, 2)}\n`);
process.exitCode = failed ? 1 : 0;
