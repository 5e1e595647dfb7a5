// graph-api: the Microsoft Graph requests the Graph fetcher makes for one mailbox (list a folder, download
// a message's MIME, delete, move, mark read, find or create a folder), with an app-only token from
// Microsoft Entra ID (OAuth2 client credentials, by MSAL). Side effects: HTTPS requests.
import { ConfidentialClientApplication, LogLevel, type INetworkModule, type NetworkRequestOptions, type NetworkResponse } from '@azure/msal-node';
import type { Logger } from 'pino';
import { z } from 'zod';
import { folderPath, odataString } from './graph-folder.js';

export interface GraphAccount {
  /** `https://login.microsoftonline.com`, or a national cloud's. */
  loginEndpoint: string;
  /** `https://graph.microsoft.com`, or a national cloud's. */
  graphEndpoint: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** The mailbox: its user principal name (an address) or object ID. */
  user: string;
}

/** A refusal from Graph or Entra ID, with what they said and, when throttled, how long to wait. */
export class GraphError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly code: string | null,
    /** From Retry-After (429 Too Many Requests, 503): the fetcher waits at least this long. */
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
  }
}

/** Entra ID would not give a token (a wrong secret, a tenant or app removed): the whole fetcher's trouble, no one message's. */
export class GraphLoginError extends GraphError {}

export interface GraphMailbox {
  /** A folder's ID, found from a setting like `inbox` or `Inbox/Support`; created when `create` and missing. */
  folderId(setting: string, create: boolean): Promise<string>;
  /** The IDs of the folder's messages, oldest first, every page of them; only unread ones when `unreadOnly`. */
  messageIds(folderId: string, unreadOnly: boolean): Promise<string[]>;
  /** The message's MIME bytes, at most `maxBytes + 1` of them; or its size alone when Graph announces more. */
  download(id: string, maxBytes: number): Promise<{ raw: Buffer } | { tooBig: number }>;
  /** Moves it to Deleted Items (Graph's DELETE), where the mailbox's retention policy ends it. */
  delete(id: string): Promise<void>;
  move(id: string, folderId: string): Promise<void>;
  markRead(id: string): Promise<void>;
  /** Ends the requests under way and refuses any after (close() past its grace). */
  abort(): void;
}

const PAGE_SIZE = 200;
const REQUEST_TIMEOUT_MS = 60_000;
/** Messages are many megabytes at most; a slow link gets longer than for a listing. */
const DOWNLOAD_TIMEOUT_MS = 10 * 60_000;

/**
 * Exchange's IDs are base64 (URL-safe or not). Anything else is refused: an ID like `..` would lead a
 * DELETE somewhere else once the URL is normalised.
 */
const graphId = z.string().regex(/^[A-Za-z0-9+/_=-]+$/, { message: 'an ID that is not base64' });
// A listed ID that is not one is left out (and said), not the whole page with it.
const page = z.object({ value: z.array(z.object({ id: z.string() })), '@odata.nextLink': z.string().optional() });
const folderList = z.object({ value: z.array(z.object({ id: graphId, displayName: z.string() })) });
const folder = z.object({ id: graphId });
const graphErrorBody = z.object({ error: z.object({ code: z.string().optional(), message: z.string().optional() }) });

