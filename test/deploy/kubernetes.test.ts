/**
 * deploy/kubernetes: the manifests parse (with the YAML-subset parser, cross-checked
 * with PyYAML where python3 has it), the Job is an Indexed Job with a GPU and the
 * shared claim, the image is the Dockerfile's CUDA install, the scripts call only
 * medsyn commands and flags that exist, and running the pods' scripts as 4 indexes and
 * the merge Job's script gives exactly the samples of one run.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ShardManifest } from '../../streams/shard_manifest.js';
import { ROOT, bin, comparable, installCommands, mergedSamples, samplesIn, sh } from '../bin/_pipes.js';
import { documentedFlags, flagsIn, medsynCalls, packageCommands } from './_shell_commands.js';
import { parseYamlDocuments, YamlSubsetError } from './_yaml.js';

const DIR = join(ROOT, 'deploy', 'kubernetes');
const SOURCES = ['bin/_gen_command.ts', 'bin/_shard_command.ts', 'streams/shard_writer.ts', 'streams/shard_merge.ts', 'streams/partition.ts'];

type Manifest = any;

interface EnvVar {
  name: string;
  value?: unknown;
}

/** Every manifest of deploy/kubernetes, with its file. */
function manifests(): { file: string; manifest: Manifest }[] {
  return readdirSync(DIR)
    .filter((name) => name.endsWith('.yaml'))
    .sort()
    .flatMap((file) => parseYamlDocuments(readFileSync(join(DIR, file), 'utf8')).map((manifest) => ({ file, manifest })));
}

/** A container's environment as a map; `value`s only. */
function envOf(container: Manifest): Record<string, string> {
  return Object.fromEntries((container.env as EnvVar[]).map((variable) => [variable.name, variable.value as string]));
}

