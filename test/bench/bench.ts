// bench: `npm run bench`. Drives intake, a bare smtp-server drain (Node's ceiling), the issue's reference
// design (headline only) and a private Postfix with a durable queue, when installed, with the same
// workloads; prints messages/s, latency, CPU and peak RSS. Bounded in count and time, on 127.0.0.1 only.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { mintReplyKey } from '../../src/address/reply-key.js';
import { compileTemplate } from '../../src/address/template.js';
import { openStore } from '../../src/db/client.js';
import { createRepositories } from '../../src/db/repositories.js';
import { CLI, ROOT, cliEnv } from '../helpers/server.js';
import { startPostfix, type Postfix } from '../interop/postfix.js';
import { openSessions, percentile, runLoad, type Envelope, type LoadResult, type Session } from './load.js';
import { describeProbe, probeMachine, type MachineProbe } from './machine.js';
import { seedRepliesByMail } from './seed-replies.js';
import { runSmtpSource, smtpSourcePath } from './smtp-source.js';

const ADDRESS = 'incoming+%{key}@example.com';
const template = compileTemplate(ADDRESS);
const QUICK = process.argv.includes('--quick');
/** `-- --large` runs only the large-message measurement. */
const LARGE_ONLY = process.argv.includes('--large');
/** `-- --slow-disk` runs only the slow-disk measurement. */
const SLOW_DISK_ONLY = process.argv.includes('--slow-disk');
/** `-- --large-database` runs only the comparison of a database of a million replies with empty ones. */
const LARGE_DATABASE_ONLY = process.argv.includes('--large-database');
const scale = (n: number) => (QUICK ? Math.max(50, Math.round(n / 10)) : n);
/** The bound in time of every run of the pipelining generator, warm-ups included (see Workload). */
const MAX_SECONDS = 2;
const BENCH_STARTED = Date.now();
/** A line of progress on stderr, with the seconds since the bench started: where a long run spent them. */
function progress(line: string): void {
  process.stderr.write(`  [${Math.round((Date.now() - BENCH_STARTED) / 1000)} s] ${line}\n`);
}
const CLK_TCK = 100;
// The load comes from one address and one sender: the per-address abuse limits (key guessing,
// connections) and the per-sender rate would measure the tarpit, not the server. They are lifted here,
// and nowhere else (Postfix's own, in startPostfixTarget); the rate is set out of reach rather than
// off, so that its check is still paid.
const BENCH_LIMITS = { INTAKE_SENDER_RATE_LIMIT: '1000000000', INTAKE_MAX_CONNECTIONS_PER_IP: '100000', INTAKE_UNKNOWN_RECIPIENT_LIMIT: '1000000000', INTAKE_MAX_REFUSED_RECIPIENTS: '100000' };

interface Target {
  name: string;
  port: number;
  /** CPU seconds used so far by every process of the target. */
  cpuSeconds(): number;
  /** Bytes: the peak resident memory of the server's process; for Postfix, its processes' PSS now. */
  peakRss(): number;
  /** Starts the peak over from the current resident memory; false where Linux does not allow it. */
  resetPeakRss(): boolean;
  stop(): Promise<void>;
}

interface World {
  database: string;
  keys: string[];
  from: string;
}

/** A database with one user, one project, one issue and `notifications` reply keys to answer. */
function seedWorld(dir: string, notifications: number): World {
  const database = join(dir, 'intake.sqlite');
  const store = openStore(database);
  const repos = createRepositories(store);
  const keys = repos.transaction(() => {
    const user = repos.users.create({ username: 'bench', name: 'Bench', email: 'bench@sender.test', incomingEmailToken: 'glimt-bench' });
    const project = repos.projects.create({ path: 'bench/project', name: 'project', visibility: 'private' });
    repos.projects.setMember({ projectId: project.id, userId: user.id, accessLevel: 30 });
    const issue = repos.issuables.createIssue({ projectId: project.id, authorId: user.id, title: 'Benchmark', description: '', confidential: false });
    return Array.from({ length: notifications }, (_, i) =>
      repos.notifications.create({ replyKey: mintReplyKey(i + 1, project.id), projectId: project.id, recipientId: user.id, noteableType: 'Issue', noteableId: issue.id, inReplyToDiscussionId: `d${i}` }).replyKey,
    );
  });
  store.close();
  return { database, keys, from: 'bench@sender.test' };
}

/**
 * What a reply's text is: prose, all of it the sender's; or a thread, a short answer above the
 * messages it replies to, each quoted one level deeper under its "On ... wrote:" line, which is the
 * shape of a long reply in practice and costs the reply trimmer far more than prose.
 */
type Shape = 'prose' | 'thread';

const bodies = new Map<string, string>();

/** The same text for every message of a size and shape (made once: the generator's CPU is the servers' loss). */
function body(bytes: number, shape: Shape = 'prose'): string {
  let text = bodies.get(`${shape} ${bytes}`);
  if (text === undefined) {
    text = shape === 'thread' ? thread(bytes) : prose(bytes);
    bodies.set(`${shape} ${bytes}`, text);
  }
  return text;
}

function prose(bytes: number): string {
  const line = 'The widget squeaks less after the patch, see the attached measurements. ';
  return line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes).replace(/(.{76})/g, '$1\r\n');
}