export function connectGraph(account: GraphAccount, logger: Logger): GraphMailbox {
  const graph = account.graphEndpoint.replace(/\/+$/, '');
  const login = new URL(account.loginEndpoint);
  const aborter = new AbortController();
  const loginRequests = loginClient(aborter.signal);
  const stoppedError = () => new GraphError('intake is stopping: the request was not made, or was ended', null, 'Stopping');
  const app = new ConfidentialClientApplication({
    auth: {
      clientId: account.clientId,
      clientSecret: account.clientSecret,
      authority: `${login.origin}/${encodeURIComponent(account.tenantId)}`,
      // MSAL asks Microsoft's own cloud about any other login host; a national cloud's or a test's is named here instead.
      knownAuthorities: isMicrosoftLogin(login.host) ? [] : [login.host],
    },
    system: {
      networkClient: loginRequests.network,
      loggerOptions: {
        logLevel: LogLevel.Warning,
        piiLoggingEnabled: false,
        // MSAL warns of what is normal for an app-only token ("No client info in response"): only its errors are intake's.
        loggerCallback: (level, message) => (level <= LogLevel.Error ? logger.error({ component: 'msal' }, message) : logger.debug({ component: 'msal' }, message)),
      },
    },
  });
  const scopes = [`${graph}/.default`];
  // Said once each while they stay listed, not at every poll: the set holds only the last listing's.
  let oddIds = new Set<string>();
  const base = `${graph}/v1.0/users/${encodeURIComponent(account.user)}`;

  async function token(fresh: boolean): Promise<string> {
    loginRequests.takeFailure();
    try {
      // MSAL keeps the token until shortly before it expires (an hour); `fresh` when Graph said it no longer holds.
      const result = await app.acquireTokenByClientCredential({ scopes, skipCache: fresh });
      if (!result?.accessToken) throw new GraphLoginError('Microsoft Entra ID gave no access token', null, null);
      return result.accessToken;
    } catch (error) {
      if (error instanceof GraphError) throw error;
      if (aborter.signal.aborted) throw stoppedError();
      // Entra ID's own words: `invalid_client: AADSTS7000215: Invalid client secret provided...`.
      const e = error as { errorCode?: string; errorMessage?: string; message?: string; status?: number };
      // MSAL wraps it: `Error(s): 7000215 - Timestamp: ... - Description: AADSTS7000215: ...`.
      const description = e.errorMessage && (/Description: (.*?)(?: - Correlation ID:|\r?\n|$)/.exec(e.errorMessage)?.[1] ?? e.errorMessage.split(/\r?\n/)[0]);
      const said = loginRequests.takeFailure() ?? (description ? `${e.errorCode}: ${description}` : (e.message ?? String(error)));
      throw new GraphLoginError(`could not get a token from ${login.origin}: ${said}`, e.status ?? null, e.errorCode ?? null);
    }
  }

  /** One request, with the token; a 401 gets one more try with a new token. Not OK: a GraphError saying why. */
  async function request(method: string, url: string, options: { body?: unknown; timeoutMs?: number } = {}): Promise<Response> {
    // The token is for Graph alone: a link that points elsewhere (a nextLink) is not followed with it.
    if (!url.startsWith(`${graph}/`)) throw new GraphError(`Graph sent a link outside ${graph}: ${url}`, null, null);
    for (let attempt = 1; ; attempt++) {
      if (aborter.signal.aborted) throw stoppedError();
      const response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${await token(attempt > 1)}`,
          // IDs that survive a move between folders, so that a message is one `fetched_from` for ever.
          prefer: 'IdType="ImmutableId"',
          ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: AbortSignal.any([aborter.signal, AbortSignal.timeout(options.timeoutMs ?? REQUEST_TIMEOUT_MS)]),
      }).catch((error: unknown) => {
        const cause = (error as { cause?: { message?: string } }).cause?.message;
        throw new GraphError(`${method} ${url}: ${(error as Error).message}${cause ? `: ${cause}` : ''}`, null, null);
      });
      if (response.ok) return response;
      if (response.status === 401 && attempt === 1) {
        await response.body?.cancel();
        continue;
      }
      throw await refusal(method, url, response);
    }
  }

  async function json<T>(schema: z.ZodType<T>, method: string, url: string, body?: unknown): Promise<T> {
    const response = await request(method, url, { body });
    const parsed = schema.safeParse(await response.json().catch(() => undefined));
    if (!parsed.success) throw new GraphError(`${method} ${url}: Graph answered ${response.status} with a body that is not the expected resource`, response.status, null);
    return parsed.data;
  }

  async function childNamed(parent: string, name: string, create: boolean): Promise<string> {
    const children = `${base}/mailFolders/${encodeURIComponent(parent)}/childFolders`;
    const filter = `displayName eq ${odataString(name)}`;
    const found = await json(folderList, 'GET', `${children}?$filter=${encodeURIComponent(filter)}&$select=id,displayName`);
    const match = found.value[0];
    if (match) return match.id;
    if (!create) throw new GraphError(`no folder named ${JSON.stringify(name)} in ${account.user}'s mailbox (looked under folder ${parent})`, 404, 'ErrorFolderNotFound');
    logger.info({ folder: name }, 'creating the Graph folder to move fetched mail to');
    return (await json(folder, 'POST', children, { displayName: name })).id;
  }

  return {
    async folderId(setting, create) {
      const path = folderPath(setting);
      let id = (await json(folder, 'GET', `${base}/mailFolders/${path.root}?$select=id`)).id;
      for (const name of path.names) id = await childNamed(id, name, create);
      return id;
    },
    async messageIds(folderId, unreadOnly) {
      // Graph sorts only on a property the filter names first (else InefficientFilter): hence the date that every message passes.
      const filter = `receivedDateTime ge 1900-01-01T00:00:00Z${unreadOnly ? ' and isRead eq false' : ''}`;
      let url: string | undefined = `${base}/mailFolders/${encodeURIComponent(folderId)}/messages?$select=id&$top=${PAGE_SIZE}&$filter=${encodeURIComponent(filter)}&$orderby=receivedDateTime%20asc`;
      const ids: string[] = [];
      const odd = new Set<string>();
      while (url) {
        const answer: z.infer<typeof page> = await json(page, 'GET', url);
        for (const { id } of answer.value) {
          if (graphId.safeParse(id).success) ids.push(id);
          else odd.add(id.slice(0, 200));
        }
        url = answer['@odata.nextLink'];
      }
      for (const id of odd) if (!oddIds.has(id)) logger.warn({ id }, 'Graph listed an ID that is not base64: that message is left alone');
      oddIds = odd;
      return ids;
    },
    async download(id, maxBytes) {
      const response = await request('GET', `${base}/messages/${encodeURIComponent(id)}/$value`, { timeoutMs: DOWNLOAD_TIMEOUT_MS });
      const announced = Number(response.headers.get('content-length'));
      if (Number.isSafeInteger(announced) && announced > maxBytes) {
        await response.body?.cancel();
        return { tooBig: announced };
      }
      // One byte past the limit at most: a length Graph did not announce, or announced short, is not believed.
      const chunks: Buffer[] = [];
      let length = 0;
      try {
        for await (const chunk of response.body ?? []) {
          chunks.push(Buffer.from(chunk as Uint8Array));
          length += (chunk as Uint8Array).length;
          if (length > maxBytes) break;
        }
      } catch (error) {
        // Cut off midway (the connection, the timeout, abort()): as if the request had failed.
        throw new GraphError(`GET ${base}/messages/${id}/$value: the download broke off after ${length} bytes: ${(error as Error).message}`, null, null);
      }
      return { raw: Buffer.concat(chunks).subarray(0, maxBytes + 1) };
    },
    async delete(id) {
      await request('DELETE', `${base}/messages/${encodeURIComponent(id)}`);
    },
    async move(id, folderId) {
      await (await request('POST', `${base}/messages/${encodeURIComponent(id)}/move`, { body: { destinationId: folderId } })).body?.cancel();
    },
    async markRead(id) {
      await (await request('PATCH', `${base}/messages/${encodeURIComponent(id)}`, { body: { isRead: true } })).body?.cancel();
    },
    abort() {
      aborter.abort(stoppedError());
    },
  };
}

/** The GraphError for a refusal: Graph's code and message (`ErrorItemNotFound: The specified object...`), and Retry-After. */
async function refusal(method: string, url: string, response: Response): Promise<GraphError> {
  const text = await response.text().catch(() => '');
  let code: string | null = null;
  let said = text.slice(0, 300);
  try {
    const body = graphErrorBody.safeParse(JSON.parse(text));
    if (body.success) {
      code = body.data.error.code ?? null;
      said = [body.data.error.code, body.data.error.message].filter(Boolean).join(': ');
    }
  } catch {
    // Not JSON (a proxy's page): its first words are said as they are.
  }
  // Seconds (an HTTP date is not what Graph sends); absent or not a number is no Retry-After, not 0.
  const header = response.headers.get('retry-after')?.trim();
  const retryAfter = header && /^\d+$/.test(header) ? Number(header) : null;
  const retryAfterMs = retryAfter === null ? null : Math.min(retryAfter, 3600) * 1000;
  return new GraphError(`${method} ${url.split('?')[0]}: ${response.status} ${said}`.trim(), response.status, code, retryAfterMs);
}

/**
 * MSAL's requests to Entra ID, made as its own client makes them but under the fetcher's signal and a
 * timeout: a login that never answers would otherwise hold the poll, and intake's exit, for ever. MSAL
 * turns a failed request into a bare `network_error` (or drops it, for the metadata): `takeFailure()`
 * says what it was.
 */
function loginClient(signal: AbortSignal): { network: INetworkModule; takeFailure(): string | null } {
  let failure: string | null = null;
  const failed = (what: string) => {
    failure = what;
    return new Error(what);
  };
  async function send<T>(method: 'GET' | 'POST', url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    const where = `${method} ${url.split('?')[0]}`;
    failure = null;
    const response = await fetch(url, { method, headers: options?.headers, body: method === 'POST' ? (options?.body ?? '') : undefined, signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) }).catch((error: unknown) => {
      const cause = (error as { cause?: { message?: string } }).cause?.message;
      throw failed(`${where}: ${(error as Error).message}${cause ? `: ${cause}` : ''}`);
    });
    const body = (await response.json().catch(() => {
      throw failed(`${where}: answered ${response.status} with a body that is not JSON`);
    })) as T;
    return { headers: Object.fromEntries(response.headers), body, status: response.status };
  }
  return {
    network: { sendGetRequestAsync: (url, options) => send('GET', url, options), sendPostRequestAsync: (url, options) => send('POST', url, options) },
    takeFailure() {
      const said = failure;
      failure = null;
      return said;
    },
  };
}

/** Hosts MSAL knows as Microsoft's login (it checks them itself); others must be named to it. */
function isMicrosoftLogin(host: string): boolean {
  return ['login.microsoftonline.com', 'login.microsoftonline.us', 'login.chinacloudapi.cn', 'login.microsoft.com', 'login.windows.net', 'login.partner.microsoftonline.cn'].includes(host.toLowerCase());
}
