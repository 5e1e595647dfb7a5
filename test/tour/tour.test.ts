// Runs README's five-minute tour exactly as written, in the repository folder, with swaks and sqlite3
// (installed by .ci/run), and checks that it shows what the README says it shows.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ROOT } from '../helpers/server.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const tour = readme.slice(readme.indexOf('\n## A five-minute tour\n'), readme.indexOf('\n## ', readme.indexOf('\n## A five-minute tour\n') + 1));
const blocks = (lang: string) => [...tour.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1] as string);
const data = join(ROOT, 'data');
const aside = join(ROOT, `data.before-tour-${process.pid}`);

beforeAll(() => {
  for (const tool of ['swaks', 'sqlite3']) {
    expect(spawnSync('sh', ['-c', `command -v ${tool}`]).status, `${tool} is installed (.ci/run installs it)`).toBe(0);
  }
  // The tour writes ./data; a developer's own database is put aside and restored afterwards.
  if (existsSync(data)) renameSync(data, aside);
});

afterAll(() => {
  rmSync(data, { recursive: true, force: true });
  if (existsSync(aside)) renameSync(aside, data);
});

it('works as written', async () => {
  const [serveBlock, ...steps] = blocks('sh');
  expect(serveBlock?.trim()).toBe('npx intake serve');
  // Its own process group, so that stopping it is what Ctrl-C does: SIGINT to npx and to intake.
  const server = spawn('bash', ['-c', `exec ${serveBlock!.trim()}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let serverOut = '';
  server.stdout.on('data', (chunk: Buffer) => (serverOut += chunk.toString()));
  server.stderr.on('data', (chunk: Buffer) => (serverOut += chunk.toString()));
  try {
    await expect.poll(() => serverOut, { timeout: 20_000 }).toContain('"msg":"listening"');
    // Run as a reader would paste them: one shell, no set -e (swaks exits 24 on the refusal it shows).
    const result = spawnSync('bash', ['-c', steps.join('\n')], { cwd: ROOT, encoding: 'utf8', timeout: 90_000 });
    const output = `${result.stdout}${result.stderr}`;
    expect(result.status, output).toBe(0);
    expect(output).toMatch(/^reply_address\s+incoming\+1-[0-9a-z]{25}-1@localhost$/m);
    expect(output).toContain('250 2.6.0 Message accepted as inbound message 1');
    const [notesTable, refusal] = blocks('text');
    expect(output).toContain(notesTable!.trim());
    expect(output).toContain(refusal!.trim());
    expect(output).toMatch(/│ 2 {2}│ rejected {2}│ rcpt\.unknown_reply_key │ 550 5\.1\.1 We couldn't figure out/);
    expect(output).toMatch(/^1 {2}\S+ {2}processed {2}from alice@example\.com to incoming\+1-[0-9a-z]{25}-1@localhost → Note 1$/m);
  } finally {
    // A server that never started (its port taken, say) has exited: the failure above says why, and a
    // kill here would only replace it with ESRCH.
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      process.kill(-server.pid!, 'SIGINT');
      await exited;
    }
  }
  expect(serverOut).toContain('"msg":"stopped"');
});
