/**
 * A throw-away single-node Slurm cluster for tests: munged, slurmctld and slurmd run in
 * the foreground as children of the test, with a generated slurm.conf, a fresh munge
 * key, free ports and every state, spool, log and socket file in one temporary folder.
 *
 * @module
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, appendFileSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** The programs the cluster needs; Debian puts the daemons in /usr/sbin, often not on a user's PATH. */
const PROGRAMS = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'sinfo', 'squeue', 'scontrol', 'scancel'] as const;

/** A running cluster. */
export interface SlurmCluster {
  /** The temporary folder that holds everything the cluster writes. */
  dir: string;
  /** The environment for sbatch, sinfo, scancel: `SLURM_CONF` and a PATH with the programs. */
  env: NodeJS.ProcessEnv;
  /** The node's name (the host's short name). */
  node: string;
  /** Milliseconds from the first daemon's start to the node being idle. */
  startupMs: number;
  /** Absolute paths of the Slurm and munge programs. */
  programs: Record<(typeof PROGRAMS)[number], string>;
  /** The last lines of the daemons' logs, for failure messages. */
  logs(): string;
  /** Starts a client program (sbatch, ...) with the cluster's environment; it is killed with the cluster if the test dies first. */
  spawn(program: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }): ChildProcess;
  /** Cancels every job, stops the daemons (SIGTERM, then SIGKILL) and deletes the folder. */
  stop(): Promise<void>;
}

/** Why a cluster cannot start here, or `undefined` when it can. */
export function slurmUnavailable(): string | undefined {
  const missing = PROGRAMS.filter((name) => findProgram(name) === undefined);
  if (missing.length > 0) return `${missing.join(', ')} not found (.ci/slurm-deps installs Debian's slurmctld, slurmd, slurm-client and munge)`;
  if (process.getuid?.() !== 0) return 'slurmd must run as root to launch jobs; run the test as root';
  return undefined;
}

