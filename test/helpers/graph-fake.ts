// A stand-in for Microsoft Entra ID and Microsoft Graph over HTTPS on 127.0.0.1, for the one service this
// machine cannot reach. It speaks their wire format as documented: the OpenID configuration and the
// client-credentials token endpoint, mailFolders, messages with $filter/$orderby/$top/$skip paging,
// MIME by `$value`, DELETE to Deleted Items, move, PATCH isRead, immutable IDs, and their error bodies.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { writeCertificate } from './certificates.js';
import { tempDir } from './server.js';

export interface FakeMessage {
  id: string;
  folderId: string;
  raw: Buffer;
  isRead: boolean;
  receivedDateTime: string;
}

interface Folder {
  id: string;
  displayName: string;
  parentFolderId: string | null;
  wellKnownName: string | null;
}

export interface GraphRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
}

/** How a broken message's requests are answered: see breakMessage(). */
export type Breakage = 'exchange' | 'gateway' | 'outage' | 'unavailable' | 'denied';

export interface FakeGraph {
  /** `https://127.0.0.1:PORT`: both the login and the Graph endpoint. */
  origin: string;
  certFile: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  user: string;
  /** Every request, token requests included, in order. */
  requests: GraphRequest[];
  /** Called as each request arrives, before it is answered. */
  onRequest: ((request: GraphRequest) => void) | null;
  /** Puts a message into a folder (a well-known name, an ID or a display-name path), as Exchange delivers it. */
  deliver(raw: Buffer | string, folder?: string, options?: { isRead?: boolean; id?: string }): FakeMessage;
  messagesIn(folder: string): FakeMessage[];
  /** Makes a folder below another, as a person would in Outlook. */
  createFolder(parent: string, displayName: string): string;
  /** Empties every folder and undoes throttle(), setPermitted(), setChunkedDownloads(), breakMessage(), stallLogin() and onRequest. */
  reset(): void;
  folderId(path: string): string | undefined;
  /** The next n Graph requests are throttled: 429 with Retry-After. */
  throttle(n: number, retryAfterSeconds: number): void;
  /** Every token issued so far stops being accepted (as one that expired would). */
  revokeTokens(): void;
  /** Whether the app has Mail.ReadWrite on the mailbox (an application access policy may deny it). */
  setPermitted(permitted: boolean): void;
  /** `$value` answers without Content-Length (chunked), as a proxy may. */
  setChunkedDownloads(chunked: boolean): void;
  /**
   * One message Graph cannot serve: its `$value` (`download`) or its DELETE, move and PATCH (`action`) answer
   * `exchange`: 500 ErrorMimeContentConversionFailed, as Exchange does for mail it cannot convert to MIME;
   * `gateway`: 502 with a proxy's HTML page and no Graph code; `outage`: 504 UnknownError, as Graph says
   * when a backend does not answer in time; `unavailable`: 503 with Retry-After: 2; `denied`: 403
   * ErrorAccessDenied, as for a message an access policy keeps from the app.
   */
  breakMessage(id: string, on: 'download' | 'action', answer?: Breakage): void;
  /** Entra ID takes token requests and never answers them (held until reset() or close()). */
  stallLogin(stalled: boolean): void;
  /** Deletes a folder and what is in it for good, as emptying Deleted Items in Outlook does. */
  deleteFolder(path: string): void;
  close(): Promise<void>;
}

const WELL_KNOWN = ['inbox', 'deleteditems', 'archive', 'drafts', 'sentitems', 'junkemail'];