function thread(bytes: number): string {
  const message = [
    'I tried the patch on the staging server this morning and the widget still squeaks when',
    'the load goes above 80 percent. The logs show the same timeout as before:',
    '',
    '  2026-11-25 10:22:31 ERROR worker-3: timeout after 30000 ms (queue depth 412)',
    '',
    'Could you have another look? Happy to run more tests if that helps.',
    '',
    'Thanks,',
    'Alice',
    '',
    '--',
    'Alice Example | Operations | Example Corp.',
  ];
  const lines = ['Thanks, that fixes it here too.', ''];
  let size = 0;
  for (let depth = 1; size < bytes; depth++) {
    const outer = '>'.repeat(depth - 1);
    const quote = '>'.repeat(depth);
    const added = [`${outer}${outer ? ' ' : ''}On Wed, ${(depth % 28) + 1} Nov 2026 at 10:${String(depth % 60).padStart(2, '0')}, Bob Example <bob@example.com> wrote:`];
    for (let part = 0; part < 3; part++) added.push(...message.map((line) => (line ? `${quote} ${line}` : quote)));
    lines.push(...added);
    size += added.reduce((sum, line) => sum + line.length + 2, 0);
  }
  return lines.join('\r\n');
}

function replyTo(world: World, i: number, bytes: number, known: boolean, shape: Shape = 'prose'): Envelope {
  const to = known ? template.format(world.keys[i % world.keys.length] as string) : template.format(`${(i + 1).toString(16).padStart(32, 'f')}`);
  const text = [
    `From: Bench <${world.from}>`,
    `To: ${to}`,
    'Subject: Re: Benchmark',
    `Message-ID: <bench-${process.pid}-${Date.now()}-${i}@sender.test>`,
    'Date: Thu, 26 Nov 2026 10:00:00 +0000',
    'Content-Type: text/plain; charset=utf-8',
    '',
    body(bytes, shape),
    '',
  ].join('\r\n');
  return { from: world.from, to, data: Buffer.from(text) };
}

function procCpuSeconds(pid: number, withChildren = false): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    // utime, stime, cutime, cstime are fields 14-17 (1-based) of the whole line: 12-15 after "pid (comm) ".
    const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(fields[i]));
    return ((utime ?? 0) + (stime ?? 0) + (withChildren ? (cutime ?? 0) + (cstime ?? 0) : 0)) / CLK_TCK;
  } catch {
    return 0;
  }
}