/** The absolute path of `name` on PATH or in the sbin folders, or `undefined`. */
export function findProgram(name: string): string | undefined {
  const folders = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const folder of folders.filter((entry) => entry !== '')) {
    const path = join(folder, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Starts munged, slurmctld and slurmd and waits until the node is idle; tries a second
 * time, in a new folder with new ports, if the first start fails (a port taken between
 * choosing it and binding it).
 *
 * @throws {Error} when a daemon exits or the node is not idle within `timeoutMs`, twice, with the daemons' logs
 * @example
 * ```ts
 * const cluster = await startSlurmCluster();
 * t.teardown(() => cluster.stop());
 * spawnSync(cluster.programs.sbatch, ['--wait', 'job.sh'], { env: cluster.env });
 * ```
 */
export async function startSlurmCluster(timeoutMs = 30_000): Promise<SlurmCluster> {
  try {
    return await startOnce(timeoutMs);
  } catch (err) {
    const first = (err as Error).message;
    return await startOnce(timeoutMs).catch((again: unknown) => {
      throw new Error(`${(again as Error).message}\n(the first attempt failed too: ${first.split('\n')[0]})`);
    });
  }
}

async function startOnce(timeoutMs: number): Promise<SlurmCluster> {
  const reason = slurmUnavailable();
  if (reason !== undefined) throw new Error(`Cannot start a Slurm cluster: ${reason}`);
  const programs = Object.fromEntries(PROGRAMS.map((name) => [name, findProgram(name)!])) as SlurmCluster['programs'];
  // Short: the munge socket's path must fit in a sockaddr_un (108 bytes).
  const dir = mkdtempSync(join(tmpdir(), 'medsyn-slurm-'));
  chmodSync(dir, 0o711); // munged wants its socket's folders searchable by all
  for (const sub of ['state', 'spool', 'log']) mkdirSync(join(dir, sub));
  mkdirSync(join(dir, 'munge'), { mode: 0o711 });
  const keyFile = join(dir, 'munge', 'munge.key');
  writeFileSync(keyFile, randomBytes(128), { mode: 0o600 });
  const socket = join(dir, 'munge', 'munge.socket');
  const node = hostname().split('.')[0]!;
  const [controllerPort, nodePort] = await freePorts(2);
  const conf = join(dir, 'slurm.conf');
  writeFileSync(
    conf,
    [
      'ClusterName=medsyntest',
      `SlurmctldHost=${node}(127.0.0.1)`,
      `SlurmctldPort=${controllerPort}`,
      `SlurmdPort=${nodePort}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${socket}`,
      `StateSaveLocation=${join(dir, 'state')}`,
      `SlurmdSpoolDir=${join(dir, 'spool')}`,
      `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
      `SlurmctldLogFile=${join(dir, 'log', 'slurmctld.log')}`,
      `SlurmdLogFile=${join(dir, 'log', 'slurmd.log')}`,
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'JobCompType=jobcomp/none',
      'MpiDefault=none',
      'MailProg=/bin/true',
      'ReturnToService=2',
      // A cancelled job gets SIGKILL 5 s after SIGTERM (default 30 s).
      'KillWait=5',
      // sbatch --wait polls after 2 s, then waits 4 times longer while that is under MinJobAge / 2 (2, 8, 32 s):
      // 16 keeps it polling every 8 s, with completed jobs kept 16 s, long enough to be seen.
      'MinJobAge=16',
      `NodeName=${node} NodeAddr=127.0.0.1 CPUs=${availableParallelism()} State=UNKNOWN`,
      `PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
  );
  const env: NodeJS.ProcessEnv = {
    // Not those of a Slurm job the tests may themselves run in: sbatch reads SBATCH_* as options.
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(SLURM|SBATCH|SALLOC|SRUN)_/u.test(name))),
    SLURM_CONF: conf,
    PATH: [...new Set([...PROGRAMS.map((name) => programs[name].slice(0, programs[name].lastIndexOf('/'))), ...(process.env['PATH'] ?? '').split(delimiter)])].join(delimiter),
  };
  const daemons: ChildProcess[] = [];
  const stderrOf = new Map<string, string>();
  const pidFile = join(dir, 'pids');
  writeFileSync(pidFile, '');
  // A test killed before its teardown must not leave a cluster behind: this detached watcher cancels the
  // jobs, stops every process listed in pidFile and deletes the folder once this process is gone.
  const watchdog = spawn(
    '/bin/sh',
    [
      '-c',
      `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done
      export SLURM_CONF="$0"; "$1" --quiet --user=root; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do [ -z "$("$2" --noheader 2>/dev/null)" ] && break; sleep 1; done
      pids=$(cat "$3/pids"); kill $pids 2>/dev/null; sleep 5; kill -9 $pids 2>/dev/null; rm -rf "$3"`,
      conf,
      programs.scancel,
      programs.squeue,
      dir,
    ],
    { detached: true, stdio: 'ignore' },
  );
  watchdog.unref();
  const track = (child: ChildProcess): ChildProcess => {
    if (child.pid !== undefined) appendFileSync(pidFile, `${child.pid}\n`);
    return child;
  };
  const daemon = (program: string, args: string[], name: string): ChildProcess => {
    const child = track(spawn(program, args, { env, stdio: ['ignore', 'ignore', 'pipe'] }));
    stderrOf.set(name, '');
    child.stderr!.on('data', (chunk: Buffer) => stderrOf.set(name, (stderrOf.get(name)! + chunk.toString()).slice(-2000)));
    daemons.push(child);
    return child;
  };
  const clients: ChildProcess[] = [];
  const spawnClient: SlurmCluster['spawn'] = (program, args, options) => {
    const child = track(spawn(program, args, { cwd: options.cwd, env: { ...env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], ...(options.timeout ? { timeout: options.timeout } : {}) }));
    clients.push(child);
    return child;
  };
  const logs = (): string =>
    [
      ...[join(dir, 'munge', 'munged.log'), join(dir, 'log', 'slurmctld.log'), join(dir, 'log', 'slurmd.log')]
        .filter((path) => existsSync(path))
        .map((path) => `--- ${path}\n${readFileSync(path, 'utf8').split('\n').slice(-15).join('\n')}`),
      ...[...stderrOf].filter(([, text]) => text !== '').map(([name, text]) => `--- ${name} stderr\n${text}`),
    ].join('\n');
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Jobs first, while slurmctld and slurmd can still end them; slurmstepd outlives a killed slurmd.
    spawnSync(programs.scancel, ['--quiet', '--user=root'], { env, stdio: 'ignore', timeout: 10_000 });
    const deadline = performance.now() + 15_000;
    while (performance.now() < deadline && (spawnSync(programs.squeue, ['--noheader'], { env, encoding: 'utf8', timeout: 5000 }).stdout ?? '').trim() !== '') {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    for (const child of [...clients, ...[...daemons].reverse()]) await terminate(child);
    watchdog.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };

  const started = performance.now();
  try {
    // -f: the key's folder sits in the world-writable /tmp, which munged otherwise refuses.
    daemon(programs.munged, ['--foreground', '-f', `--socket=${socket}`, `--key-file=${keyFile}`, `--pid-file=${join(dir, 'munge', 'munged.pid')}`, `--log-file=${join(dir, 'munge', 'munged.log')}`, `--seed-file=${join(dir, 'munge', 'munged.seed')}`], 'munged');
    await until(() => existsSync(socket), timeoutMs, 'munged did not create its socket', daemons);
    daemon(programs.slurmctld, ['-D', '-i', '-f', conf], 'slurmctld');
    daemon(programs.slurmd, ['-D', '-f', conf, '-N', node], 'slurmd');
    await until(
      () => spawnSync(programs.sinfo, ['--noheader', '--format=%t', `--nodes=${node}`], { env, encoding: 'utf8', timeout: 5000 }).stdout?.trim() === 'idle',
      timeoutMs,
      `node ${node} did not become idle`,
      daemons,
    );
  } catch (err) {
    const detail = logs();
    await stop();
    throw new Error(`${(err as Error).message}\n${detail}`);
  }
  return { dir, env, node, startupMs: performance.now() - started, programs, logs, spawn: spawnClient, stop };
}

/** Ports nothing listens on now, chosen by the kernel. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** Polls `ready` every 200 ms; throws if it is not true within `timeoutMs` or a daemon exits first. */
async function until(ready: () => boolean, timeoutMs: number, message: string, daemons: ChildProcess[]): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const exited = daemons.find((child) => child.exitCode !== null || child.signalCode !== null);
    if (exited) throw new Error(`${message}: ${exited.spawnfile} exited (${exited.exitCode ?? exited.signalCode})`);
    if (ready()) return;
    if (performance.now() > deadline) throw new Error(`${message} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** SIGTERM, then SIGKILL after 10 s; resolves once the process is gone. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
