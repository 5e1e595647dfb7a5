// The Microsoft Graph fetcher against a stand-in for Entra ID and Graph over HTTPS (the one service this
// machine cannot reach): mail in the folder becomes notes, byte for byte, through a client-credentials
// token; a message is deleted, moved or marked read only once its row is committed, and fetched once
// across restarts; throttling, an expired token, a refused secret or permission are waited out, saying why.
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFakeGraph, type Breakage, type FakeGraph } from '../helpers/graph-fake.js';
import { metricValue } from '../helpers/metrics.js';
import { replyMessage, seedReplyWorld } from '../helpers/seed.js';
import { cliEnv, runCli, startServer, tempDir, template, type RunningServer } from '../helpers/server.js';
import { freePort } from '../interop/postfix.js';

interface Row {
  id: number;
  ingress: string;
  status: string;
  reason_code: string | null;
  smtp_reply: string;
  mail_from: string | null;
  fetched_from: string | null;
  sha256: string | null;
  size: number;
}

describe('the Microsoft Graph fetcher', () => {
  let graph: FakeGraph;
  const running: RunningServer[] = [];

  beforeAll(async () => {
    graph = await startFakeGraph();
  });
  // A test that failed leaves no fetcher behind to take the next test's mail.
  afterEach(async () => {
    for (const server of running.splice(0)) await server.stop();
  });
  afterAll(async () => {
    await graph?.close();
  });
  beforeEach(() => graph.reset());

  /** The Graph fetcher only (no SMTP listener), as for a Microsoft 365 mailbox, pointed at the stand-in. */
  const graphSettings = () => ({
    INTAKE_SMTP_LISTEN: '',
    INTAKE_GRAPH_USER: graph.user,
    INTAKE_GRAPH_TENANT_ID: graph.tenantId,
    INTAKE_GRAPH_CLIENT_ID: graph.clientId,
    INTAKE_GRAPH_CLIENT_SECRET: graph.clientSecret,
    INTAKE_GRAPH_LOGIN_ENDPOINT: graph.origin,
    INTAKE_GRAPH_ENDPOINT: graph.origin,
    NODE_EXTRA_CA_CERTS: graph.certFile,
  });
  const startIntake = async (settings: Record<string, string> = {}) => {
    const server = await startServer({ ...graphSettings(), INTAKE_GRAPH_POLL_INTERVAL_MS: '1000', ...settings });
    running.push(server);
    return server;
  };
  const stopIntake = async (server: RunningServer) => {
    expect(await server.stop()).toBe(0);
    running.splice(running.indexOf(server), 1);
  };
  const newDatabase = () => join(mkdtempSync(join(tmpdir(), 'intake-graph-')), 'intake.sqlite');
  const rowsOf = (server: RunningServer) => server.store.sqlite.prepare("select * from inbound_messages where ingress = 'graph' order by id").all() as Row[];
  const notesOf = (server: RunningServer, issueId: number) => server.store.sqlite.prepare("select body from notes where noteable_type = 'Issue' and noteable_id = ?").all(issueId) as { body: string }[];
  const messageUrl = (id: string) => `${graph.origin}/v1.0/users/${encodeURIComponent(graph.user)}/messages/${encodeURIComponent(id)}`;
  /** A reply as Exchange holds it: CRLF, with the key where a forwarding rule leaves it. */
  const reply = (server: RunningServer, body: string) => {
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const raw = replyMessage({ from: world.user.email, to: 'incoming@example.com', body, headers: [`Delivered-To: ${to}`] });
    return { world, raw: Buffer.from(`Return-Path: <${world.user.email}>\n${raw}`.replace(/\r?\n/g, '\r\n')) };
  };
  const graphCalls = (method: string, pathPart: string) => graph.requests.filter((r) => r.method === method && r.path.includes(pathPart));

  it('1. a reply in the inbox becomes a note, stored byte for byte, through a client-credentials token; it is deleted only once its row is committed', async () => {
    const server = await startIntake();
    const { world, raw } = reply(server, 'Fetched over Microsoft Graph.');
    const message = graph.deliver(raw);
    const rowAtDelete: (Row | undefined)[] = [];
    graph.onRequest = (request) => {
      if (request.method === 'DELETE') rowAtDelete.push(server.store.sqlite.prepare('select * from inbound_messages where fetched_from = ?').get(messageUrl(message.id)) as Row | undefined);
    };
    await expect.poll(() => notesOf(server, world.issue.id).length, { timeout: 20_000 }).toBe(1);
    expect(notesOf(server, world.issue.id)[0]?.body).toBe('Fetched over Microsoft Graph.');
    const [row] = rowsOf(server);
    expect(row).toMatchObject({ status: 'processed', fetched_from: messageUrl(message.id), mail_from: world.user.email });
    // The bytes Graph served are the bytes stored. (Exchange Online serves MIME it makes again from its own
    // store, not what arrived: this shows intake changes nothing, not that the sender's bytes survive Exchange.)
    expect(row?.sha256).toBe(createHash('sha256').update(raw).digest('hex'));
    // Deleted (to Deleted Items, under the same immutable ID), and only once its row was there to see.
    await expect.poll(() => graph.messagesIn('deleteditems').map((m) => m.id), { timeout: 10_000 }).toContain(message.id);
    expect(graph.messagesIn('inbox')).toHaveLength(0);
    expect(rowAtDelete.length).toBeGreaterThanOrEqual(1);
    expect(rowAtDelete[0]?.status).toBe('processed');
    // The token: client credentials, for Graph's `.default` scope, asked for once and reused.
    const tokenRequests = graph.requests.filter((r) => r.path.endsWith('/oauth2/v2.0/token'));
    expect(tokenRequests).toHaveLength(1);
    const form = new URLSearchParams(tokenRequests[0]?.body);
    expect({ grant: form.get('grant_type'), client: form.get('client_id'), scope: form.get('scope') }).toEqual({ grant: 'client_credentials', client: graph.clientId, scope: `${graph.origin}/.default` });
    const graphRequests = graph.requests.filter((r) => r.path.startsWith('/v1.0/'));
    expect(graphRequests.every((r) => r.headers.prefer === 'IdType="ImmutableId"')).toBe(true);
    await stopIntake(server);
  });

  it('2. a message that names no live key is refused with a row, and deleted as done with (no bounce to send)', async () => {
    const server = await startIntake();
    const message = graph.deliver(`From: someone@client.test\r\nTo: incoming+0123456789abcdef0123456789abcdef@example.com\r\nSubject: hi\r\nMessage-ID: <nokey@client.test>\r\n\r\nHello\r\n`);
    await expect.poll(() => rowsOf(server).length, { timeout: 20_000 }).toBe(1);
    expect(rowsOf(server)[0]).toMatchObject({ status: 'rejected', fetched_from: messageUrl(message.id) });
    expect(rowsOf(server)[0]?.smtp_reply).toMatch(/^5\d\d /);
    await expect.poll(() => graph.messagesIn('inbox').length, { timeout: 10_000 }).toBe(0);
    await stopIntake(server);
  });

  it('3. read: stored messages are marked read and left; a restart fetches none again; delete then removes them without storing them twice', async () => {
    const database = newDatabase();
    let server = await startIntake({ INTAKE_GRAPH_AFTER: 'read', INTAKE_DATABASE: database });
    const a = reply(server, 'First kept.');
    const b = reply(server, 'Second kept.');
    graph.deliver(a.raw);
    graph.deliver(b.raw);
    // Opened by a person before intake saw it: `read` lists the unread alone, so it is not fetched.
    graph.deliver(reply(server, 'Read by a person first.').raw, 'inbox', { isRead: true });
    await expect.poll(() => graph.messagesIn('inbox').filter((m) => m.isRead).length, { timeout: 20_000 }).toBe(3);
    expect(rowsOf(server)).toHaveLength(2);
    expect(notesOf(server, a.world.issue.id).map((n) => n.body)).toEqual(['First kept.']);
    await stopIntake(server);

    // Marked unread again by a person: the database says it is done with, so it is not stored again.
    for (const m of graph.messagesIn('inbox')) m.isRead = false;
    server = await startIntake({ INTAKE_GRAPH_AFTER: 'read', INTAKE_DATABASE: database });
    await expect.poll(() => graph.messagesIn('inbox').filter((m) => m.isRead).length, { timeout: 20_000 }).toBe(3);
    expect(rowsOf(server)).toHaveLength(3); // only the one a person had read first, now unread, is new
    await stopIntake(server);

    server = await startIntake({ INTAKE_GRAPH_AFTER: 'delete', INTAKE_DATABASE: database });
    await expect.poll(() => graph.messagesIn('inbox').length, { timeout: 20_000 }).toBe(0);
    expect(rowsOf(server)).toHaveLength(3);
    await stopIntake(server);
  });

  it('4. move, from a folder below the inbox: a stored message goes to INTAKE_GRAPH_MOVE_TO, created when missing, under the same ID', async () => {
    const server0 = await startIntake({ INTAKE_GRAPH_FOLDER: 'Inbox/Nowhere' });
    // A folder that is not there: said, and tried again, not a crash.
    await expect.poll(() => server0.logs.some((l) => l.includes('no folder named \\"Nowhere\\"')), { timeout: 10_000 }).toBe(true);
    await stopIntake(server0);

    // Support's below the inbox, made as a person would in Outlook (a quote, to be escaped in the OData filter).
    graph.createFolder('inbox', "Support's");
    const server = await startIntake({ INTAKE_GRAPH_FOLDER: "Inbox/Support's", INTAKE_GRAPH_AFTER: 'move', INTAKE_GRAPH_MOVE_TO: 'Archive/Processed' });
    const { world, raw } = reply(server, 'Moved once stored.');
    const message = graph.deliver(raw, "inbox/Support's");
    await expect.poll(() => graph.messagesIn('Archive/Processed').map((m) => m.id), { timeout: 20_000 }).toEqual([message.id]);
    expect(notesOf(server, world.issue.id)).toHaveLength(1);
    expect(rowsOf(server).map((r) => r.fetched_from)).toEqual([messageUrl(message.id)]);
    expect(graph.messagesIn("inbox/Support's")).toHaveLength(0);
    await stopIntake(server);
  });

  it('5. too big, announced or not: refused with a row and left in the folder; the message behind it is not held up; not fetched again after a restart', async () => {
    const database = newDatabase();
    let server = await startIntake({ INTAKE_MAX_MESSAGE_BYTES: '3072', INTAKE_DATABASE: database });
    graph.setChunkedDownloads(true);
    const big = graph.deliver(`From: a@client.test\r\nTo: incoming@example.com\r\nSubject: big\r\n\r\n${'x'.repeat(8000)}\r\n`);
    const { world, raw } = reply(server, 'Behind the big one.');
    graph.deliver(raw);
    await expect.poll(() => notesOf(server, world.issue.id).length, { timeout: 20_000 }).toBe(1);
    const tooBig = rowsOf(server).find((r) => r.reason_code === 'data.too_big');
    expect(tooBig).toMatchObject({ status: 'rejected', fetched_from: messageUrl(big.id) });
    expect(tooBig?.smtp_reply).toMatch(/^552 5\.3\.4 /);
    // Not announced: read to one byte past the limit, and no further.
    expect(tooBig?.size).toBe(3073);
    await expect.poll(() => graph.messagesIn('inbox').map((m) => m.id), { timeout: 10_000 }).toEqual([big.id]);
    await stopIntake(server);

    graph.setChunkedDownloads(false);
    server = await startIntake({ INTAKE_MAX_MESSAGE_BYTES: '3072', INTAKE_DATABASE: database });
    const before = graphCalls('GET', '/$value').length;
    // Two polls at least (one a second), and neither downloads it again.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(graphCalls('GET', '/$value').length).toBe(before);
    expect(rowsOf(server)).toHaveLength(2);
    // Announced too big (Content-Length): refused without reading it.
    const announced = graph.deliver(`From: a@client.test\r\nTo: incoming@example.com\r\nSubject: big2\r\n\r\n${'y'.repeat(8000)}\r\n`);
    await expect.poll(() => rowsOf(server).filter((r) => r.reason_code === 'data.too_big').length, { timeout: 10_000 }).toBe(2);
    expect(rowsOf(server).at(-1)).toMatchObject({ fetched_from: messageUrl(announced.id), size: announced.raw.length });
    expect(graph.messagesIn('inbox')).toHaveLength(2);
    await stopIntake(server);
  });

  it('6. deferred (4xx, the sender rate): left in the folder with its row, and fetched again (after a restart here) and stored once', async () => {
    const database = newDatabase();
    let server = await startIntake({ INTAKE_SENDER_RATE_LIMIT: '1', INTAKE_DATABASE: database });
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    const send = (body: string) => graph.deliver(`Return-Path: <${world.user.email}>\r\n${replyMessage({ from: world.user.email, to, body }).replace(/\r?\n/g, '\r\n')}`);
    send('One.');
    const second = send('Two.');
    await expect.poll(() => rowsOf(server).map((r) => r.smtp_reply.slice(0, 3)), { timeout: 20_000 }).toEqual(['250', '451']);
    expect(graph.messagesIn('inbox').map((m) => m.id)).toEqual([second.id]);
    await stopIntake(server);
    server = await startIntake({ INTAKE_SENDER_RATE_LIMIT: '1', INTAKE_DATABASE: database });
    await expect.poll(() => notesOf(server, world.issue.id).map((n) => n.body).sort(), { timeout: 20_000 }).toEqual(['One.', 'Two.']);
    await expect.poll(() => graph.messagesIn('inbox').length, { timeout: 10_000 }).toBe(0);
    await stopIntake(server);
  });

  it('7. a backlog across pages is drained oldest first, each message once', async () => {
    // One sender writing 450 replies: the sender rate is not what is tested here.
    const server = await startIntake({ INTAKE_SENDER_RATE_LIMIT: '1000' });
    const world = seedReplyWorld(server.repos);
    const to = template.format(world.key);
    for (let i = 0; i < 450; i++) graph.deliver(replyMessage({ from: world.user.email, to, body: `Backlog ${i}.` }).replace(/\r?\n/g, '\r\n'));
    await expect.poll(() => notesOf(server, world.issue.id).length, { timeout: 60_000, interval: 500 }).toBe(450);
    expect(notesOf(server, world.issue.id).map((n) => n.body)).toEqual(Array.from({ length: 450 }, (_, i) => `Backlog ${i}.`));
    expect(graph.requests.some((r) => r.query.get('$skip') === '400')).toBe(true);
    expect(new Set(rowsOf(server).map((r) => r.fetched_from)).size).toBe(450);
    await stopIntake(server);
  }, 90_000);

  it('8. throttled (429): waits as long as Retry-After says; an expired token is replaced; the metrics say so', async () => {
    const httpPort = await freePort();
    const server = await startIntake({ INTAKE_HTTP_LISTEN: `127.0.0.1:${httpPort}` });
    const metric = (name: string) => metricValue(httpPort, name);
    await expect.poll(() => metric('intake_graph_connected'), { timeout: 10_000 }).toBe(1);
    expect(await metric('intake_graph_last_check_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);

    graph.throttle(1, 3);
    await expect.poll(() => server.logs.some((l) => l.includes('ApplicationThrottled')), { timeout: 10_000 }).toBe(true);
    const throttledAt = Date.now();
    const wait = JSON.parse(server.logs.find((l) => l.includes('ApplicationThrottled')) as string) as { retryInMs: number; status: number };
    expect(wait).toMatchObject({ retryInMs: 3000, status: 429 });
    expect(await metric('intake_graph_connected')).toBe(0);
    const { world, raw } = reply(server, 'After the throttle.');
    graph.deliver(raw);
    await expect.poll(() => notesOf(server, world.issue.id).length, { timeout: 20_000 }).toBe(1);
    expect(Date.now() - throttledAt).toBeGreaterThanOrEqual(2500);
    expect(await metric('intake_graph_connected')).toBe(1);

    const tokensBefore = graph.requests.filter((r) => r.path.endsWith('/token')).length;
    graph.revokeTokens();
    const second = reply(server, 'With a new token.');
    graph.deliver(second.raw);
    await expect.poll(() => notesOf(server, second.world.issue.id).length, { timeout: 20_000 }).toBe(1);
    expect(graph.requests.filter((r) => r.path.endsWith('/token')).length).toBe(tokensBefore + 1);
    expect(server.logs.some((l) => l.includes('InvalidAuthenticationToken'))).toBe(false);
    await stopIntake(server);
  });

  it('9. a wrong client secret, or a permission refused: intake keeps running and tries again, slower each time, saying why', async () => {
    const server = await startIntake({ INTAKE_GRAPH_CLIENT_SECRET: 'not-the-secret' });
    await expect.poll(() => server.logs.filter((l) => l.includes('Graph poll failed')).length, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
    const waits = server.logs.filter((l) => l.includes('Graph poll failed')).map((l) => JSON.parse(l) as { retryInMs: number; err: string });
    expect(waits.slice(0, 2).map((w) => w.retryInMs)).toEqual([1000, 2000]);
    expect(waits[0]?.err).toMatch(/invalid_client: AADSTS7000215: Invalid client secret provided/);
    expect(server.logs.join('\n')).not.toContain('not-the-secret');
    await stopIntake(server);

    graph.setPermitted(false);
    const refused = await startIntake();
    await expect.poll(() => refused.logs.some((l) => l.includes('403 ErrorAccessDenied: Access is denied')), { timeout: 10_000 }).toBe(true);
    await stopIntake(refused);
  });

  it('10. the client secret read from a file; an unreadable or empty one stops serve with exit 78', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'intake-graph-secret-'));
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, `${graph.clientSecret}\n`);
    const server = await startIntake({ INTAKE_GRAPH_CLIENT_SECRET: '', INTAKE_GRAPH_CLIENT_SECRET_FILE: secretFile });
    const { world, raw } = reply(server, 'With the secret from a file.');
    graph.deliver(raw);
    await expect.poll(() => notesOf(server, world.issue.id).length, { timeout: 20_000 }).toBe(1);
    await stopIntake(server);

    writeFileSync(secretFile, '');
    await expect(startIntake({ INTAKE_GRAPH_CLIENT_SECRET: '', INTAKE_GRAPH_CLIENT_SECRET_FILE: secretFile })).rejects.toThrow(/exited with 78[\s\S]*INTAKE_GRAPH_CLIENT_SECRET_FILE: .* is empty/);
  });

  it('11. intake check gets a token and finds the folders, changing nothing; a wrong secret or folder fails it, in Entra ID\'s or Graph\'s words', async () => {
    const settings = { ...graphSettings(), INTAKE_DATABASE: join(tempDir(), 'intake.sqlite'), INTAKE_ADDRESS: 'incoming+%{key}@example.com', INTAKE_GRAPH_AFTER: 'move', INTAKE_GRAPH_MOVE_TO: 'Checked' };
    const message = graph.deliver('Subject: left alone\r\n\r\nx\r\n');
    const good = await runCli(['check'], cliEnv(settings));
    expect(good.stdout).toContain(`ok    graph: ${graph.user}: a token from ${new URL(graph.origin).host}, folder inbox found; Checked is created at the first move\n`);
    expect(good.status).toBe(0);
    expect(graph.folderId('Checked')).toBeUndefined();
    expect(graph.messagesIn('inbox').map((m) => m.id)).toEqual([message.id]);

    const wrongSecret = await runCli(['check'], cliEnv({ ...settings, INTAKE_GRAPH_CLIENT_SECRET: 'not-the-secret' }));
    expect(wrongSecret.status).toBe(1);
    expect(wrongSecret.stdout).toMatch(/^FAIL {2}graph: could not get a token from https:\/\/127\.0\.0\.1:\d+: invalid_client: AADSTS7000215: Invalid client secret provided/m);
    const wrongFolder = await runCli(['check'], cliEnv({ ...settings, INTAKE_GRAPH_FOLDER: 'Inbox/Missing' }));
    expect(wrongFolder.status).toBe(1);
    expect(wrongFolder.stdout).toContain(`FAIL  graph: no folder named "Missing" in ${graph.user}'s mailbox`);
    // MSAL says only `network_error` for a request that failed: intake says which, and why. A listener that
    // hangs up at once, rather than a port nothing listens on, which something else could take meanwhile.
    const hangUp = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => hangUp.listen(0, '127.0.0.1', resolve));
    const port = (hangUp.address() as { port: number }).port;
    try {
      const noLogin = await runCli(['check', '--timeout', '10'], cliEnv({ ...settings, INTAKE_GRAPH_LOGIN_ENDPOINT: `https://127.0.0.1:${port}` }));
      expect(noLogin.status).toBe(1);
      expect(noLogin.stdout).toMatch(new RegExp(`^FAIL {2}graph: could not get a token from https://127\\.0\\.0\\.1:${port}: GET https://127\\.0\\.0\\.1:${port}/\\S+: fetch failed: \\S`, 'm'));
      expect(noLogin.stdout).not.toContain('network_error');
    } finally {
      await new Promise((resolve) => hangUp.close(resolve));
    }
  });

  const valueRequests = (id: string) => graph.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/messages/${encodeURIComponent(id)}/$value`));
  const listRequests = () => graph.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/messages')).length;
  const logged = (server: RunningServer, text: string) => server.logs.filter((l) => l.includes(text)).map((l) => JSON.parse(l) as Record<string, unknown>);

  it('12. a message Graph answers 500 for (its $value, or its DELETE) waits a minute; the mail behind it goes on, and the poll does not fail', async () => {
    const httpPort = await freePort();
    const server = await startIntake({ INTAKE_HTTP_LISTEN: `127.0.0.1:${httpPort}` });
    const unreadable = reply(server, 'Cannot be converted to MIME.');
    const undeletable = reply(server, 'Cannot be deleted.');
    const behind = reply(server, 'Behind them.');
    const m1 = graph.deliver(unreadable.raw);
    graph.breakMessage(m1.id, 'download');
    const m2 = graph.deliver(undeletable.raw);
    graph.breakMessage(m2.id, 'action');
    const m3 = graph.deliver(behind.raw);

    await expect.poll(() => graph.messagesIn('deleteditems').map((m) => m.id), { timeout: 20_000 }).toEqual([m3.id]);
    expect(notesOf(server, behind.world.issue.id)).toHaveLength(1);
    expect(notesOf(server, undeletable.world.issue.id)).toHaveLength(1);
    expect(notesOf(server, unreadable.world.issue.id)).toHaveLength(0);
    expect(graph.messagesIn('inbox').map((m) => m.id)).toEqual([m1.id, m2.id]);
    // Three more polls (a second apart): neither is asked about again before its minute is up.
    const lists = listRequests();
    await expect.poll(listRequests, { timeout: 10_000 }).toBeGreaterThanOrEqual(lists + 3);
    expect(valueRequests(m1.id)).toHaveLength(1);
    expect(graph.requests.filter((r) => r.method === 'DELETE' && r.path.endsWith(encodeURIComponent(m2.id)))).toHaveLength(1);
    expect(rowsOf(server).filter((r) => r.fetched_from === messageUrl(m2.id))).toHaveLength(1);
    expect(logged(server, 'Graph message could not be downloaded')).toMatchObject([{ id: m1.id, status: 500, attempts: 1, err: expect.stringContaining('ErrorMimeContentConversionFailed') }]);
    expect(logged(server, 'Graph refused to delete a stored message')).toMatchObject([{ id: m2.id, status: 500, attempts: 1 }]);
    expect(logged(server, 'Graph poll failed')).toEqual([]);
    expect(await metricValue(httpPort, 'intake_graph_connected')).toBe(1);
    await stopIntake(server);
  });

  it('13. three messages in a row that Graph answers 5xx for (a gateway\'s 502, a 504) is Graph down: the poll ends, and a second later the mail after them is stored; a 500 Exchange says is the message\'s own starts the count again', async () => {
    const server = await startIntake();
    const answers: Breakage[] = ['gateway', 'gateway', 'exchange', 'outage', 'outage', 'outage'];
    const broken = answers.map((answer, i) => {
      const message = graph.deliver(reply(server, `Broken ${i}.`).raw);
      graph.breakMessage(message.id, 'download', answer);
      return message;
    });
    const after = reply(server, 'After the outage.');
    graph.deliver(after.raw);
    await expect.poll(() => notesOf(server, after.world.issue.id).length, { timeout: 20_000 }).toBe(1);
    // The ErrorMimeContentConversionFailed third shows Graph up: the poll ends at the sixth, not the fourth,
    // and the 504s count though Graph gave them a code.
    const said = server.logs
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((l) => typeof l.msg === 'string' && (l.msg.startsWith('Graph message could not be downloaded') || l.msg.startsWith('Graph poll failed')))
      .map((l) => [(l.msg as string).startsWith('Graph poll failed') ? 'poll failed' : broken.findIndex((m) => m.id === l.id), l.status]);
    expect(said).toEqual([[0, 502], [1, 502], [2, 500], [3, 504], [4, 504], [5, 504], ['poll failed', 504]]);
    expect(logged(server, 'Graph poll failed')).toMatchObject([{ retryInMs: 1000, err: expect.stringContaining('UnknownError') }]);
    for (const message of broken) expect(valueRequests(message.id)).toHaveLength(1);
    await stopIntake(server);
  });

  it('14. move: a folder to move to that was deleted meanwhile is made again, said in the log, and stored mail goes on being moved', async () => {
    const server = await startIntake({ INTAKE_GRAPH_AFTER: 'move', INTAKE_GRAPH_MOVE_TO: 'Done' });
    const first = graph.deliver(reply(server, 'Before.').raw);
    await expect.poll(() => graph.messagesIn('Done').map((m) => m.id), { timeout: 20_000 }).toEqual([first.id]);
    const before = graph.folderId('Done');
    graph.deleteFolder('Done');
    const second = reply(server, 'After the folder was deleted.');
    const message = graph.deliver(second.raw);
    await expect.poll(() => graph.messagesIn('Done').map((m) => m.id), { timeout: 20_000 }).toEqual([message.id]);
    expect(graph.folderId('Done')).not.toBe(before);
    expect(notesOf(server, second.world.issue.id)).toHaveLength(1);
    // The log line may reach the test a moment after the move did.
    await expect.poll(() => logged(server, 'the Graph folder fetched mail is moved to was gone'), { timeout: 5000 }).toMatchObject([{ folder: 'Done' }]);
    expect(logged(server, 'Graph poll failed')).toEqual([]);
    await stopIntake(server);
  });

  it('15. stopping while Entra ID does not answer: intake exits within INTAKE_SHUTDOWN_TIMEOUT_MS, not waiting for it', async () => {
    graph.stallLogin(true);
    const server = await startIntake({ INTAKE_SHUTDOWN_TIMEOUT_MS: '1000' });
    await expect.poll(() => graph.requests.filter((r) => !r.path.startsWith('/v1.0/')).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
    const stoppedAt = Date.now();
    await stopIntake(server);
    expect(Date.now() - stoppedAt).toBeLessThan(5000);
  });

  it('16. a listed ID that is not base64 is left alone and said, not followed into a URL; the rest of the page is fetched', async () => {
    const server = await startIntake();
    graph.deliver('Subject: odd\r\n\r\nx\r\n', 'inbox', { id: '../../mailFolders/inbox' });
    const { world, raw } = reply(server, 'Listed after an odd ID.');
    graph.deliver(raw);
    await expect.poll(() => notesOf(server, world.issue.id).length, { timeout: 20_000 }).toBe(1);
    // Said once, not at every poll.
    const lists = listRequests();
    await expect.poll(listRequests, { timeout: 10_000 }).toBeGreaterThanOrEqual(lists + 2);
    expect(logged(server, 'Graph listed an ID that is not base64')).toMatchObject([{ id: '../../mailFolders/inbox' }]);
    expect(graph.requests.some((r) => r.path.includes('mailFolders/inbox/$value') || r.path.includes('..'))).toBe(false);
    expect(rowsOf(server)).toHaveLength(1);
    await stopIntake(server);
  });

  it('17. intake check against an Entra ID that does not answer fails after --timeout, and exits', async () => {
    graph.stallLogin(true);
    const settings = { ...graphSettings(), INTAKE_DATABASE: join(tempDir(), 'intake.sqlite'), INTAKE_ADDRESS: 'incoming+%{key}@example.com' };
    const startedAt = Date.now();
    const check = await runCli(['check', '--timeout', '2'], cliEnv(settings));
    expect(check.stdout).toContain('FAIL  graph: no answer within 2 s (--timeout)\n');
    expect(check.status).toBe(1);
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    // A probe is not meant to wait for hours (and past 2^31 ms, about 24.8 days, Node fires a timer at once): refused by name.
    const tooLong = await runCli(['check', '--timeout', '99999999'], cliEnv(settings));
    expect(tooLong.status).not.toBe(0);
    expect(tooLong.stderr).toContain('--timeout must be at most 3600');
  });

  it.each([
    ['18. a 503 with Retry-After (Graph busy)', { answer: 'unavailable', status: 503, code: 'serviceNotAvailable', retryInMs: 2000 }],
    ['19. a 403 (an access policy that denies that message alone)', { answer: 'denied', status: 403, code: 'ErrorAccessDenied', retryInMs: 1000 }],
  ] as const)('%s on one message: it waits its minute, the poll ends (for at least Retry-After), and the mail behind it is stored at the next', async (_, { answer, status, code, retryInMs }) => {
    const server = await startIntake();
    const held = graph.deliver(reply(server, 'Held back by Graph.').raw);
    graph.breakMessage(held.id, 'download', answer);
    const behind = reply(server, 'Behind it.');
    graph.deliver(behind.raw);
    await expect.poll(() => notesOf(server, behind.world.issue.id).length, { timeout: 20_000 }).toBe(1);
    expect(logged(server, 'Graph poll failed')).toMatchObject([{ status, retryInMs, err: expect.stringContaining(code) }]);
    expect(logged(server, 'Graph message could not be downloaded')).toMatchObject([{ id: held.id, status, attempts: 1 }]);
    // Two more polls: it is not asked about again before its minute is up, and it stays in the folder.
    const lists = listRequests();
    await expect.poll(listRequests, { timeout: 10_000 }).toBeGreaterThanOrEqual(lists + 2);
    expect(valueRequests(held.id)).toHaveLength(1);
    expect(graph.messagesIn('inbox').map((m) => m.id)).toEqual([held.id]);
    await stopIntake(server);
  });
});