function peakRssOf(pid: number): number {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return Number(kb ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** Proportional set size: the process's own pages, and its share of those it shares; 0 when unreadable. */
function pssOf(pid: number): number {
  try {
    const kb = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1];
    return Number(kb ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** Linux resets VmHWM to the current RSS when 5 is written to clear_refs (proc(5)). */
function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

function childPids(pid: number): number[] {
  const out = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout;
  return out.split('\n').filter(Boolean).map(Number);
}

function waitForJsonLine(child: ChildProcess, predicate: (entry: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let pending = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start`)), 20_000);
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          if (predicate(entry)) {
            clearTimeout(timer);
            child.stdout?.removeAllListeners('data');
            child.stdout?.resume();
            resolve(entry);
          }
        } catch {
          // not JSON
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function startIntake(world: World, settings: Record<string, string> = {}, environment: Record<string, string> = {}): Promise<Target> {
  const logFile = `${world.database}.log`;
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { ...cliEnv({ INTAKE_DATABASE: world.database, INTAKE_SMTP_LISTEN: '127.0.0.1:0', INTAKE_ADDRESS: ADDRESS, INTAKE_HOSTNAME: 'intake.bench', INTAKE_MAX_CLIENTS: '1000', ...BENCH_LIMITS, ...settings }), ...environment },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = await waitForJsonLine(child, (e) => e.msg === 'ready', 'intake');
  // The rest of the log goes to a file, as under systemd: the benchmark does not parse it.
  child.stdout?.pipe(createWriteStream(logFile));
  const pid = child.pid as number;
  return {
    name: 'intake',
    port: (ready.ports as Record<string, number>).smtp as number,
    cpuSeconds: () => procCpuSeconds(pid),
    peakRss: () => peakRssOf(pid),
    resetPeakRss: () => resetPeakRss(pid),
    stop: () => stopChild(child),
  };
}

async function startBare(): Promise<Target> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/bench/bare-server.ts')], { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT });
  const ready = await waitForJsonLine(child, (e) => typeof e.port === 'number', 'bare smtp-server');
  const pid = child.pid as number;
  return { name: 'bare smtp-server', port: ready.port as number, cpuSeconds: () => procCpuSeconds(pid), peakRss: () => peakRssOf(pid), resetPeakRss: () => resetPeakRss(pid), stop: () => stopChild(child) };
}

const REFERENCE = 'reference design (simpleParser + one insert)';
const POSTFIX = 'Postfix smtpd (durable queue)';

/** The issue's reference design (reference-server.ts), storing into a file of its own in the world's folder. */
async function startReference(world: World): Promise<Target> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/bench/reference-server.ts'), join(dirname(world.database), 'reference.sqlite')], { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT });
  const ready = await waitForJsonLine(child, (e) => typeof e.port === 'number', 'reference design');
  const pid = child.pid as number;
  return { name: REFERENCE, port: ready.port as number, cpuSeconds: () => procCpuSeconds(pid), peakRss: () => peakRssOf(pid), resetPeakRss: () => resetPeakRss(pid), stop: () => stopChild(child) };
}

async function startPostfixTarget(slowDisk: SlowDisk | null = null): Promise<Target & { postfix: Postfix }> {
  const postfix = await startPostfix({
    mainCf: [
      // Postfix's daemons get the environment listed here, and no other.
      ...(slowDisk ? [`import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME LD_PRELOAD=${slowDisk.shim} SLOW_FSYNC_US=${slowDisk.us}`] : []),
      'relay_domains = example.com',
      'relay_recipient_maps = regexp:@ETC@/rcpt.regexp',
      'smtpd_recipient_restrictions = reject_unlisted_recipient',
      'relay_transport = discard:bench',
      'message_size_limit = 52428800',
      // Its own limits on a client that errs, lifted as intake's are (BENCH_LIMITS): a refused
      // recipient and the DATA after it count as errors (an RSET too, past a hundred); past ten each
      // reply waited a second, at twenty the session was closed (half unknown keys: 281 against 834
      // accepted/s; refusals alone: 5 against 5,235/s).
      'smtpd_error_sleep_time = 0',
      'smtpd_soft_error_limit = 1000000',
      'smtpd_hard_error_limit = 1000000',
      'smtpd_junk_command_limit = 1000000',
    ].join('\n'),
    masterCf: '',
    defaultTransport: 'discard:bench',
    // Only the keys intake would accept: the same RCPT-time check, as a regexp.
    files: { 'rcpt.regexp': '/^incoming\\+[0-9a-z]+-[0-9a-z]+-[0-9a-z]+@example\\.com$/ OK\n' },
    smtpdProcesses: 200,
  });
  const master = postfix.masterPid();
  const cpu = () => procCpuSeconds(master, true) + childPids(master).reduce((sum, pid) => sum + procCpuSeconds(pid, true), 0);
  // Many processes, which share their libraries and live on after a workload: their proportional
  // memory together at its end stands in for a peak (no one counter follows them all).
  const memory = () => [master, ...childPids(master)].reduce((sum, pid) => sum + pssOf(pid), 0);
  return { name: POSTFIX, port: postfix.port, cpuSeconds: cpu, peakRss: memory, resetPeakRss: () => false, stop: async () => postfix.stop(), postfix };
}

/**
 * Postfix for every workload but the slow disks': starting an instance takes 2.5 s (post-install's
 * checks), and thirteen starts were a tenth of the run. It keeps up with its deliveries to discard (a
 * dozen messages queued at the end of a workload); when a workload ends its queue is left to empty,
 * so that no delivery runs on while the next target is measured.
 */
let sharedPostfix: Promise<Target & { postfix: Postfix }> | null = null;

async function startSharedPostfix(): Promise<Target> {
  sharedPostfix ??= startPostfixTarget();
  const target = await sharedPostfix;
  return { ...target, stop: () => waitForEmptyQueue(target.postfix) };
}

async function waitForEmptyQueue(postfix: Postfix): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (postfix.queued() > 0) {
    if (Date.now() > deadline) throw new Error(`Postfix still has ${postfix.queued()} messages queued after a minute: ${postfix.dir}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface Workload {
  name: string;
  sessions: number;
  messages: number;
  mode: 'persistent' | 'per-message';
  bytes: number;
  /** Share of messages to unknown keys (refused at RCPT). */
  unknown: number;
  /** Postfix's smtp-source instead of the pipelining generator (every message to one reply key). */
  smtpSource?: string;
  /**
   * The measured run, and its warm-up, each stop starting messages after this long, so that a slow
   * spell of the machine lengthens no run beyond it; smtp-source, which cannot stop early, runs its
   * count.
   */
  maxSeconds: number;
  /** Runs per target, in turns; the median one is kept. */
  rounds?: number;
  /** Also measure intake with INTAKE_GROUP_COMMIT=false (in the first round only). */
  compareGroupCommit?: boolean;
  /** Also measure the issue's reference design (reference-server.ts), in every round. */
  compareReference?: boolean;
  /** What the replies' text is (prose by default). */
  shape?: Shape;
}

/** Every run of every workload, by workload and target, in the order they ran. */
type Runs = Map<string, Map<string, Row[]>>;

interface Row {
  workload: string;
  target: string;
  messages: number;
  accepted: number;
  refused: number;
  temporary: number;
  errors: number;
  seconds: number;
  acceptedPerSecond: number;
  refusedPerSecond: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  cpuSeconds: number;
  peakRssMb: number | null;
}

/**
 * A server runs for days; its first thousand messages also pay for V8 compiling the hot paths (here
 * about a second of CPU on helper threads) and for filling caches. So every target first gets a
 * quarter of the workload, uncounted, and then the measured run. Sessions kept open are opened
 * before either and serve both, so that the measured run times messages only, not connecting (and
 * smtp-server's 100 ms before each greeting, which Postfix does not wait). A burst (see
 * largeDatabase) skips the warm-up, on a server already warm, and sends through sessions that
 * largeDatabase keeps open; the run's one Postfix skips it after the first round of a workload
 * (`alreadyWarm`).
 */
async function measure(workload: Workload, world: World, target: Target, options: { burst?: { pool: Session[]; offset: number }; alreadyWarm?: boolean } = {}): Promise<Row> {
  const { burst } = options;
  const pool = burst?.pool ?? (workload.mode === 'persistent' && !workload.smtpSource ? await openSessions(target.port, workload.sessions) : undefined);
  try {
    const row = await measureRun(workload, world, target, pool, burst?.offset ?? 0, !burst && !options.alreadyWarm);
    if (!workload.smtpSource) {
      timedRuns.measured++;
      if (row.messages < workload.messages) timedRuns.stopped++;
    }
    return row;
  } finally {
    if (!burst) for (const session of pool ?? []) session.close();
  }
}

/** Runs of the pipelining generator, and those of them that ended on their bound in time. */
const timedRuns = { measured: 0, stopped: 0 };

/** For a progress line: how far a run stopped short of its count, if it did. */
function stoppedShort(row: Row, workload: Workload): string {
  return row.messages < workload.messages && !workload.smtpSource ? ` (stopped at ${workload.maxSeconds} s: ${row.messages} of ${workload.messages} messages)` : '';
}

async function measureRun(workload: Workload, world: World, target: Target, pool: Session[] | undefined, offset: number, warmUp: boolean): Promise<Row> {
  const drive = (messages: number, first: number, maxMs: number) =>
    workload.smtpSource
      ? runSmtpSource({ program: workload.smtpSource, port: target.port, sessions: workload.sessions, messages, mode: workload.mode, bytes: workload.bytes, from: world.from, to: template.format(world.keys[0] as string), maxMs })
      : runLoad({
          port: target.port,
          sessions: workload.sessions,
          messages,
          mode: workload.mode,
          maxMs,
          message: (i) => replyTo(world, first + i, workload.bytes, (i * 7919) % 100 >= workload.unknown * 100, workload.shape),
          ...(pool ? { pool } : {}),
        });
  const maxMs = workload.smtpSource ? 60_000 : workload.maxSeconds * 1000;
  // The warm-up has the measured run's bound in time, not a shorter one: cut short at a second, it
  // left intake's hot paths half compiled on a slow machine (its headline rounds 20 to 30 % slower
  // than in the full runs before and after).
  if (warmUp) await drive(Math.max(1, Math.round(workload.messages / 4)), 1_000_000, maxMs);
  const cpuBefore = target.cpuSeconds();
  const result: LoadResult = await drive(workload.messages, offset, maxMs);
  const seconds = result.elapsedMs / 1000;
  const round = (n: number | null) => (n === null ? null : Math.round(n * 100) / 100);
  return {
    workload: workload.name,
    target: target.name,
    messages: result.accepted + result.refused + result.temporary + result.errors,
    accepted: result.accepted,
    refused: result.refused,
    temporary: result.temporary,
    errors: result.errors,
    seconds: round(seconds) as number,
    acceptedPerSecond: Math.round(result.accepted / seconds),
    refusedPerSecond: Math.round(result.refused / seconds),
    p50Ms: round(percentile(result.latenciesMs, 50)),
    p95Ms: round(percentile(result.latenciesMs, 95)),
    p99Ms: round(percentile(result.latenciesMs, 99)),
    cpuSeconds: round(target.cpuSeconds() - cpuBefore) as number,
    peakRssMb: target.peakRss() ? Math.round(target.peakRss() / 1048576) : null,
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'intake-bench-'));
  const postfixInstalled = spawnSync('postconf', ['-d', 'mail_version']).status === 0;
  const rows: Row[] = [];
  const notes: string[] = [];
  const smtpSource = smtpSourcePath();
  // Before anything is started, and again once everything has stopped: see machine.ts.
  const machine: { start: MachineProbe; end?: MachineProbe } = { start: await probeMachine() };
  // The headline workload is run five times per target, in turns, and its ratios are the medians of
  // each round's ratio (runs next to each other in time): on this shared machine one run of the same
  // code varies by ±20 %, and a slow spell can last a whole run.
  // Each run stops after MAX_SECONDS: 5,000 messages take 2 to 2.5 s for intake on a quiet day and
  // 4 to 8 s for Postfix, and everything takes half as long again in a slow spell.
  const headline: Workload = { name: 'kept open, 20 sessions, 2 KB replies', sessions: 20, messages: scale(5000), maxSeconds: MAX_SECONDS, mode: 'persistent', bytes: 2048, unknown: 0, rounds: 5, compareGroupCommit: true, compareReference: true };
  const runs: Runs = new Map();
  const workloads: Workload[] = [
    headline,
    // A cross-check of the generator: the issue's reference figures were measured with Postfix's
    // smtp-source (no pipelining), so the headline once more with it.
    // smtp-source runs its count (it cannot stop early): 2,000 messages, which Postfix takes 1.3 to 3 s for.
    ...(smtpSource ? [{ ...headline, name: 'kept open, 20 sessions, 2 KB replies, smtp-source', messages: scale(2000), smtpSource, rounds: 1, compareGroupCommit: false }] : []),
    { name: 'new connection each, 100 sessions, 2 KB replies', sessions: 100, messages: scale(3000), maxSeconds: MAX_SECONDS, mode: 'per-message', bytes: 2048, unknown: 0 },
    { name: 'kept open, 20 sessions, 50 KB replies (a quoted thread)', sessions: 20, messages: scale(2000), maxSeconds: MAX_SECONDS, mode: 'persistent', bytes: 50 * 1024, unknown: 0, shape: 'thread' },
    { name: 'kept open, 20 sessions, unknown keys (RCPT refusals)', sessions: 20, messages: scale(20000), maxSeconds: MAX_SECONDS, mode: 'persistent', bytes: 2048, unknown: 1, compareGroupCommit: true },
    { name: 'kept open, 20 sessions, half unknown keys', sessions: 20, messages: scale(6000), maxSeconds: MAX_SECONDS, mode: 'persistent', bytes: 2048, unknown: 0.5 },
  ];
  try {
    for (const workload of LARGE_ONLY || SLOW_DISK_ONLY || LARGE_DATABASE_ONLY ? [] : workloads) {
      const fresh = () => seedWorld(mkdtempSync(join(dir, 'w-')), 200);
      const targets: { start: () => Promise<{ target: Target; world: World }>; firstRoundOnly?: boolean; shared?: boolean }[] = [
        {
          start: async () => {
            const world = fresh();
            return { target: await startIntake(world), world };
          },
        },
        ...(workload.compareGroupCommit
          ? [
              {
                start: async () => {
                  const world = fresh();
                  return { target: { ...(await startIntake(world, { INTAKE_GROUP_COMMIT: 'false' })), name: 'intake, no group commit' }, world };
                },
                firstRoundOnly: true,
              },
            ]
          : []),
        // The baselines accept any key of the right shape; the world only supplies such keys.
        { start: async () => ({ target: await startBare(), world: fresh() }) },
        ...(workload.compareReference
          ? [
              {
                start: async () => {
                  const world = fresh();
                  return { target: await startReference(world), world };
                },
              },
            ]
          : []),
        ...(postfixInstalled ? [{ start: async () => ({ target: await startSharedPostfix(), world: fresh() }), shared: true }] : []),
      ];
      const rounds = QUICK ? 1 : (workload.rounds ?? 1);
      const byTarget = new Map<string, Row[]>();
      runs.set(workload.name, byTarget);
      for (let round = 0; round < rounds; round++) {
        // In turns, the order reversed every other round: no target always follows the same one.
        for (const { start, firstRoundOnly, shared } of round % 2 === 1 ? [...targets].reverse() : targets) {
          if (firstRoundOnly && round > 0) continue;
          const { target, world } = await start();
          let row: Row;
          try {
            row = await measure(workload, world, target, { alreadyWarm: shared === true && round > 0 });
          } finally {
            await target.stop();
          }
          byTarget.set(row.target, [...(byTarget.get(row.target) ?? []), row]);
          progress(`${workload.name} / ${row.target}: ${row.acceptedPerSecond} accepted/s, ${row.refusedPerSecond} refused/s${stoppedShort(row, workload)}`);
        }
      }
      for (const measured of byTarget.values()) {
        const middle = middleRun(measured);
        rows.push(middle);
        if (measured.length > 1) notes.push(`${workload.name} / ${middle.target}: the median of ${measured.length} runs is in the table (${measured.map((r) => r.acceptedPerSecond).join(', ')} accepted/s)`);
      }
    }
    if (!LARGE_ONLY && !LARGE_DATABASE_ONLY) rows.push(...(await slowDisks(dir, { ...headline, messages: scale(3000), rounds: 1 }, postfixInstalled, notes)));
    if (!SLOW_DISK_ONLY && !LARGE_DATABASE_ONLY) rows.push(...(await largeMessage(dir, postfixInstalled)));
    if (!LARGE_ONLY && !SLOW_DISK_ONLY) rows.push(...(await largeDatabase(dir, { ...headline, rounds: 1 }, runs, notes)));
    if (timedRuns.stopped > 0) notes.push(`${timedRuns.stopped} of the ${timedRuns.measured} runs of the pipelining generator (warm-ups apart; the million-reply comparison's bursts included) stopped at their bound in time before their count: the accepted and refused columns say how many messages each handled, and the CPU seconds are for those.`);
    if (!postfixInstalled) notes.push('Postfix is not installed (apt-get install postfix): no Postfix baseline in this run.');
  } finally {
    // A Postfix that failed to start has already failed the run; nothing is left to stop.
    if (sharedPostfix) await sharedPostfix.then((target) => target.postfix.stop(), () => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  machine.end = await probeMachine();
  notes.push(describeProbe('as the run started', machine.start), describeProbe('as it ended', machine.end));
  notes.push(`The whole run took ${Math.round((Date.now() - BENCH_STARTED) / 1000)} s.`);
  printTable(rows, notes, runs, machine);
}

interface SlowDisk {
  /** The LD_PRELOAD shim (test/bench/slow-fsync.c, compiled here). */
  shim: string;
  us: number;
  label: string;
}

/**
 * The headline workload on a slow disk, emulated: every fsync and fdatasync of the server waits 2 or
 * 5 ms more (common disks take 2 to 10 ms; BENCH_SLOW_FSYNC_MS=2,5 lists them), for intake with and
 * without group commit and for Postfix. Needs a C compiler for the shim; without one, a note says so.
 * The shim delays each call on its own, so concurrent flushes (Postfix's processes, one per message)
 * overlap entirely, as they would on a disk that takes many flushes at once.
 */
async function slowDisks(dir: string, workload: Workload, postfixInstalled: boolean, notes: string[]): Promise<Row[]> {
  const shimDir = mkdtempSync(join(tmpdir(), 'intake-slow-fsync-'));
  const shim = join(shimDir, 'slow-fsync.so');
  const built = spawnSync('cc', ['-shared', '-fPIC', '-O2', '-o', shim, join(ROOT, 'test/bench/slow-fsync.c'), '-ldl'], { encoding: 'utf8' });
  if (built.status !== 0) {
    rmSync(shimDir, { recursive: true, force: true });
    notes.push(`No slow-disk rows: the fsync shim could not be built (${built.error?.message ?? built.stderr.trim().split('\n')[0]}); it needs a C compiler (apt-get install gcc).`);
    return [];
  }
  // Postfix's daemons run as its own user: they must be able to read the shim.
  chmodSync(shimDir, 0o755);
  const rows: Row[] = [];
  try {
    for (const ms of (process.env.BENCH_SLOW_FSYNC_MS ?? '2,5').split(',').map(Number)) {
      const slow: SlowDisk = { shim, us: ms * 1000, label: `every fsync ${ms} ms slower` };
      const env = { LD_PRELOAD: shim, SLOW_FSYNC_US: String(slow.us) };
      const named = { ...workload, name: `${workload.name}, ${slow.label}` };
      // One commit per message on a slow disk is slow: fewer messages for it, the same bound in time.
      const fewer = { ...named, messages: Math.max(50, Math.round(workload.messages / 5)) };
      const targets: { start: (world: World) => Promise<Target>; workload: Workload }[] = [
        { start: (world) => startIntake(world, {}, env), workload: named },
        { start: async (world) => ({ ...(await startIntake(world, { INTAKE_GROUP_COMMIT: 'false' }, env)), name: 'intake, no group commit' }), workload: fewer },
        // Postfix accepts any key of the right shape.
        ...(postfixInstalled ? [{ start: () => startPostfixTarget(slow), workload: named }] : []),
      ];
      for (const { start, workload: measured } of targets) {
        const world = seedWorld(mkdtempSync(join(dir, 'w-')), 200);
        const target = await start(world);
        try {
          const row = await measure(measured, world, target);
          rows.push(row);
          progress(`${named.name} / ${row.target}: ${row.acceptedPerSecond} accepted/s${stoppedShort(row, measured)}`);
        } finally {
          await target.stop();
        }
      }
    }
  } finally {
    rmSync(shimDir, { recursive: true, force: true });
  }
  return rows;
}

/**
 * One large message, as text and as an attachment: peak RSS growth against its size. On a cold
 * server (just started) the growth includes caches and heaps reaching their working size, as any
 * load makes them (SQLite's 16 MB page cache, V8's young generation); on a warm one (after 1,000
 * messages of 44 KB, peak reset through /proc/PID/clear_refs) it is what the message itself costs.
 * The drain and Postfix get the same message, for its time and what it costs them.
 */
async function largeMessage(dir: string, postfixInstalled: boolean): Promise<Row[]> {
  const rows: Row[] = [];
  // About 25 MB on the wire either way: 24 MiB of text, or 18 MiB of binary that base64 makes 24.6 MiB.
  const textSize = 24 * 1024 * 1024;
  const binarySize = 18 * 1024 * 1024;
  const kinds: [string, (base: string) => string][] = [
    ['text', (headers) => `${headers}\r\n\r\n${body(textSize)}\r\n`],
    [
      'attachment',
      (headers) => {
        const payload = Buffer.alloc(binarySize, 0x5a).toString('base64').replace(/(.{76})/g, '$1\r\n');
        return `${headers.replace('Content-Type: text/plain; charset=utf-8', 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"')}\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe measurements are attached.\r\n--b\r\nContent-Type: application/octet-stream; name="data.bin"\r\nContent-Disposition: attachment; filename="data.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${payload}\r\n--b--\r\n`;
      },
    ],
  ];
  /** Sends the one message and reports its time, CPU and memory growth against `idle` (bytes). */
  const sendOne = async (target: Target, world: World, label: string, kind: string, build: (headers: string) => string, idle: number): Promise<Row> => {
    const base = replyTo(world, 0, 1024, true);
    const headers = base.data.toString().replace(/\r\n\r\n[\s\S]*$/, '');
    const data = Buffer.from(build(headers));
    const cpuBefore = target.cpuSeconds();
    const result = await runLoad({ port: target.port, sessions: 1, messages: 1, mode: 'persistent', maxMs: 120_000, message: () => ({ ...base, data: Buffer.from(data.toString().replace('Message-ID: <', `Message-ID: <big-${kind}-`)) }) });
    const growth = target.peakRss() - idle;
    return {
      workload: `one ${(data.length / 1048576).toFixed(0)} MB message, ${kind}, ${label} (${target.name.startsWith('Postfix') ? 'memory' : 'peak RSS'} growth ${(growth / data.length).toFixed(1)}× its size)`,
      target: target.name,
      messages: 1,
      accepted: result.accepted,
      refused: result.refused,
      temporary: result.temporary,
      errors: result.errors,
      seconds: Math.round(result.elapsedMs) / 1000,
      acceptedPerSecond: 0,
      refusedPerSecond: 0,
      p50Ms: Math.round(percentile(result.latenciesMs, 50) ?? 0),
      p95Ms: null,
      p99Ms: null,
      cpuSeconds: Math.round((target.cpuSeconds() - cpuBefore) * 100) / 100,
      peakRssMb: Math.round(target.peakRss() / 1048576),
    };
  };
  for (const [kind, build] of kinds) {
    for (const warm of [false, true]) {
      const world = seedWorld(mkdtempSync(join(dir, 'big-')), 200);
      const target = await startIntake(world, { INTAKE_MAX_MESSAGE_BYTES: String(26 * 1024 * 1024), INTAKE_MAX_ATTACHMENT_BYTES: String(20 * 1024 * 1024) });
      try {
        if (warm) {
          await runLoad({ port: target.port, sessions: 10, messages: 1000, mode: 'persistent', maxMs: 60_000, message: (i) => replyTo(world, i, 44 * 1024, true) });
          // Let the log and the last commits settle before the baseline is taken.
          await new Promise((resolve) => setTimeout(resolve, 500));
          if (!target.resetPeakRss()) continue;
        }
        rows.push(await sendOne(target, world, `${warm ? 'warm' : 'cold'} server`, kind, build, target.peakRss()));
      } finally {
        await target.stop();
      }
    }
    // The same message to the baselines (the drain just started, Postfix the run's instance): the
    // drain's peak, and Postfix's processes' proportional memory at the end against the same before
    // it (no peak follows them all).
    for (const start of [startBare, ...(postfixInstalled ? [startSharedPostfix] : [])]) {
      const target = await start();
      try {
        rows.push(await sendOne(target, seedWorld(mkdtempSync(join(dir, 'big-')), 1), 'baseline', kind, build, target.peakRss()));
      } finally {
        await target.stop();
      }
    }
  }
  return rows;
}

/** Servers started on each database, a new empty one each time, in turns. */
const LARGE_DATABASE_SERVERS = 3;
/** Bursts each pair of servers takes, in pairs next to each other in time. */
const LARGE_DATABASE_PAIRS = QUICK ? 2 : 4;

/**
 * The kept-open workload on a database of a million replies by mail (1,000,000 notes and what came
 * with them, see seedRepliesByMail) against an empty one. Two servers, one on each, run side by
 * side, warmed up, and take turns at bursts of messages through sessions kept open, in pairs (empty
 * then large, large then empty, ...); the comparison is the median of all the pairs' own ratios.
 * A pair of bursts sees the same drift of the machine (10 to 20 % over seconds), and three pairs of
 * servers, each pair started anew, sample what a server's start settles for its life (one pair
 * alone came out +15 % in one run and −16 % in the next, every burst alike).
 */
async function largeDatabase(dir: string, workload: Workload, runs: Runs, notes: string[]): Promise<Row[]> {
  const count = QUICK ? 100_000 : 1_000_000;
  const large = seedWorld(mkdtempSync(join(dir, 'large-')), 200);
  const started = Date.now();
  await seedRepliesByMail(large.database, ADDRESS, count);
  progress(`seeded ${count} replies by mail in ${((Date.now() - started) / 1000).toFixed(1)} s (${Math.round(statSync(large.database).size / 1048576)} MB)`);
  // Seeding leaves hundreds of MB for the kernel (and this VM's host) to write back, and that slows
  // every fsync for a while: it is done before any of the runs, so that all of them pay alike.
  spawnSync('sync');
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const kinds = [
    { name: `${workload.name}, empty database`, rows: [] as Row[] },
    { name: `${workload.name}, database with ${count.toLocaleString('en')} notes`, rows: [] as Row[] },
  ];
  const burst = { ...workload, messages: Math.round(workload.messages * 0.4) };
  let offset = 2_000_000;
  for (let server = 0; server < LARGE_DATABASE_SERVERS; server++) {
    const side = kinds.map((kind, k) => ({ kind, world: k === 0 ? seedWorld(mkdtempSync(join(dir, 'empty-')), 200) : large, target: null as Target | null, pool: [] as Session[] }));
    try {
      // Both servers start and warm up at once: nothing is measured yet, and side by side it takes half
      // the time. The warm-up runs its count (a third of the workload), with no bound in time short
      // enough to leave the slower of the two less warm. Both settle before either is stopped
      // (finally, below), so that a failure of one cannot leave the other's server running.
      const ready = await Promise.allSettled(
        side.map(async (one) => {
          one.target = await startIntake(one.world);
          one.pool = await openSessions(one.target.port, workload.sessions);
          const warm = await runLoad({ port: one.target.port, sessions: workload.sessions, messages: Math.round(workload.messages / 3), mode: 'persistent', maxMs: 60_000, pool: one.pool, message: (i) => replyTo(one.world, 1_000_000 + i, workload.bytes, true) });
          if (warm.errors > 0) throw new Error(`warming up a server of the million-reply comparison: ${warm.firstError}`);
        }),
      );
      for (const outcome of ready) if (outcome.status === 'rejected') throw outcome.reason;
      for (let pair = 0; pair < LARGE_DATABASE_PAIRS; pair++) {
        for (const one of pair % 2 === 0 ? side : [...side].reverse()) {
          one.kind.rows.push(await measure({ ...burst, name: one.kind.name }, one.world, one.target as Target, { burst: { pool: one.pool, offset } }));
          offset += burst.messages;
        }
      }
    } finally {
      for (const one of side) for (const session of one.pool) session.close();
      await Promise.all(side.map((one) => one.target?.stop()));
    }
  }
  const rows: Row[] = [];
  for (const kind of kinds) {
    runs.set(kind.name, new Map([['intake', kind.rows]]));
    rows.push(middleRun(kind.rows));
    notes.push(`${kind.name} / intake: the median of ${kind.rows.length} bursts of ${burst.messages} (${LARGE_DATABASE_SERVERS} servers, ${LARGE_DATABASE_PAIRS} each) is in the table (${kind.rows.map((r) => r.acceptedPerSecond).join(', ')} accepted/s)`);
  }
  return rows;
}

function printTable(rows: Row[], notes: string[], runs: Runs, machine: { start: MachineProbe; end?: MachineProbe }): void {
  const header = ['workload', 'target', 'accepted/s', 'refused/s', 'p50 ms', 'p95 ms', 'p99 ms', 'CPU s', 'peak RSS MB', 'accepted', 'refused', 'temp', 'errors'];
  const lines = rows.map((r) => [r.workload, r.target, r.acceptedPerSecond, r.refusedPerSecond, r.p50Ms, r.p95Ms, r.p99Ms, r.cpuSeconds, r.peakRssMb, r.accepted, r.refused, r.temporary, r.errors].map((v) => (v === null ? '' : String(v))));
  process.stdout.write(`| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|\n`);
  for (const line of lines) process.stdout.write(`| ${line.join(' | ')} |\n`);
  const ratios = computeRatios(rows, runs);
  process.stdout.write('\n');
  for (const r of ratios) process.stdout.write(`${r}\n`);
  for (const n of notes) process.stdout.write(`${n}\n`);
  const json = JSON.stringify({ rows, ratios, notes, machine, quick: QUICK, node: process.version, date: new Date().toISOString() });
  writeFileSync(join(tmpdir(), 'intake-bench.json'), json);
  process.stdout.write(`\nJSON: ${join(tmpdir(), 'intake-bench.json')}\n${json}\n`);
}

/** The run in the middle by messages handled a second (the upper middle of an even count): the one a table shows. */
function middleRun(runs: Row[]): Row {
  const sorted = [...runs].sort((a, b) => a.acceptedPerSecond + a.refusedPerSecond - (b.acceptedPerSecond + b.refusedPerSecond));
  return sorted[Math.floor(sorted.length / 2)] as Row;
}

/** The middle value; for an even count, the mean of the middle two. NaN for none. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function computeRatios(rows: Row[], runs: Runs): string[] {
  const find = (workload: string, target: string) => rows.find((r) => r.workload === workload && r.target === target);
  const out: string[] = [];
  const ratio = (label: string, a: Row | undefined, b: Row | undefined, field: 'acceptedPerSecond' | 'refusedPerSecond', target: number | null) => {
    if (!a || !b || b[field] === 0) return;
    // Run in rounds: the median of the rounds' own ratios, each from two runs close in time.
    const as = runs.get(a.workload)?.get(a.target) ?? [];
    const bs = runs.get(b.workload)?.get(b.target) ?? [];
    const rounds = Math.min(as.length, bs.length);
    const each = Array.from({ length: rounds }, (_, i) => (as[i] as Row)[field] / ((bs[i] as Row)[field] || Number.NaN)).filter((v) => Number.isFinite(v));
    // One round in common (a target run in the first round only): that round's pair, not the median run.
    const value = each.length > 0 ? median(each) : a[field] / b[field];
    const detail = each.length > 1 ? `, median of ${each.length} rounds: ${each.map((v) => v.toFixed(2)).join(', ')}` : each.length === 1 && (as.length > 1 || bs.length > 1) ? ', the first round\'s pair' : '';
    if (target === null) out.push(`${label}: ${value.toFixed(2)}×${detail ? ` (${detail.slice(2)})` : ''}`);
    else out.push(`${label}: ${value.toFixed(2)}× (target ≥ ${target}×${detail}) ${value >= target ? 'met' : 'MISSED'}`);
  };
  const w1 = 'kept open, 20 sessions, 2 KB replies';
  const w2 = 'new connection each, 100 sessions, 2 KB replies';
  for (const [generator, suffix] of [['pipelining generator', ''], ['smtp-source', ', smtp-source']] as const) {
    ratio(`kept open 2 KB, intake / Postfix (${generator})`, find(w1 + suffix, 'intake'), find(w1 + suffix, POSTFIX), 'acceptedPerSecond', 2);
    ratio(`kept open 2 KB, intake / bare smtp-server (${generator})`, find(w1 + suffix, 'intake'), find(w1 + suffix, 'bare smtp-server'), 'acceptedPerSecond', 0.4);
    ratio(`new connection 2 KB, intake / Postfix (${generator})`, find(w2 + suffix, 'intake'), find(w2 + suffix, POSTFIX), 'acceptedPerSecond', 1);
    // No target: where the 0.4× of the drain stands, the issue's reference design having done 0.27× of it
    // (1,340 of 5,000/s) with smtp-source where the issue was written.
    ratio(`kept open 2 KB, reference design / bare smtp-server (${generator})`, find(w1 + suffix, REFERENCE), find(w1 + suffix, 'bare smtp-server'), 'acceptedPerSecond', null);
    ratio(`kept open 2 KB, intake / reference design (${generator})`, find(w1 + suffix, 'intake'), find(w1 + suffix, REFERENCE), 'acceptedPerSecond', null);
    ratio(`kept open 2 KB, group commit / one commit each (${generator})`, find(w1 + suffix, 'intake'), find(w1 + suffix, 'intake, no group commit'), 'acceptedPerSecond', 1);
  }
  for (const slow of new Set(rows.map((r) => r.workload).filter((w) => w.startsWith(`${w1}, every fsync`)))) {
    const disk = slow.slice(w1.length + 2);
    const intake = find(slow, 'intake');
    const single = find(slow, 'intake, no group commit');
    const postfix = find(slow, POSTFIX);
    // No target: the issue asks for durability that does not depend on a fast disk, and these say how far.
    if (intake && single) out.push(`${disk}, kept open 2 KB: group commit / one commit each: ${(intake.acceptedPerSecond / single.acceptedPerSecond).toFixed(2)}×`);
    if (intake && postfix) out.push(`${disk}, kept open 2 KB: intake / Postfix: ${(intake.acceptedPerSecond / postfix.acceptedPerSecond).toFixed(2)}×`);
  }
  const unknownKeys = 'kept open, 20 sessions, unknown keys (RCPT refusals)';
  const refusals = find(unknownKeys, 'intake');
  if (refusals) out.push(`RCPT refusals, intake: ${refusals.refusedPerSecond}/s (target ≥ 5000/s) ${refusals.refusedPerSecond >= 5000 ? 'met' : 'MISSED'}`);
  // No targets. Postfix writes a log line for a refusal, intake a row.
  ratio('RCPT refusals, intake / Postfix', refusals, find(unknownKeys, POSTFIX), 'refusedPerSecond', null);
  const half = 'kept open, 20 sessions, half unknown keys';
  ratio('half unknown keys, messages accepted, intake / Postfix', find(half, 'intake'), find(half, POSTFIX), 'acceptedPerSecond', null);
  const quotedThread = 'kept open, 20 sessions, 50 KB replies (a quoted thread)';
  ratio('50 KB replies (a quoted thread), intake / Postfix', find(quotedThread, 'intake'), find(quotedThread, POSTFIX), 'acceptedPerSecond', null);
  const p99 = find(w1, 'intake')?.p99Ms;
  if (p99 !== undefined && p99 !== null) out.push(`p99 end of DATA to reply, 20 sessions: ${p99} ms (target < 50 ms) ${p99 < 50 ? 'met' : 'MISSED'}`);
  const larges = [...runs].find(([workload]) => workload.startsWith(`${w1}, database with`))?.[1].get('intake') ?? [];
  const empties = runs.get(`${w1}, empty database`)?.get('intake') ?? [];
  const pairs = Array.from({ length: Math.min(larges.length, empties.length) }, (_, i) => (larges[i] as Row).acceptedPerSecond / ((empties[i] as Row).acceptedPerSecond || Number.NaN)).filter((v) => Number.isFinite(v));
  if (pairs.length > 0) {
    const change = median(pairs) - 1;
    out.push(`large database vs empty (median of ${pairs.length} pairs of bursts: ${pairs.map((v) => `${((v - 1) * 100).toFixed(1)}%`).join(', ')}): ${(change * 100).toFixed(1)}% (target within ±10%) ${Math.abs(change) <= 0.1 ? 'met' : 'MISSED'}`);
  }
  const bigs = rows.filter((r) => /^one \d+ MB message/.test(r.workload) && r.target === 'intake');
  for (const big of bigs) {
    const times = Number(/growth ([\d.]+)×/.exec(big.workload)?.[1]);
    // Judged on a warm server; a cold one also fills caches of a fixed size (see largeMessage).
    out.push(`${big.workload} (target < 3× on a warm server)${big.workload.includes('warm') ? (times < 3 ? ' met' : ' MISSED') : ', not judged'}`);
  }
  if (bigs.length > 0 && !bigs.some((r) => r.workload.includes('warm server'))) {
    out.push('one 25 MB message, warm server: not measured (/proc/PID/clear_refs could not be written to reset the peak), so the target is not judged');
  }
  return out;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