/** `text` in single quotes for bash. */
function quoted(text: string): string {
  return `'${text.replace(/'/gu, `'\\''`)}'`;
}

/** The bash script a container runs (`command: [/bin/bash, -c]`, `args: [script]`). */
function scriptOf(container: Manifest): string {
  return container.args[0] as string;
}

t.test('parseYamlDocuments reads the subset the manifests use', async (t) => {
  const source = [
    '# a comment',
    'kind: Job   # trailing comment',
    'metadata:',
    '  name: "medsyn # not a comment"',
    "  quoted: 'it''s'",
    '  labels:',
    '    app.kubernetes.io/name: medsyn',
    'spec:',
    '  completions: 4',
    '  ratio: 0.5',
    '  flag: true',
    '  empty: ""',
    '  nothing:',
    '  list: [ReadWriteMany, "b c", 3]',
    '  containers:',
    '  - name: a',
    '    command: ["/bin/bash", "-c"]',
    '    args:',
    '      - |',
    '        set -e',
    '',
    '        echo "#1: x" # kept',
    '      - |-',
    '        no newline',
    '  nested:',
    '    - - x',
    '      - z',
    '    -',
    '      key: value',
    '---',
    'kind: Second',
    '',
  ].join('\n');
  t.same(parseYamlDocuments(source), [
    {
      kind: 'Job',
      metadata: { name: 'medsyn # not a comment', quoted: "it's", labels: { 'app.kubernetes.io/name': 'medsyn' } },
      spec: {
        completions: 4,
        ratio: 0.5,
        flag: true,
        empty: '',
        nothing: null,
        list: ['ReadWriteMany', 'b c', 3],
        containers: [{ name: 'a', command: ['/bin/bash', '-c'], args: ['set -e\n\necho "#1: x" # kept\n', 'no newline'] }],
        nested: [['x', 'z'], { key: 'value' }],
      },
    },
    { kind: 'Second' },
  ]);
  for (const [bad, line, message] of [
    ['a: &anchor 1', 1, /outside the subset/u],
    ['a: *alias', 1, /outside the subset/u],
    ['a: !!str 1', 1, /outside the subset/u],
    ['a: {b: 1}', 1, /outside the subset/u],
    ['a: yes', 1, /quote it/u],
    ['a: 0755', 1, /octal/u],
    ['a: 1\na: 2', 2, /duplicate key 'a'/u],
    ['a:\n  b: 1\n   c: 2', 3, /bad indentation/u],
    ['a:\n\tb: 1', 2, /tabs/u],
    ['a: >\n  folded', 1, /folded/u],
    ['a: "open', 1, /unterminated/u],
    ['a: b\nplain continuation', 2, /expected 'key: value'/u],
    ['a:\n  - 1\n  b: 2', 3, /mapping key was expected|bad indentation/u],
  ] as const) {
    let error: unknown;
    try {
      parseYamlDocuments(bad);
    } catch (err) {
      error = err;
    }
    t.ok(error instanceof YamlSubsetError, `${JSON.stringify(bad)} is refused`);
    t.match(error, { line, message }, JSON.stringify(bad));
  }
});

t.test('every manifest in deploy/kubernetes parses, and means the same to PyYAML where python3 has it', async (t) => {
  const files = readdirSync(DIR).filter((name) => name.endsWith('.yaml'));
  t.same(files.sort(), ['medsyn-data-pvc.yaml', 'medsyn-gen-job.yaml', 'medsyn-merge-job.yaml']);
  const pyyaml = spawnSync('python3', ['-c', 'import yaml'], { stdio: 'ignore' }).status === 0;
  for (const file of files) {
    const source = readFileSync(join(DIR, file), 'utf8');
    const ours = parseYamlDocuments(source);
    t.ok(ours.length >= 1, `${file}: ${ours.length} document(s)`);
    if (!pyyaml) continue;
    const theirs = spawnSync('python3', ['-c', 'import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))'], { input: source, encoding: 'utf8' });
    t.equal(theirs.status, 0, theirs.stderr);
    t.same(ours, JSON.parse(theirs.stdout) as unknown, `${file}: PyYAML reads the same`);
  }
  if (!pyyaml) t.comment('python3 has no yaml module: the PyYAML cross-check is skipped');
});

t.test('medsyn-gen-job.yaml is an Indexed Job with a GPU per pod on the shared claim, its image the Dockerfile CUDA build', async (t) => {
  const all = manifests();
  const job = all.find(({ manifest }) => manifest.kind === 'Job' && manifest.metadata?.name === 'medsyn-gen')?.manifest;
  const merge = all.find(({ manifest }) => manifest.kind === 'Job' && manifest.metadata?.name === 'medsyn-merge')?.manifest;
  const claim = all.find(({ manifest }) => manifest.kind === 'PersistentVolumeClaim')?.manifest;
  t.ok(job && merge && claim, 'a medsyn-gen Job, a medsyn-merge Job and a PersistentVolumeClaim');
  if (!job || !merge || !claim) return;

  t.match(claim, { apiVersion: 'v1', spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: String } } } }, 'the claim can be mounted by every pod at once');

  t.match(job, { apiVersion: 'batch/v1', spec: { completionMode: 'Indexed', template: { spec: { restartPolicy: 'Never' } } } });
  const { completions, parallelism } = job.spec as { completions: unknown; parallelism: unknown };
  t.ok(Number.isInteger(completions) && (completions as number) >= 1, `completions ${String(completions)}`);
  t.ok(Number.isInteger(parallelism) && (parallelism as number) >= 1 && (parallelism as number) <= (completions as number), `parallelism ${String(parallelism)}`);

  for (const [name, manifest] of [['medsyn-gen', job], ['medsyn-merge', merge]] as const) {
    const pod = manifest.spec.template.spec;
    t.equal(pod.containers.length, 1, `${name}: one container`);
    const container = pod.containers[0];
    const volume = (pod.volumes as Manifest[]).find((entry) => entry.persistentVolumeClaim?.claimName === claim.metadata.name);
    t.ok(volume, `${name}: mounts the claim ${claim.metadata.name}`);
    const mount = (container.volumeMounts as Manifest[]).find((entry) => entry.name === volume?.name);
    t.ok(mount, `${name}: the container mounts it`);
    const env = envOf(container);
    t.ok((container.env as EnvVar[]).every((variable) => typeof variable.value === 'string'), `${name}: every env value is a string, as Kubernetes requires`);
    for (const variable of ['MEDSYN_INPUT', 'MEDSYN_OUT'].filter((key) => key in env)) {
      t.ok(env[variable]!.startsWith(`${mount?.mountPath as string}/`), `${name}: ${variable} is on the shared claim`);
    }
    t.same(container.command, ['/bin/bash', '-c'], `${name}: runs a bash script`);
    t.equal(container.args.length, 1);
    t.match(scriptOf(container), /^set -euo pipefail\n/u, `${name}: the script stops at the first failure, in a pipeline too`);
  }
  const container = job.spec.template.spec.containers[0];
  t.equal(container.resources.limits['nvidia.com/gpu'], 1, 'one GPU per pod');
  t.ok((job.spec.template.spec.tolerations as Manifest[]).some((toleration) => toleration.key === 'nvidia.com/gpu'), 'tolerates GPU nodes');
  const env = envOf(container);
  t.equal(env['MEDSYN_PARTITIONS'], String(completions), 'MEDSYN_PARTITIONS is the number of indexes');
  t.equal(envOf(merge.spec.template.spec.containers[0])['MEDSYN_OUT'], env['MEDSYN_OUT'], 'the merge reads the folder the pods write');
  t.match(scriptOf(container), /JOB_COMPLETION_INDEX/u);

  const dockerfile = readFileSync(join(DIR, 'Dockerfile'), 'utf8');
  t.match(dockerfile, /^RUN ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci\b/mu, 'the image installs the CUDA provider of onnxruntime-node');
  t.match(dockerfile, /^FROM nvidia\/cuda:12\.[\d.]+-cudnn-runtime-/mu, 'and runs on CUDA 12 with cuDNN');
  const tag = /docker build -f deploy\/kubernetes\/Dockerfile -t (\S+) \./u.exec(dockerfile)?.[1];
  t.equal(container.image, tag, "the Job's image is the Dockerfile's build");
  t.equal(merge.spec.template.spec.containers[0].image, tag);
});

t.test("the manifests' scripts call only package.json's commands, with flags their --help documents", async (t) => {
  const commands = packageCommands();
  const all = manifests().filter(({ manifest }) => manifest.kind === 'Job');
  const used = new Set<string>();
  for (const { file, manifest } of all) {
    const container = manifest.spec.template.spec.containers[0];
    const calls = medsynCalls(scriptOf(container));
    t.ok(calls.length > 0, `${file}: calls medsyn`);
    for (const call of calls) {
      used.add(call.command);
      t.ok(commands.includes(call.command), `${file}: ${call.command} is in package.json bin`);
      const documented = await documentedFlags(call.command);
      for (const flag of call.flags) t.ok(documented.has(flag), `${file}: ${call.command} ${flag} is in its --help`);
      for (const flag of call.conditionalFlags) {
        // Given only when its variable is set (--model with MEDSYN_MODEL): it must exist all the same.
        t.ok(documented.has(flag), `${file}: ${call.command} ${flag} (when set) is in its --help`);
      }
    }
    const env = envOf(container);
    for (const [variable, command] of [['MEDSYN_GEN_ARGS', 'medsyn-gen'], ['MEDSYN_SHARD_ARGS', 'medsyn-shard']] as const) {
      if (env[variable] === undefined) continue;
      const documented = await documentedFlags(command);
      for (const flag of flagsIn(env[variable])) t.ok(documented.has(flag), `${file}: ${variable} ${flag} is in ${command} --help`);
    }
  }
  t.same([...used].sort(), ['medsyn-gen', 'medsyn-shard']);
  t.same(
    medsynCalls(scriptOf(all.find(({ file }) => file === 'medsyn-merge-job.yaml')!.manifest.spec.template.spec.containers[0])).map((call) => call.flags),
    [['--merge']],
  );
});

t.test("the Job's script run as 4 indexes and the merge Job's script give exactly the samples of one run", async (t) => {
  const stale = SOURCES.filter((source) => {
    const built = join(ROOT, 'dist', source.replace(/\.ts$/u, '.js'));
    return !existsSync(built) || statSync(join(ROOT, source)).mtimeMs > statSync(built).mtimeMs;
  });
  if (stale.length > 0) {
    t.fail(`dist/ is missing or older than ${stale.join(', ')}: run npx tsc -p tsconfig.json first`);
    return;
  }
  const all = manifests();
  const job = all.find(({ manifest }) => manifest.metadata?.name === 'medsyn-gen')!.manifest;
  const merge = all.find(({ manifest }) => manifest.metadata?.name === 'medsyn-merge')!.manifest;
  const dir = t.testdir({});
  // The image puts package.json's commands on PATH; so does this folder.
  const commands = join(dir, 'bin');
  installCommands(commands, packageCommands());
  const input = join(ROOT, 'fixtures', 'reports');
  const out = join(dir, 'data', 'medsyn-out');
  const genArgs = '--size 40';
  // The manifest's environment, with the paths and sizes of a test.
  const podEnv = (index: number): string =>
    Object.entries({
      ...envOf(job.spec.template.spec.containers[0]),
      MEDSYN_INPUT: input,
      MEDSYN_OUT: out,
      MEDSYN_PARTITIONS: '4',
      MEDSYN_BACKEND: 'phantom',
      MEDSYN_MODEL: '',
      MEDSYN_GEN_ARGS: genArgs,
      MEDSYN_SHARD_ARGS: '--max-count 3',
      JOB_COMPLETION_INDEX: String(index),
      PATH: `${commands}:${process.env['PATH'] ?? ''}`,
    })
      .map(([name, value]) => `${name}=${quoted(value)}`)
      .join(' ');
  const script = (manifest: Manifest): string => quoted(scriptOf(manifest.spec.template.spec.containers[0]));
  const pods = await Promise.all([0, 1, 2, 3].map((index) => sh(`env ${podEnv(index)} /bin/bash -c ${script(job)}`, dir)));
  for (const [index, pod] of pods.entries()) {
    t.equal(pod.code, 0, `index ${index}: ${pod.stderr}`);
    t.match(pod.stderr, new RegExp(`medsyn-gen: partition ${index}/4 \\(from JOB_COMPLETION_INDEX\\)`, 'u'));
    t.match(pod.stderr, new RegExp(`medsyn-shard: partition ${index}/4 \\(from JOB_COMPLETION_INDEX\\)`, 'u'));
  }
  const merged = await sh(`env MEDSYN_OUT=${quoted(out)} PATH=${quoted(`${commands}:${process.env['PATH'] ?? ''}`)} /bin/bash -c ${script(merge)}`, dir);
  t.equal(merged.code, 0, merged.stderr);
  t.match(merged.stdout.toString(), /^--train-data .*medsyn-out\/shard-p0000-\{000000\.\.\d{6}\}\.tar::/u);

  const whole = await sh(`${bin('medsyn-gen')} ${JSON.stringify(input)} --backend phantom ${genArgs} -q`);
  t.equal(whole.code, 0, whole.stderr);
  const fromWhole = (await samplesIn(whole.stdout)).map(comparable);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as ShardManifest;
  t.match(manifest, { complete: true, partitions: 4, totals: { samples: fromWhole.length } });
  const { twice, byKey: fromMerged } = await mergedSamples(out);
  t.same(twice, [], 'no sample twice');
  t.equal(fromMerged.size, fromWhole.length, 'none lost');
  t.same(fromWhole.map((sample) => fromMerged.get(sample.key)), fromWhole, 'every sample byte for byte but its timing');
  t.same(readdirSync(`${out}-rejects`).sort(), [0, 1, 2, 3].map((index) => `rejects-p000${index}.ndjson`));
});
