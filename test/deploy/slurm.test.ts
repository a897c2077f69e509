/**
 * deploy/slurm on a real Slurm: a single-node cluster started for the test runs
 * medsyn-gen.sbatch as a 4-task array and medsyn-merge.sbatch after it, as the
 * scripts' header says, and the merged dataset must hold exactly the samples of one
 * unpartitioned run.
 */
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ShardManifest } from '../../streams/shard_manifest.js';
import { ROOT, bin, comparable, installCommands, mergedSamples, samplesIn, sh } from '../bin/_pipes.js';
import { documentedFlags, flagsIn, medsynCalls, packageCommands } from './_shell_commands.js';
import { slurmUnavailable, startSlurmCluster, type SlurmCluster } from './_slurm_cluster.js';

const GEN_SCRIPT = join(ROOT, 'deploy', 'slurm', 'medsyn-gen.sbatch');
const MERGE_SCRIPT = join(ROOT, 'deploy', 'slurm', 'medsyn-merge.sbatch');
const INPUT = join(ROOT, 'fixtures', 'reports');
const GEN_ARGS = '--size 48';
const SHARD_ARGS = '--max-count 2';
const BINS = ['medsyn-gen', 'medsyn-shard'].map((name) => join(ROOT, 'dist', 'bin', `${name}.js`));
const SOURCES = ['bin/_gen_command.ts', 'bin/_shard_command.ts', 'streams/shard_writer.ts', 'streams/shard_merge.ts', 'streams/partition.ts'];

