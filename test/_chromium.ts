/**
 * Headless Chromium for tests of the HTML reports: find it, dump a page's DOM after
 * its scripts ran, take a screenshot, and list the network requests the page made
 * (from Chromium's NetLog). Nothing leaves the machine: every http(s) request goes
 * to a proxy on a closed local port and fails there.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's chromium (or another Chrome) when installed. */
export function findChromium(): string | undefined {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    if (spawnSync('which', [name]).status === 0) return name;
  }
  return undefined;
}

/** The reason to give `t.test(..., { skip })` when there is no Chromium. */
export const NO_CHROMIUM = 'no chromium on this machine (apt-get install chromium)';

/** Options of {@link loadPage}. */
export interface LoadPageOptions {
  /** Virtual time the page gets to run its scripts, in ms. @default 5000 */
  budgetMs?: number;
  /** Take a screenshot of this window size (`[width, height]`) instead of dumping the DOM. @default undefined */
  screenshot?: [number, number];
}

/** What Chromium did with a page. */
export interface LoadedPage {
  status: number | null;
  /** The DOM after the scripts ran (`--dump-dom`); empty for a screenshot. */
  dom: string;
  /** The PNG screenshot, when asked for. */
  screenshot?: Buffer;
  /** URLs the page itself asked the network for (not `file:`/`data:`), from the NetLog; Chromium's own background traffic is left out. */
  networkRequests: string[];
  stderr: string;
}

/** Flags that keep Chromium's own background traffic down and everything on this machine. */
const QUIET_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-domain-reliability',
  '--proxy-server=http://127.0.0.1:9',
  '--proxy-bypass-list=<-loopback>',
];

/**
 * Loads `url` (a `file://` URL, a fragment allowed) in headless Chromium with a
 * fresh profile, and returns the DOM after `budgetMs` of virtual time (or a
 * screenshot) and the network requests the page made.
 */
export function loadPage(chromium: string, url: string, options: LoadPageOptions = {}): LoadedPage {
  const scratch = mkdtempSync(join(tmpdir(), 'medsyn-chromium-'));
  try {
    const netLog = join(scratch, 'net.json');
    const shot = join(scratch, 'shot.png');
    const mode = options.screenshot ? [`--screenshot=${shot}`, `--window-size=${options.screenshot[0]},${options.screenshot[1]}`, '--hide-scrollbars'] : ['--dump-dom'];
    const result = spawnSync(
      chromium,
      [...QUIET_FLAGS, `--user-data-dir=${join(scratch, 'profile')}`, `--log-net-log=${netLog}`, `--virtual-time-budget=${options.budgetMs ?? 5000}`, ...mode, url],
      { encoding: 'utf8', timeout: 90_000, maxBuffer: 256 << 20 },
    );
    let screenshot: Buffer | undefined;
    if (options.screenshot) {
      try {
        screenshot = readFileSync(shot);
      } catch {
        screenshot = undefined;
      }
    }
    return { status: result.status, dom: options.screenshot ? '' : result.stdout, ...(screenshot ? { screenshot } : {}), networkRequests: pageRequests(netLog), stderr: result.stderr };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** URL requests in a NetLog that a page started (an initiator other than the browser's "not an origin"), but for local schemes. */
function pageRequests(netLog: string): string[] {
  let log: { constants: { logEventTypes: Record<string, number> }; events: { type: number; params?: Record<string, unknown> }[] };
  try {
    log = JSON.parse(readFileSync(netLog, 'utf8')) as typeof log;
  } catch (err) {
    throw new Error(`Chromium wrote no readable NetLog at ${netLog}: ${(err as Error).message}`);
  }
  const startJob = log.constants.logEventTypes['URL_REQUEST_START_JOB'];
  const requests: string[] = [];
  for (const event of log.events) {
    if (event.type !== startJob || typeof event.params?.['url'] !== 'string') continue;
    const url = event.params['url'];
    if (/^(file|data|blob|about|chrome):/iu.test(url) || event.params['initiator'] === 'not an origin') continue;
    requests.push(url);
  }
  return requests;
}