export async function startFakeGraph(options: { user?: string } = {}): Promise<FakeGraph> {
  const dir = tempDir();
  const cert = writeCertificate(dir, 'graph', { commonName: 'localhost', ipAddress: '127.0.0.1' });
  const tenantId = randomUUID();
  const clientId = randomUUID();
  const clientSecret = `Xq8~${randomBytes(18).toString('base64url')}`;
  const user = options.user ?? 'support@contoso.example';
  const folders = new Map<string, Folder>();
  const messages = new Map<string, FakeMessage>();
  const tokens = new Set<string>();
  let throttled = { n: 0, retryAfter: 0 };
  let permitted = true;
  let chunked = false;
  const broken = new Map<string, { on: 'download' | 'action'; answer: Breakage }>();
  let loginStalled = false;
  const held: ServerResponse[] = [];
  const letGo = () => {
    for (const res of held.splice(0)) res.destroy();
  };
  let received = Date.parse('2026-11-28T00:00:00Z');
  const newId = () => `AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A${randomBytes(12).toString('base64url')}AAA=`;

  const addFolder = (displayName: string, parentFolderId: string | null, wellKnownName: string | null = null) => {
    const folder = { id: newId(), displayName, parentFolderId, wellKnownName };
    folders.set(folder.id, folder);
    return folder;
  };
  const root = addFolder('Top of Information Store', null, 'msgfolderroot');
  const names: Record<string, string> = { inbox: 'Inbox', deleteditems: 'Deleted Items', archive: 'Archive', drafts: 'Drafts', sentitems: 'Sent Items', junkemail: 'Junk Email' };
  for (const name of WELL_KNOWN) addFolder(names[name] as string, root.id, name);

  const byRef = (ref: string) => [...folders.values()].find((f) => f.id === ref || f.wellKnownName === ref.toLowerCase());
  const childNamed = (parent: Folder, name: string) => [...folders.values()].find((f) => f.parentFolderId === parent.id && f.displayName.toLowerCase() === name.toLowerCase());
  const byPath = (path: string) => {
    const [first, ...rest] = path.split('/');
    let folder = byRef(first as string) ?? childNamed(root, first as string);
    for (const name of rest) folder = folder && childNamed(folder, name);
    return folder;
  };
  const folderJson = (f: Folder) => ({
    id: f.id,
    displayName: f.displayName,
    parentFolderId: f.parentFolderId,
    childFolderCount: [...folders.values()].filter((c) => c.parentFolderId === f.id).length,
    unreadItemCount: [...messages.values()].filter((m) => m.folderId === f.id && !m.isRead).length,
    totalItemCount: [...messages.values()].filter((m) => m.folderId === f.id).length,
    isHidden: false,
  });
  const messageJson = (m: FakeMessage) => ({ id: m.id, receivedDateTime: m.receivedDateTime, isRead: m.isRead, parentFolderId: m.folderId });

  const fake: FakeGraph = {
    origin: '',
    certFile: cert.certFile,
    tenantId,
    clientId,
    clientSecret,
    user,
    requests: [],
    onRequest: null,
    deliver(raw, folder = 'inbox', opts = {}) {
      const target = byPath(folder);
      if (!target) throw new Error(`no folder ${folder}`);
      received += 1000;
      const message = { id: opts.id ?? newId(), folderId: target.id, raw: Buffer.from(raw), isRead: opts.isRead ?? false, receivedDateTime: new Date(received).toISOString().replace('.000Z', 'Z') };
      messages.set(message.id, message);
      return message;
    },
    messagesIn(folder) {
      const target = byPath(folder);
      return [...messages.values()].filter((m) => m.folderId === target?.id);
    },
    folderId: (path) => byPath(path)?.id,
    createFolder(parent, displayName) {
      const folder = byPath(parent);
      if (!folder) throw new Error(`no folder ${parent}`);
      return addFolder(displayName, folder.id).id;
    },
    reset() {
      messages.clear();
      throttled = { n: 0, retryAfter: 0 };
      permitted = true;
      chunked = false;
      broken.clear();
      loginStalled = false;
      letGo();
      fake.onRequest = null;
    },
    throttle(n, retryAfter) {
      throttled = { n, retryAfter };
    },
    revokeTokens: () => tokens.clear(),
    setPermitted(value) {
      permitted = value;
    },
    setChunkedDownloads(value) {
      chunked = value;
    },
    stallLogin(stalled) {
      loginStalled = stalled;
      if (!stalled) letGo();
    },
    breakMessage(id, on, answer = 'exchange') {
      broken.set(id, { on, answer });
    },
    deleteFolder(path) {
      const folder = byPath(path);
      if (!folder || folder.wellKnownName) throw new Error(`no folder ${path} that can be deleted`);
      const gone = new Set([folder.id]);
      let grew = true;
      while (grew) {
        grew = false;
        for (const f of folders.values()) {
          if (f.parentFolderId && gone.has(f.parentFolderId) && !gone.has(f.id)) {
            gone.add(f.id);
            grew = true;
          }
        }
      }
      for (const id of gone) folders.delete(id);
      for (const m of [...messages.values()]) if (gone.has(m.folderId)) messages.delete(m.id);
    },
    close: () => {
      letGo();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json; odata.metadata=minimal', 'request-id': randomUUID(), ...headers });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  };
  const graphError = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}) =>
    send(res, status, { error: { code, message, innerError: { date: new Date().toISOString().slice(0, 19), 'request-id': randomUUID() } } }, headers);
  const aadError = (res: ServerResponse, status: number, error: string, code: number, description: string) =>
    send(res, status, { error, error_description: `AADSTS${code}: ${description}\r\nTrace ID: ${randomUUID()}\r\nCorrelation ID: ${randomUUID()}\r\nTimestamp: ${new Date().toISOString().slice(0, 19)}Z`, error_codes: [code], timestamp: new Date().toISOString(), trace_id: randomUUID(), correlation_id: randomUUID() });

  function login(req: GraphRequest, res: ServerResponse) {
    const [, tenant, ...rest] = req.path.split('/');
    if (tenant !== tenantId) return aadError(res, 400, 'invalid_tenant', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
    const base = `${fake.origin}/${tenantId}`;
    if (req.method === 'GET' && rest.join('/') === 'v2.0/.well-known/openid-configuration') {
      return send(res, 200, {
        token_endpoint: `${base}/oauth2/v2.0/token`,
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
        jwks_uri: `${base}/discovery/v2.0/keys`,
        response_modes_supported: ['query', 'fragment', 'form_post'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        issuer: `${base}/v2.0`,
        authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
        end_session_endpoint: `${base}/oauth2/v2.0/logout`,
        tenant_region_scope: 'EU',
      });
    }
    if (req.method === 'POST' && rest.join('/') === 'oauth2/v2.0/token') {
      const form = new URLSearchParams(req.body);
      if (form.get('grant_type') !== 'client_credentials') return aadError(res, 400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
      if (form.get('client_id') !== clientId) return aadError(res, 400, 'unauthorized_client', 700016, `Application with identifier '${form.get('client_id')}' was not found in the directory '${tenantId}'.`);
      if (form.get('client_secret') !== clientSecret) return aadError(res, 401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`);
      if (form.get('scope') !== `${fake.origin}/.default`) return aadError(res, 400, 'invalid_scope', 1002012, `The provided value for scope ${form.get('scope')} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
      const token = `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.${randomBytes(24).toString('base64url')}.${randomBytes(32).toString('base64url')}`;
      tokens.add(token);
      return send(res, 200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token });
    }
    return aadError(res, 404, 'invalid_request', 900561, 'The endpoint only accepts POST requests.');
  }

  function graph(req: GraphRequest, res: ServerResponse) {
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ') || !tokens.has(auth.slice(7))) return graphError(res, 401, 'InvalidAuthenticationToken', 'Access token has expired or is not yet valid.');
    if (throttled.n > 0) {
      throttled.n--;
      return graphError(res, 429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.', { 'retry-after': String(throttled.retryAfter) });
    }
    const immutable = /IdType="ImmutableId"/i.test(String(req.headers.prefer ?? ''));
    const applied: Record<string, string> = immutable ? { 'preference-applied': 'IdType="ImmutableId"' } : {};
    const parts = req.path.split('/').slice(2).map(decodeURIComponent); // ['users', user, ...]
    if (parts[0] !== 'users' || parts[1]?.toLowerCase() !== user.toLowerCase()) return graphError(res, 404, 'ErrorInvalidUser', `The requested user '${parts[1]}' is invalid.`);
    if (!permitted) return graphError(res, 403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
    const [, , kind, ref, sub, subsub] = parts;
    const body = () => (req.body ? (JSON.parse(req.body) as Record<string, unknown>) : {});

    if (kind === 'mailFolders') {
      const folder = ref === undefined ? root : byRef(ref);
      if (!folder) return graphError(res, 404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
      if (ref !== undefined && sub === undefined && req.method === 'GET') return send(res, 200, folderJson(folder), applied);
      if ((sub === 'childFolders' || ref === undefined) && req.method === 'GET') {
        let children = [...folders.values()].filter((f) => f.parentFolderId === folder.id);
        const filter = req.query.get('$filter');
        if (filter) {
          const m = /^displayName eq '((?:[^']|'')*)'$/.exec(filter);
          if (!m) return graphError(res, 400, 'ErrorInvalidUrlQueryFilter', 'The query filter contains one or more invalid nodes.');
          const name = (m[1] as string).replaceAll("''", "'").toLowerCase();
          children = children.filter((f) => f.displayName.toLowerCase() === name);
        }
        return send(res, 200, { value: children.map(folderJson) }, applied);
      }
      if ((sub === 'childFolders' || ref === undefined) && req.method === 'POST') {
        const displayName = String(body().displayName ?? '');
        if (childNamed(folder, displayName)) return graphError(res, 409, 'ErrorFolderExists', 'A folder with the specified name already exists.');
        return send(res, 201, folderJson(addFolder(displayName, folder.id)), applied);
      }
      if (sub === 'messages' && req.method === 'GET') return listMessages(req, res, folder, applied);
      return graphError(res, 405, 'ErrorInvalidRequest', 'The OData request is not supported.');
    }

    if (kind === 'messages' && ref !== undefined) {
      const message = messages.get(ref);
      if (!message) return graphError(res, 404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
      const breakage = broken.get(message.id);
      if (breakage?.on === (sub === '$value' ? 'download' : 'action')) {
        if (breakage.answer === 'gateway') {
          res.writeHead(502, { 'content-type': 'text/html' });
          return res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
        }
        if (breakage.answer === 'outage') return graphError(res, 504, 'UnknownError', '');
        if (breakage.answer === 'unavailable') return graphError(res, 503, 'serviceNotAvailable', 'Service unavailable.', { 'retry-after': '2' });
        if (breakage.answer === 'denied') return graphError(res, 403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
        return graphError(res, 500, 'ErrorMimeContentConversionFailed', 'The MIME content conversion failed.');
      }
      if (sub === '$value' && req.method === 'GET') {
        if (chunked) {
          res.writeHead(200, { 'content-type': 'text/plain' });
          for (let at = 0; at < message.raw.length; at += 1024) res.write(message.raw.subarray(at, at + 1024));
          return res.end();
        }
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(message.raw.length) });
        return res.end(message.raw);
      }
      if (sub === undefined && req.method === 'PATCH') {
        const patch = body();
        if (typeof patch.isRead === 'boolean') message.isRead = patch.isRead;
        return send(res, 200, messageJson(message), applied);
      }
      if (sub === undefined && req.method === 'DELETE') {
        moveTo(message, byRef('deleteditems') as Folder, immutable);
        res.writeHead(204);
        return res.end();
      }
      if (sub === 'move' && subsub === undefined && req.method === 'POST') {
        const target = byRef(String(body().destinationId ?? ''));
        if (!target) return graphError(res, 404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
        return send(res, 201, messageJson(moveTo(message, target, immutable)), applied);
      }
    }
    return graphError(res, 400, 'BadRequest', `Resource not found for the segment '${kind}'.`);
  }

  /** A message moved gets a new ID unless the client asked for immutable ones, as in Exchange Online. */
  function moveTo(message: FakeMessage, target: Folder, immutable: boolean): FakeMessage {
    messages.delete(message.id);
    const moved = { ...message, folderId: target.id, id: immutable ? message.id : newId() };
    messages.set(moved.id, moved);
    return moved;
  }

  function listMessages(req: GraphRequest, res: ServerResponse, folder: Folder, headers: Record<string, string>) {
    let list = [...messages.values()].filter((m) => m.folderId === folder.id);
    const filter = req.query.get('$filter') ?? '';
    const orderby = req.query.get('$orderby');
    const clauses = filter ? filter.split(' and ') : [];
    for (const clause of clauses) {
      const date = /^receivedDateTime ge (\S+)$/.exec(clause);
      if (date) list = list.filter((m) => m.receivedDateTime >= (date[1] as string));
      else if (clause === 'isRead eq false') list = list.filter((m) => !m.isRead);
      else if (clause === 'isRead eq true') list = list.filter((m) => m.isRead);
      else return graphError(res, 400, 'ErrorInvalidUrlQueryFilter', 'The query filter contains one or more invalid nodes.');
    }
    if (orderby) {
      const [property, direction = 'asc'] = orderby.split(' ');
      // Exchange sorts only on a property the filter names first.
      if (clauses.length > 0 && !clauses[0]?.startsWith(`${property} `)) return graphError(res, 400, 'InefficientFilter', 'The restriction or sort order is too complex for this operation.');
      if (property !== 'receivedDateTime') return graphError(res, 400, 'ErrorInvalidProperty', `Could not find a property named '${property}' on type 'microsoft.graph.message'.`);
      list.sort((a, b) => a.receivedDateTime.localeCompare(b.receivedDateTime) * (direction === 'desc' ? -1 : 1));
    } else {
      list.sort((a, b) => b.receivedDateTime.localeCompare(a.receivedDateTime));
    }
    const top = Number(req.query.get('$top') ?? 10);
    const skip = Number(req.query.get('$skip') ?? 0);
    if (!(top >= 1 && top <= 1000)) return graphError(res, 400, 'ErrorInvalidRequest', 'The $top value must be between 1 and 1000.');
    const pageOf = list.slice(skip, skip + top);
    const next = new URLSearchParams(req.query);
    next.set('$skip', String(skip + top));
    return send(res, 200, {
      '@odata.context': `${fake.origin}/v1.0/$metadata#users('${encodeURIComponent(user)}')/mailFolders('${folder.id}')/messages(id)`,
      value: pageOf.map((m) => ({ '@odata.etag': `W/"${createHash('sha1').update(m.id).digest('base64')}"`, id: m.id })),
      ...(skip + top < list.length ? { '@odata.nextLink': `${fake.origin}${req.path}?${next.toString().replaceAll('+', '%20')}` } : {}),
    }, headers);
  }

  const server = createServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', fake.origin);
      const request: GraphRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      fake.requests.push(request);
      fake.onRequest?.(request);
      if (url.pathname.startsWith('/v1.0/')) graph(request, res);
      else if (loginStalled) held.push(res);
      else login(request, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