/** Runs a Slurm client program; resolves to its exit status and output, killing it after `timeoutMs`. */
function slurmClient(cluster: SlurmCluster, program: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = cluster.spawn(program, args, { cwd, env, timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The ids of the records in NDJSON rejects files, sorted. */
function rejectIds(paths: string[]): string[] {
  return paths
    .flatMap((path) => readFileSync(path, 'utf8').split('\n').filter((line) => line !== ''))
    .map((line) => {
      const reject = JSON.parse(line) as { id?: string; source: string; reason: string };
      return `${reject.id ?? reject.source} ${reject.reason}`;
    })
    .sort();
}

function registerTests(unavailable: string | undefined): void {
  const needsSlurm = { skip: unavailable === undefined ? false : `no Slurm here: ${unavailable}` };
  t.test('medsyn-gen.sbatch as a 4-task Slurm array, then medsyn-merge.sbatch after it, give exactly the samples of one run', needsSlurm, async (t) => {
    const testStarted = performance.now();
    const cluster = await startSlurmCluster();
    t.teardown(() => cluster.stop());
    t.comment(`single-node Slurm cluster (node ${cluster.node}) up in ${(cluster.startupMs / 1000).toFixed(1)} s`);

    const work = join(cluster.dir, 'work');
    const out = join(work, 'out');
    mkdirSync(join(work, 'logs'), { recursive: true });
    const env = {
      MEDSYN_BIN: join(ROOT, 'dist', 'bin'),
      MEDSYN_NODE: process.execPath,
      MEDSYN_INPUT: INPUT,
      MEDSYN_OUT: out,
      MEDSYN_GEN_ARGS: GEN_ARGS,
      MEDSYN_SHARD_ARGS: SHARD_ARGS,
    };
    // What the script's defaults ask for (8 CPUs, 8 hours) is more than this node has: overridden on the command line, as a user would.
    const arrayStarted = performance.now();
    const submittedAt = Math.floor(Date.now() / 1000) * 1000;
    const submitted = await slurmClient(
      cluster,
      cluster.programs.sbatch,
      ['--parsable', '--array=0-3', '--cpus-per-task=1', '--time=00:05:00', `--output=${join(work, 'logs', '%x-%A_%a.out')}`, GEN_SCRIPT],
      work,
      env,
      30_000,
    );
    t.equal(submitted.code, 0, `sbatch: ${submitted.stderr}`);
    const jobId = submitted.stdout.trim().split(';')[0]!;
    t.match(jobId, /^\d+$/u, 'sbatch --parsable prints the job id');
    const merged = await slurmClient(
      cluster,
      cluster.programs.sbatch,
      ['--wait', `--dependency=afterok:${jobId}`, '--time=00:05:00', `--output=${join(work, 'logs', '%x-%j.out')}`, MERGE_SCRIPT],
      work,
      env,
      120_000,
    );
    const arrayMs = performance.now() - arrayStarted;
    const logNames = existsSync(join(work, 'logs')) ? readdirSync(join(work, 'logs')).sort() : [];
    const logs = Object.fromEntries(logNames.map((name) => [name, readFileSync(join(work, 'logs', name), 'utf8')]));
    if (!t.equal(merged.code, 0, 'the merge job ran after the array and succeeded')) {
      t.comment(`sbatch --wait: ${merged.stderr}\n${Object.entries(logs).map(([name, log]) => `--- ${name}\n${log}`).join('\n')}\n${cluster.logs()}`);
    }
    t.comment(`4-task array and merge job: ${(arrayMs / 1000).toFixed(1)} s from sbatch to the end of sbatch --wait`);

    t.same(logNames, [...[0, 1, 2, 3].map((task) => `medsyn-gen-${jobId}_${task}.out`), logNames.find((name) => name.startsWith('medsyn-merge-'))].filter(Boolean));
    for (const task of [0, 1, 2, 3]) {
      const log = logs[`medsyn-gen-${jobId}_${task}.out`] ?? '';
      t.match(log, new RegExp(`medsyn-gen\\.sbatch: job ${jobId} task ${task} of 4 on `, 'u'), `task ${task} logged its start`);
      t.match(log, new RegExp(`medsyn-gen: partition ${task}/4 \\(from SLURM_ARRAY_TASK_ID\\)`, 'u'), `task ${task}: medsyn-gen took its partition from Slurm`);
      t.match(log, new RegExp(`medsyn-shard: .*out \\(partition ${task}/4\\): \\d+ shards written`, 'u'), `task ${task}: medsyn-shard wrote its partition`);
      t.match(log, new RegExp(`medsyn-gen\\.sbatch: task ${task} done`, 'u'));
    }
    const mergeLog = Object.entries(logs).find(([name]) => name.startsWith('medsyn-merge-'))?.[1] ?? '';
    // When each job ran, in seconds after the submission (the scripts log UTC times to the second).
    const at = (log: string, pattern: RegExp): string => {
      const time = pattern.exec(log)?.[1];
      return time === undefined ? '?' : ((Date.parse(time) - submittedAt) / 1000).toFixed(0);
    };
    const timeline = [0, 1, 2, 3].map((task) => {
      const log = logs[`medsyn-gen-${jobId}_${task}.out`] ?? '';
      return `task ${task} ${at(log, /GPUs \S+, (\S+)$/mu)}-${at(log, / done, (\S+)$/mu)} s`;
    });
    t.comment(`timeline: ${timeline.join(', ')}, merge at ${at(mergeLog, /merging .*, (\S+)$/mu)} s`);
    t.match(mergeLog, /medsyn-shard: .*out: merged 4 partitions: \d+ shards, \d+ samples/u);
    t.match(mergeLog, /^--train-data .*out\/shard-p0000-\{000000\.\.\d{6}\}\.tar::/mu, "the merge log ends with open_clip's --train-data");

    const whole = await sh(`${bin('medsyn-gen')} ${JSON.stringify(INPUT)} --backend phantom ${GEN_ARGS} --rejects ${JSON.stringify(join(work, 'rejects-whole.ndjson'))} -q`);
    t.equal(whole.code, 0, whole.stderr);
    const fromWhole = (await samplesIn(whole.stdout)).map(comparable);
    t.ok(fromWhole.length > 8, `${fromWhole.length} samples in one run`);

    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as ShardManifest;
    t.match(manifest, { complete: true, partitions: 4, totals: { samples: fromWhole.length } });
    const { twice, byKey: fromMerged } = await mergedSamples(out);
    t.same(twice, [], 'no sample twice');
    t.same([...fromMerged.keys()].sort(), fromWhole.map((sample) => sample.key).sort(), 'none lost, none added');
    t.same(fromWhole.map((sample) => fromMerged.get(sample.key)), fromWhole, 'every sample byte for byte but its timing');

    const rejectsDir = `${out}-rejects`;
    t.same(readdirSync(rejectsDir).sort(), ['rejects-p0000.ndjson', 'rejects-p0001.ndjson', 'rejects-p0002.ndjson', 'rejects-p0003.ndjson']);
    t.same(
      rejectIds(readdirSync(rejectsDir).map((name) => join(rejectsDir, name))),
      rejectIds([join(work, 'rejects-whole.ndjson')]),
      'the partitions reject what one run rejects',
    );
    t.comment(`whole test: ${((performance.now() - testStarted) / 1000).toFixed(1)} s`);
  });

  t.test("the sbatch scripts call only package.json's commands, with flags their --help documents", async (t) => {
    const commands = packageCommands();
    const used: string[] = [];
    for (const script of [GEN_SCRIPT, MERGE_SCRIPT]) {
      const name = basename(script);
      for (const call of medsynCalls(readFileSync(script, 'utf8'))) {
        used.push(`${name}: ${call.command}`);
        t.ok(commands.includes(call.command), `${name}: ${call.command} is in package.json bin`);
        const documented = await documentedFlags(call.command);
        for (const flag of call.flags) t.ok(documented.has(flag), `${name}: ${call.command} ${flag} is in its --help`);
        for (const flag of call.conditionalFlags) {
          // Given only when its variable is set (--model with MEDSYN_MODEL): it must exist all the same.
          t.ok(documented.has(flag), `${name}: ${call.command} ${flag} (when set) is in its --help`);
        }
      }
    }
    t.same(used, ['medsyn-gen.sbatch: medsyn-gen', 'medsyn-gen.sbatch: medsyn-shard', 'medsyn-merge.sbatch: medsyn-shard']);
    const documented = await documentedFlags('medsyn-gen');
    for (const flag of flagsIn(GEN_ARGS)) t.ok(documented.has(flag), `the test's MEDSYN_GEN_ARGS ${flag} is in medsyn-gen --help`);
    for (const script of [GEN_SCRIPT, MERGE_SCRIPT]) {
      const syntax = await sh(`bash -n ${JSON.stringify(script)}`);
      t.equal(syntax.code, 0, `bash -n ${basename(script)}: ${syntax.stderr}`);
    }
  });

  t.test('a failed array task makes Slurm cancel the merge job that waits on it (--kill-on-invalid-dep)', needsSlurm, async (t) => {
    const started = performance.now();
    const slurm = await startSlurmCluster();
    t.teardown(() => slurm.stop());
    const work = join(slurm.dir, 'work');
    mkdirSync(join(work, 'logs'), { recursive: true });
    const env = { MEDSYN_BIN: join(ROOT, 'dist', 'bin'), MEDSYN_NODE: process.execPath, MEDSYN_INPUT: join(work, 'no-such-reports.zip'), MEDSYN_OUT: join(work, 'out') };
    const logs = `--output=${join(work, 'logs', '%x-%A_%a.out')}`;
    const submitted = await slurmClient(slurm, slurm.programs.sbatch, ['--parsable', '--array=0-1', '--cpus-per-task=1', logs, GEN_SCRIPT], work, env, 30_000);
    t.equal(submitted.code, 0, submitted.stderr);
    const jobId = submitted.stdout.trim().split(';')[0]!;
    const merged = await slurmClient(slurm, slurm.programs.sbatch, ['--wait', '--parsable', `--dependency=afterok:${jobId}`, `--output=${join(work, 'logs', 'merge.out')}`, MERGE_SCRIPT], work, env, 120_000);
    // Slurm 22.05's sbatch --wait exits 0 for a job cancelled before it ran: ask for the job's state.
    const mergeId = merged.stdout.trim().split(/[;\s]/u)[0]!;
    const state = await slurmClient(slurm, slurm.programs.scontrol, ['show', 'job', mergeId], work, {}, 10_000);
    if (!t.match(state.stdout, /JobState=CANCELLED Reason=DependencyNeverSatisfied/u, 'the merge job was cancelled')) t.comment(`scontrol: ${state.stdout}${state.stderr}`);
    t.notOk(existsSync(join(work, 'logs', 'merge.out')), 'the merge never ran');
    for (const task of [0, 1]) {
      t.match(readFileSync(join(work, 'logs', `medsyn-gen-${jobId}_${task}.out`), 'utf8'), /medsyn-gen: .*no-such-reports\.zip/u, `task ${task} failed on the missing input`);
    }
    t.notOk(existsSync(join(work, 'out', 'manifest.json')));
    t.comment(`failed array and cancelled merge: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });

  t.test('medsyn-gen.sbatch refuses to run outside an array or with task ids medsyn cannot number', async (t) => {
    const dir = t.testdir({});
    const script = JSON.stringify(GEN_SCRIPT);
    const base = `env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_COUNT MEDSYN_INPUT=${JSON.stringify(INPUT)} MEDSYN_OUT=${JSON.stringify(join(dir, 'out'))}`;
    const outside = await sh(`${base} bash ${script}`);
    t.equal(outside.code, 2);
    t.match(outside.stderr, /^medsyn-gen\.sbatch: not a Slurm array task: submit with sbatch --array=0-N/u);
    const stepped = await sh(`${base} SLURM_ARRAY_TASK_ID=2 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=2 bash ${script}`);
    t.equal(stepped.code, 2);
    t.match(stepped.stderr, /the array must be --array=0-N without a step or gaps \(got task ids 0-2, 2 tasks\)/u);
    const noInput = await sh(`env -u MEDSYN_INPUT SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=1 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=0 bash ${script}`);
    t.equal(noInput.code, 2);
    t.match(noInput.stderr, /^medsyn-gen\.sbatch: set MEDSYN_INPUT to the reports/u);
    const badBin = await sh(`${base} MEDSYN_BIN=${JSON.stringify(dir)} SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=1 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=0 bash ${script}`);
    t.equal(badBin.code, 2);
    t.match(badBin.stderr, /MEDSYN_BIN=.* holds neither medsyn-gen nor medsyn-gen\.js/u);
    t.notOk(existsSync(join(dir, 'out')), 'nothing written');
  });

  t.test('medsyn-gen.sbatch runs partitions outside Slurm when given their variables, finding medsyn in MEDSYN_BIN (dist/bin) or on PATH', async (t) => {
    const dir = t.testdir({});
    const out = join(dir, 'out');
    const commands = join(dir, 'bin');
    installCommands(commands, ['medsyn-gen', 'medsyn-shard']);
    const common = `MEDSYN_INPUT=${JSON.stringify(INPUT)} MEDSYN_OUT=${JSON.stringify(out)} MEDSYN_GEN_ARGS='--size 32 --limit 6' SLURM_ARRAY_JOB_ID=7 SLURM_ARRAY_TASK_COUNT=2 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=1`;
    const fromBin = await sh(`env -u MEDSYN_BIN ${common} MEDSYN_BIN=${JSON.stringify(join(ROOT, 'dist', 'bin'))} SLURM_ARRAY_TASK_ID=1 bash ${JSON.stringify(GEN_SCRIPT)}`, dir);
    t.equal(fromBin.code, 0, fromBin.stderr);
    t.match(fromBin.stderr, /^medsyn-gen\.sbatch: job 7 task 1 of 2 on /u);
    t.match(fromBin.stderr, /medsyn-gen: partition 1\/2 \(from SLURM_ARRAY_TASK_ID\)/u);
    const fromPath = await sh(`env -u MEDSYN_BIN ${common} PATH=${JSON.stringify(`${commands}:${process.env['PATH'] ?? ''}`)} SLURM_ARRAY_TASK_ID=0 bash ${JSON.stringify(GEN_SCRIPT)}`, dir);
    t.equal(fromPath.code, 0, fromPath.stderr);
    t.match(fromPath.stderr, /medsyn-shard: partition 0\/2 \(from SLURM_ARRAY_TASK_ID\)/u);
    t.same(readdirSync(out).filter((name) => name.startsWith('manifest')).sort(), ['manifest-p0000.json', 'manifest-p0001.json']);
    t.same(readdirSync(`${out}-rejects`).sort(), ['rejects-p0000.ndjson', 'rejects-p0001.ndjson']);
    const merged = await sh(`env -u MEDSYN_BIN MEDSYN_OUT=${JSON.stringify(out)} PATH=${JSON.stringify(`${commands}:${process.env['PATH'] ?? ''}`)} bash ${JSON.stringify(MERGE_SCRIPT)}`, dir);
    t.equal(merged.code, 0, merged.stderr);
    t.match(merged.stdout.toString(), /^--train-data .*out\/shard-p0000-000000\.tar::.*out\/shard-p0001-000000\.tar\n$/u);
  });
}

/** Whether a source is newer than what tsc made of it in dist/. */
const stale = (source: string): boolean => {
  const built = join(ROOT, 'dist', source.replace(/\.ts$/u, '.js'));
  return !existsSync(built) || statSync(join(ROOT, source)).mtimeMs > statSync(built).mtimeMs;
};

if (!BINS.every((path) => existsSync(path)) || SOURCES.some(stale)) {
  t.fail(`dist/ is missing or older than ${SOURCES.filter(stale).join(', ')}: run npx tsc -p tsconfig.json first`);
} else {
  registerTests(slurmUnavailable());
}
