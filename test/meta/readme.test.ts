// README.md and the code cannot drift apart: the configuration table, the rejection table and the
// schema description are checked against src/config.ts, src/errors.ts and the migrated database, and
// every rejection code is produced by some test.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config.js';
import { EX_CONFIG } from '../../src/startup-error.js';
import { openStore } from '../../src/db/client.js';
import { OUTCOMES } from '../../src/errors.js';
import { createMetrics } from '../../src/monitor/metrics.js';
import { parse as parseYaml } from 'yaml';
import { ROOT } from '../helpers/server.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const escape = (text: string) => text.replace(/\|/g, '\\|');

function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  expect(start, `README has a "## ${title}" section`).toBeGreaterThan(-1);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end === -1 ? undefined : end);
}

function testSources(dir = join(ROOT, 'test')): string {
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .map((path) => (statSync(path).isDirectory() ? testSources(path) : path.endsWith('.test.ts') && !path.includes('/meta/') ? readFileSync(path, 'utf8') : ''))
    .join('\n');
}

describe('README', () => {
  it('starts with what intake is, then the two commands', () => {
    const headings = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(headings.slice(0, 6)).toEqual(['The two commands', 'A five-minute tour', 'Configuration', 'What happens to a message', 'Database schema', 'Rejection table']);
    expect(headings.at(-1)).toBe('CLI reference');
    expect(section('The two commands')).toContain('npm ci && npx intake serve');
    expect(section('The two commands')).toContain('npm ci && npm test');
  });

  it('documents every setting with its variable, file key, default and meaning', () => {
    const table = section('Configuration');
    for (const [key, setting] of Object.entries(SETTINGS)) {
      const shown = 'defaultDoc' in setting ? setting.defaultDoc : `\`${setting.default}\``;
      expect(table).toContain(`| \`${setting.env}\` | \`${key}\` | ${shown} | ${escape(setting.doc)} |`);
    }
    expect(table.match(/^\| `INTAKE_/gm)).toHaveLength(Object.keys(SETTINGS).length);
  });

  it('is matched by deploy/intake.env, which lists every setting with its default', () => {
    const env = readFileSync(join(ROOT, 'deploy/intake.env'), 'utf8');
    for (const setting of Object.values(SETTINGS)) {
      // The comment, whole, on the line just above its variable.
      const shown = 'defaultDoc' in setting ? ` Default: ${setting.defaultDoc}.` : '';
      expect(env).toContain(`\n# ${setting.doc}${shown}\n#${setting.env}=${'defaultDoc' in setting ? '' : setting.default}\n`);
    }
  });

  it('has the rejection table of src/errors.ts, row for row, in order', () => {
    const rows = section('Rejection table').split('\n').filter((line) => line.startsWith('| `'));
    expect(rows).toEqual(
      Object.entries(OUTCOMES).map(([code, o]) => `| \`${code}\` | \`${o.smtp} ${o.dsn}\` | ${o.status} | ${escape(o.text)} | ${escape(o.when)} |`),
    );
  });

  it('documents every table and column of the database', () => {
    const store = openStore(':memory:');
    const tables = store.sqlite.prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like '__drizzle%'").all() as { name: string }[];
    const schema = section('Database schema');
    for (const { name } of tables) {
      const start = schema.indexOf(`**\`${name}\`**`);
      expect(start, `table ${name} is documented`).toBeGreaterThan(-1);
      const block = schema.slice(start, schema.indexOf('\n\n', schema.indexOf('| column |', start)));
      const documented = [...block.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map((m) => m[1]);
      const columns = (store.sqlite.prepare(`select name from pragma_table_info('${name}')`).all() as { name: string }[]).map((c) => c.name);
      expect(documented, `columns of ${name}`).toEqual(columns);
    }
    store.close();
  });
});

describe('rejection table', () => {
  const sources = testSources();

  const lineOf = (o: (typeof OUTCOMES)[keyof typeof OUTCOMES]) => `${o.smtp} ${o.dsn} ${o.text}`;

  it.each(Object.entries(OUTCOMES))('%s is produced and asserted by a test', (code, outcome) => {
    // Named as a string, or as a log line's JSON has it.
    const byCode = sources.includes(`'${code}'`) || sources.includes(`"${code}"`);
    // A reply line only proves its code when no other code answers with the same line.
    const shared = Object.entries(OUTCOMES).some(([other, o]) => other !== code && lineOf(o) === lineOf(outcome));
    const byReply = !shared && (sources.includes(lineOf(outcome).replace(/`/g, '\\`')) || sources.includes(lineOf(outcome)));
    expect(byCode || byReply, `a test names ${code}${shared ? '' : ' or asserts its reply line'}`).toBe(true);
  });

  it('uses a 4xx reply for temporary outcomes and a 5xx one for permanent refusals, with a matching enhanced code', () => {
    for (const [code, o] of Object.entries(OUTCOMES)) {
      expect(o.dsn[0], code).toBe(String(o.smtp)[0]);
      expect(o.text, code).not.toMatch(/^\d{3} /);
    }
  });
});

describe('deploy/', () => {
  const deployReadme = readFileSync(join(ROOT, 'deploy/README.md'), 'utf8');
  const unit = readFileSync(join(ROOT, 'deploy/intake.service'), 'utf8');

  it('README names every file in deploy/', () => {
    const files = readdirSync(join(ROOT, 'deploy'), { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile() && entry.name !== 'README.md')
      .map((entry) => join(entry.parentPath, entry.name).slice(join(ROOT, 'deploy').length + 1));
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const file of files) expect(deployReadme, file).toContain(`\`${file}\``);
  });

  it('the systemd unit runs as a dedicated user with a read-only system, a state directory, restarts, and port 25', () => {
    for (const line of [
      'User=intake',
      'ProtectSystem=strict',
      'StateDirectory=intake',
      'Restart=on-failure',
      'AmbientCapabilities=CAP_NET_BIND_SERVICE',
      'NoNewPrivileges=yes',
      'ExecReload=/bin/kill -HUP $MAINPID',
      `RestartPreventExitStatus=${EX_CONFIG}`,
      'ExecStart=/usr/local/bin/intake --config /etc/intake/intake.env serve',
    ]) {
      expect(unit.split('\n'), line).toContain(line);
    }
  });

  it('README explains the policy service default action and its trade-off, and DNS on a subdomain', () => {
    expect(deployReadme).toContain('smtpd_policy_service_default_action = DUNNO');
    expect(deployReadme).toContain('**The trade-off when intake is down.**');
    expect(deployReadme).toMatch(/incoming\.example\.com\. +MX +10 mx\.example\.com\./);
    expect(readFileSync(join(ROOT, 'deploy/postfix/main.cf.lmtp'), 'utf8')).toContain('\nsmtpd_policy_service_default_action = DUNNO\n');
  });
});

describe('monitoring', () => {
  // The metrics createMetrics registers, by base name (a histogram's _bucket, _sum and _count too).
  const registered = async () => {
    // With the IMAP and Graph fetchers', which are there only when they are configured.
    const { registry } = createMetrics({ database: join(ROOT, 'package.json'), sessions: () => ({}), imap: () => null, graph: () => null });
    const names = new Set<string>();
    for (const metric of await registry.getMetricsAsJSON()) {
      names.add(metric.name);
      if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${metric.name}${suffix}`);
    }
    return names;
  };

  it('README lists every intake_ metric /metrics has, and no other', async () => {
    const names = await registered();
    const table = section('Monitoring');
    const documented = new Set([...table.matchAll(/^\| (.+?) \|/gm)].flatMap((row) => [...row[1]!.matchAll(/`(intake_[a-z_]+)/g)].map((m) => m[1]!)));
    expect([...documented].sort()).toEqual([...names].filter((n) => n.startsWith('intake_') && !/_(bucket|sum|count)$/.test(n)).sort());
  });

  it('deploy/prometheus/intake-alerts.yml has the shape of Prometheus alerting rules, over metrics /metrics has (the PromQL itself is not parsed here)', async () => {
    const names = await registered();
    const rules = parseYaml(readFileSync(join(ROOT, 'deploy/prometheus/intake-alerts.yml'), 'utf8')) as { groups: { name: string; rules: Record<string, unknown>[] }[] };
    const all = rules.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThanOrEqual(6);
    for (const rule of all) {
      expect(Object.keys(rule).every((k) => ['alert', 'expr', 'for', 'labels', 'annotations'].includes(k)), String(rule.alert)).toBe(true);
      expect(rule.alert).toMatch(/^Intake[A-Za-z]+$/);
      expect(typeof rule.expr).toBe('string');
      if (rule.for !== undefined) expect(rule.for).toMatch(/^\d+[smh]$/);
      expect((rule.labels as { severity: string }).severity).toMatch(/^(critical|warning|info)$/);
      expect(typeof (rule.annotations as { summary: unknown }).summary).toBe('string');
      for (const [metric] of (rule.expr as string).matchAll(/\b(intake|process|nodejs)_[a-z_]+/g)) expect(names, `${String(rule.alert)}: ${metric}`).toContain(metric);
    }
  });
});
