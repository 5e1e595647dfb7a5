// What each start of intake loads: the packages reachable by static imports from an entry point. The
// optional ones (a fetcher, authentication, metrics, HTML mail, YAML) cost most of a start when loaded
// by everyone (README, Performance: "Starting"), so they must be reached only through import().
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(__dirname, '../../src');

/** The packages a module reaches through static, non-type imports and re-exports, transitively. */
function staticPackages(entry: string): Set<string> {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm)) {
      const specifier = match[1] as string;
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
      else if (!specifier.startsWith('node:')) packages.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] as string));
    }
  };
  visit(join(SRC, entry));
  return packages;
}

const OPTIONAL = ['imapflow', '@azure/msal-node', 'mailauth', 'prom-client', 'turndown', 'yaml'];

describe('what a start loads', () => {
  it('the checker reaches every kind of import it must see (so that the checks below can fail)', () => {
    const all = [...staticPackages('fetch/imap.ts'), ...staticPackages('fetch/graph.ts'), ...staticPackages('ingest/authenticate.ts'), ...staticPackages('monitor/metrics.ts')];
    expect(all).toEqual(expect.arrayContaining(['imapflow', '@azure/msal-node', 'mailauth', 'prom-client', 'zod']));
  });

  it('every command (commands.ts) loads neither an optional package nor the server or the mail parser', () => {
    const loaded = staticPackages('commands.ts');
    expect(loaded).toContain('commander');
    expect([...loaded].filter((p) => [...OPTIONAL, 'smtp-server', 'mailparser'].includes(p))).toEqual([]);
  });

  it('the server (serve.ts) and its writer thread load no optional package', () => {
    const server = staticPackages('serve.ts');
    expect(server).toContain('smtp-server');
    const writer = staticPackages('ingest/writer-thread.ts');
    expect(writer).toContain('mailparser');
    expect([...server, ...writer].filter((p) => OPTIONAL.includes(p))).toEqual([]);
  });

  it('intake deliver (pipe/deliver.ts) loads no optional package', () => {
    const loaded = staticPackages('pipe/deliver.ts');
    expect(loaded).toContain('mailparser');
    expect([...loaded].filter((p) => OPTIONAL.includes(p))).toEqual([]);
  });
});
