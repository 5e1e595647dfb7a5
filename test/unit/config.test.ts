import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, nothingToServe, parseHostPort, SETTINGS } from '../../src/config.js';
import { minFreeBytes } from '../../src/smtp/free-space.js';

describe('loadConfig', () => {
  it('has a default for every setting', () => {
    const config = loadConfig({ env: {} });
    expect(config).toMatchObject({
      database: './data/intake.sqlite',
      address: 'incoming+%{key}@localhost',
      smtp_listen: '127.0.0.1:2525',
      max_message_bytes: 26214400,
      max_recipients: 100,
      socket_timeout_ms: 300000,
      log_level: 'info',
      reverse_lookup: false,
    });
    expect(Object.keys(config).sort()).toEqual(Object.keys(SETTINGS).sort());
  });

  it('reads INTAKE_* variables and coerces numbers and flags', () => {
    const config = loadConfig({ env: { INTAKE_MAX_RECIPIENTS: '7', INTAKE_REVERSE_LOOKUP: 'yes', INTAKE_SMTP_LISTEN: '[::1]:25' } });
    expect(config.max_recipients).toBe(7);
    expect(config.reverse_lookup).toBe(true);
    expect(config.smtp_listen).toBe('[::1]:25');
  });

  it('keeps 1.5 times the largest message free by default (INTAKE_MIN_FREE_BYTES empty), any other amount when given, 0 for no check', () => {
    expect(minFreeBytes(loadConfig({ env: {} }))).toBe(39321600);
    expect(minFreeBytes(loadConfig({ env: { INTAKE_MAX_MESSAGE_BYTES: '1025' } }))).toBe(1538);
    expect(minFreeBytes(loadConfig({ env: { INTAKE_MIN_FREE_BYTES: '' } }))).toBe(39321600);
    expect(minFreeBytes(loadConfig({ env: { INTAKE_MIN_FREE_BYTES: '1000000' } }))).toBe(1000000);
    expect(minFreeBytes(loadConfig({ env: { INTAKE_MIN_FREE_BYTES: '0' } }))).toBe(0);
    expect(() => loadConfig({ env: { INTAKE_MIN_FREE_BYTES: '2GB' } })).toThrow(/INTAKE_MIN_FREE_BYTES: expected a whole number \(digits only, no unit\), or empty for 1\.5 times max_message_bytes \(got "2GB"\)/);
    expect(() => loadConfig({ env: { INTAKE_MIN_FREE_BYTES: '-1' } })).toThrow(/INTAKE_MIN_FREE_BYTES/);
  });

  it('takes an empty INTAKE_HOSTNAME (deploy/intake.env\'s line uncommented as shown) for the machine\'s name', () => {
    expect(loadConfig({ env: { INTAKE_HOSTNAME: '' } }).hostname).toBe(loadConfig({ env: {} }).hostname);
    expect(loadConfig({ env: { INTAKE_HOSTNAME: '' } }).hostname).not.toBe('');
    const dir = mkdtempSync(join(tmpdir(), 'intake-config-'));
    const file = join(dir, 'intake.env');
    writeFileSync(file, 'INTAKE_HOSTNAME=\nINTAKE_TRUSTED_RELAYS=192.0.2.9\n');
    expect(loadConfig({ env: {}, file }).hostname).toBe(loadConfig({ env: {} }).hostname);
    // Empty in the environment still wins over the file for the other settings: it means none.
    expect(loadConfig({ env: { INTAKE_TRUSTED_RELAYS: '' }, file }).trusted_relays).toEqual([]);
  });

  it('reports every problem at once, each naming its variable', () => {
    try {
      loadConfig({ env: { INTAKE_MAX_RECIPIENTS: '0', INTAKE_HOSTNAME: 'bad host', INTAKE_REVERSE_LOOKUP: 'maybe' } });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems.map((p) => p.split(':')[0])).toEqual(['INTAKE_HOSTNAME', 'INTAKE_MAX_RECIPIENTS', 'INTAKE_REVERSE_LOOKUP']);
    }
  });

  it('says what a flag, a number or an empty value should be, and which names a config file takes', () => {
    const problems = (env: Record<string, string>, file?: string) => {
      try {
        loadConfig({ env, file });
        return [];
      } catch (error) {
        return (error as ConfigError).problems;
      }
    };
    expect(problems({ INTAKE_REQUIRE_TLS: 'on' })).toEqual(['INTAKE_REQUIRE_TLS: expected true or false (or 1/0, yes/no) (got "on")']);
    expect(problems({ INTAKE_MAX_MESSAGE_BYTES: '25M' })).toEqual(['INTAKE_MAX_MESSAGE_BYTES: expected a whole number (digits only, no unit) (got "25M")']);
    expect(problems({ INTAKE_MAX_MESSAGE_BYTES: '' })).toEqual(['INTAKE_MAX_MESSAGE_BYTES: empty; give a value, or leave it out for the default (26214400)']);
    // A number out of range is told its range, not that it is no number.
    expect(problems({ INTAKE_MAX_REFUSED_RECIPIENTS: '1000000' })).toEqual(['INTAKE_MAX_REFUSED_RECIPIENTS: at most 100000 (got "1000000")']);
    expect(problems({ INTAKE_MAX_MESSAGE_BYTES: '100' })).toEqual(['INTAKE_MAX_MESSAGE_BYTES: at least 1024 (got "100")']);
    expect(problems({ INTAKE_MAX_RECIPIENTS: '1.5' })).toEqual(['INTAKE_MAX_RECIPIENTS: expected a whole number (digits only, no unit) (got "1.5")']);
    const dir = mkdtempSync(join(tmpdir(), 'intake-config-'));
    const yaml = join(dir, 'intake.yaml');
    writeFileSync(yaml, 'INTAKE_DATABASE: x.sqlite\n');
    expect(problems({}, yaml)).toEqual([`${yaml}: INTAKE_DATABASE: unknown setting; in a YAML or JSON file it is database (a file of INTAKE_DATABASE=value lines must end in .env)`]);
    // `key:` with nothing after it is YAML's null: none, as an empty variable.
    writeFileSync(yaml, 'smtp_listen:\ntrusted_relays:\nlmtp_listen: 127.0.0.1:24\n');
    expect(loadConfig({ env: {}, file: yaml })).toMatchObject({ smtp_listen: '', trusted_relays: [], lmtp_listen: '127.0.0.1:24' });
    const conf = join(dir, 'intake.conf');
    writeFileSync(conf, 'INTAKE_DATABASE=x.sqlite\n');
    expect(problems({}, conf)).toEqual([`--config ${conf}: expected a mapping of setting names to values (a file of INTAKE_X=value lines must end in .env)`]);
  });

  it('fetching over IMAP needs a user, one password setting and a mailbox address, and may be the only ingress', () => {
    const imap = { INTAKE_IMAP_HOST: 'imap.example.com', INTAKE_IMAP_USER: 'intake', INTAKE_IMAP_PASSWORD: 'secret' };
    expect(loadConfig({ env: { ...imap, INTAKE_SMTP_LISTEN: '' } })).toMatchObject({ imap_host: 'imap.example.com', imap_port: 993, imap_tls: 'implicit', imap_mailbox: 'INBOX', imap_after: 'delete' });
    // No listener and no fetcher: nothing for `serve` to run, and all that `deliver` (a pipe) needs.
    const pipeOnly = loadConfig({ env: { INTAKE_SMTP_LISTEN: '' } });
    expect(nothingToServe(pipeOnly)).toMatch(/every listener is empty.*or fetch with INTAKE_IMAP_HOST/);
    expect(nothingToServe(loadConfig({ env: { ...imap, INTAKE_SMTP_LISTEN: '' } }))).toBeNull();
    expect(nothingToServe(loadConfig({ env: {} }))).toBeNull();
    expect(() => loadConfig({ env: { ...imap, INTAKE_IMAP_USER: '' } })).toThrow('INTAKE_IMAP_USER: INTAKE_IMAP_HOST needs a user to log in as');
    expect(() => loadConfig({ env: { ...imap, INTAKE_IMAP_PASSWORD: '' } })).toThrow('INTAKE_IMAP_PASSWORD: INTAKE_IMAP_HOST needs INTAKE_IMAP_PASSWORD or INTAKE_IMAP_PASSWORD_FILE');
    expect(() => loadConfig({ env: { ...imap, INTAKE_IMAP_PASSWORD_FILE: '/run/secret' } })).toThrow('not both');
    expect(() => loadConfig({ env: { ...imap, INTAKE_ADDRESS: '%{key}@example.com' } })).toThrow(/has no mailbox address .* for fetched mail to be taken as sent to/);
    expect(() => loadConfig({ env: { ...imap, INTAKE_IMAP_HOST: 'imaps://imap.example.com:993' } })).toThrow(/INTAKE_IMAP_HOST: expected a host name or IP address \(no scheme, no port/);
    expect(() => loadConfig({ env: { ...imap, INTAKE_IMAP_AFTER: 'move', INTAKE_IMAP_MOVE_TO: 'INBOX' } })).toThrow('INTAKE_IMAP_MOVE_TO: INBOX is the folder fetched from');
    expect(() => loadConfig({ env: { ...imap, INTAKE_IMAP_AFTER: 'move', INTAKE_IMAP_MOVE_TO: 'inbox' } })).toThrow('INTAKE_IMAP_MOVE_TO: inbox is the folder fetched from');
    expect(() => loadConfig({ env: { ...imap, INTAKE_IMAP_AFTER: 'expunge' } })).toThrow('INTAKE_IMAP_AFTER: expected delete, move or seen');
  });
  it('fetching over Microsoft Graph needs a tenant, a client ID, one secret setting, folders that can be named, https endpoints and a mailbox address', () => {
    const graph = { INTAKE_GRAPH_USER: 'incoming@example.com', INTAKE_GRAPH_TENANT_ID: 'contoso.onmicrosoft.com', INTAKE_GRAPH_CLIENT_ID: '8f2b7c1e-4a5d-4e3b-9c1a-2b3c4d5e6f70', INTAKE_GRAPH_CLIENT_SECRET: 'secret' };
    expect(loadConfig({ env: { ...graph, INTAKE_SMTP_LISTEN: '' } })).toMatchObject({ graph_user: 'incoming@example.com', graph_folder: 'inbox', graph_after: 'delete', graph_poll_interval_ms: 60000, graph_endpoint: 'https://graph.microsoft.com' });
    expect(nothingToServe(loadConfig({ env: { ...graph, INTAKE_SMTP_LISTEN: '' } }))).toBeNull();
    expect(() => loadConfig({ env: { ...graph, INTAKE_GRAPH_TENANT_ID: '' } })).toThrow('INTAKE_GRAPH_TENANT_ID: INTAKE_GRAPH_USER needs the directory (tenant) ID');
    expect(() => loadConfig({ env: { ...graph, INTAKE_GRAPH_TENANT_ID: 'https://login.microsoftonline.com/x' } })).toThrow(/INTAKE_GRAPH_TENANT_ID: expected a directory \(tenant\) ID or a domain/);
    expect(() => loadConfig({ env: { ...graph, INTAKE_GRAPH_CLIENT_ID: '' } })).toThrow("INTAKE_GRAPH_CLIENT_ID: INTAKE_GRAPH_USER needs the app registration's application (client) ID");
    expect(() => loadConfig({ env: { ...graph, INTAKE_GRAPH_CLIENT_ID: 'intake' } })).toThrow(/INTAKE_GRAPH_CLIENT_ID: expected the app registration's application \(client\) ID, a GUID/);
    expect(() => loadConfig({ env: { ...graph, INTAKE_GRAPH_CLIENT_SECRET: '' } })).toThrow('INTAKE_GRAPH_CLIENT_SECRET: INTAKE_GRAPH_USER needs INTAKE_GRAPH_CLIENT_SECRET or INTAKE_GRAPH_CLIENT_SECRET_FILE');
    expect(() => loadConfig({ env: { ...graph, INTAKE_GRAPH_CLIENT_SECRET_FILE: '/run/secret' } })).toThrow('not both');
    expect(() => loadConfig({ env: { ...graph, INTAKE_GRAPH_FOLDER: 'Inbox//Support' } })).toThrow('INTAKE_GRAPH_FOLDER: "Inbox//Support" has an empty level');
    expect(() => loadConfig({ env: { ...graph, INTAKE_GRAPH_AFTER: 'move', INTAKE_GRAPH_MOVE_TO: 'INBOX' } })).toThrow('INTAKE_GRAPH_MOVE_TO: INBOX is the folder fetched from');
    expect(() => loadConfig({ env: { ...graph, INTAKE_GRAPH_FOLDER: 'Inbox/Support', INTAKE_GRAPH_AFTER: 'move', INTAKE_GRAPH_MOVE_TO: 'inbox/support' } })).toThrow('INTAKE_GRAPH_MOVE_TO: inbox/support is the folder fetched from');
    expect(loadConfig({ env: { ...graph, INTAKE_GRAPH_AFTER: 'move', INTAKE_GRAPH_MOVE_TO: 'Inbox/Done' } }).graph_move_to).toBe('Inbox/Done');
    expect(() => loadConfig({ env: { ...graph, INTAKE_GRAPH_AFTER: 'seen' } })).toThrow('INTAKE_GRAPH_AFTER: expected delete, move or read');
    expect(() => loadConfig({ env: { ...graph, INTAKE_GRAPH_ENDPOINT: 'http://graph.microsoft.com' } })).toThrow(/INTAKE_GRAPH_ENDPOINT: expected an https:\/\/ origin, no path/);
    expect(() => loadConfig({ env: { ...graph, INTAKE_GRAPH_LOGIN_ENDPOINT: 'https://login.microsoftonline.com/contoso' } })).toThrow(/INTAKE_GRAPH_LOGIN_ENDPOINT: expected an https:\/\/ origin/);
    expect(loadConfig({ env: { ...graph, INTAKE_GRAPH_ENDPOINT: 'https://graph.microsoft.us/' } }).graph_endpoint).toBe('https://graph.microsoft.us/');
    expect(() => loadConfig({ env: { ...graph, INTAKE_ADDRESS: '%{key}@example.com' } })).toThrow(/INTAKE_GRAPH_USER: the address template %\{key\}@example.com has no mailbox address/);
  });


  it('takes a Service Desk alias template with a key that the address template does not take first', () => {
    const base = { INTAKE_ADDRESS: 'incoming+%{key}@example.com' };
    expect(loadConfig({ env: { ...base, INTAKE_SERVICE_DESK_ADDRESS: 'contact+%{key}@example.com' } }).service_desk_address).toBe('contact+%{key}@example.com');
    expect(loadConfig({ env: base }).service_desk_address).toBe('');
    expect(() => loadConfig({ env: { ...base, INTAKE_SERVICE_DESK_ADDRESS: 'contact@example.com' } })).toThrow(/INTAKE_SERVICE_DESK_ADDRESS: needs %\{key\} in its local part: the key names the project/);
    expect(() => loadConfig({ env: { ...base, INTAKE_SERVICE_DESK_ADDRESS: 'contact+%{key}' } })).toThrow(/INTAKE_SERVICE_DESK_ADDRESS: address template must look like local@domain/);
    expect(() => loadConfig({ env: { ...base, INTAKE_SERVICE_DESK_ADDRESS: 'Incoming+%{key}@EXAMPLE.com' } })).toThrow(
      /INTAKE_SERVICE_DESK_ADDRESS: its addresses \(Incoming\+project-1-issue-@EXAMPLE.com\) are taken by the address template incoming\+%\{key\}@example.com first/,
    );
    expect(() => loadConfig({ env: { INTAKE_ADDRESS: '%{key}@example.com', INTAKE_SERVICE_DESK_ADDRESS: 'contact+%{key}@example.com' } })).toThrow(/are taken by the address template %\{key\}@example.com first/);
    expect(() => loadConfig({ env: { INTAKE_ADDRESS: 'incoming@example.com', INTAKE_SERVICE_DESK_ADDRESS: 'contact+%{key}@example.com' } })).toThrow(/INTAKE_SERVICE_DESK_ADDRESS: needs an address template with %\{key\}/);
    // A catch-all at another domain leaves the alias its own.
    expect(loadConfig({ env: { INTAKE_ADDRESS: '%{key}@example.com', INTAKE_SERVICE_DESK_ADDRESS: 'contact+%{key}@help.example.com' } }).service_desk_address).toBe('contact+%{key}@help.example.com');
  });

  it('names a missing config file', () => {
    expect(() => loadConfig({ env: {}, file: '/nonexistent/intake.yaml' })).toThrow('--config /nonexistent/intake.yaml: cannot read');
  });
});

describe('parseHostPort', () => {
  it.each([
    ['127.0.0.1:2525', { host: '127.0.0.1', port: 2525 }],
    ['[::1]:25', { host: '::1', port: 25 }],
    ['mx.example.com:0', { host: 'mx.example.com', port: 0 }],
    ['127.0.0.1', null],
    ['127.0.0.1:65536', null],
    [':25', null],
  ])('%s', (value, expected) => {
    expect(parseHostPort(value)).toEqual(expected);
  });
});
