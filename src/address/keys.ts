// keys: every GitLab reading of the `%{key}` part of an incoming address, in handler precedence, and minting those keys.
// Input: untrusted key text from the network. Pure: no I/O; parsing is hand-rolled and linear, so no regex can backtrack.
import { parseReplyKey, type ReplyKey } from './reply-key.js';

export type KeyForm =
  | { handler: 'reply'; replyKey: ReplyKey }
  | { handler: 'new_issue'; project: ProjectRef; token: string }
  | { handler: 'issue_note'; project: ProjectRef; token: string; issueIid: number }
  | { handler: 'unsubscribe'; replyKey: ReplyKey; legacy: boolean }
  | { handler: 'new_merge_request'; project: ProjectRef; token: string }
  | { handler: 'service_desk'; project: ProjectRef };

/** How a key names a project: by slug and numeric id (current forms), by full path (legacy forms),
 *  or by slug and Service Desk alias key (form 8). */
export type ProjectRef =
  | { by: 'id'; slug: string; id: number }
  | { by: 'path'; path: string }
  | { by: 'service_desk_key'; slug: string; serviceDeskKey: string };

export type KeyHandler = KeyForm['handler'];

/** Longer keys read as nothing: RFC 5321 caps a local part at 64 octets, so this only bounds hostile input. */
export const MAX_KEY_LENGTH = 1000;

/** ServiceDeskSetting validates project_key against this and caps it at 255 characters. */
export const SERVICE_DESK_KEY_PATTERN = /^[a-z0-9_]+$/;
export const SERVICE_DESK_KEY_MAX_LENGTH = 255;

const SLUG_MAX_LENGTH = 63;
const ISSUE_SUFFIX = '-issue';
const ISSUE_NOTE_INFIX = '-issue-';
const MERGE_REQUEST_SUFFIX = '-merge-request';
const SERVICE_DESK_SUFFIX = '-issue-';
const UNSUBSCRIBE_SUFFIX = '-unsubscribe';
const UNSUBSCRIBE_SUFFIX_LEGACY = '+unsubscribe';
const LEGACY_MERGE_REQUEST_MARKER = 'merge-request+';

/**
 * GitLab's `Project#full_path_slug` (`Gitlab::Utils.slugify`): lowercase, every character outside
 * a-z0-9 becomes '-', cut to 63 characters, then leading and trailing '-' removed.
 * @example fullPathSlug('Group/Sub.Group/My_Project') // 'group-sub-group-my-project'
 */
export function fullPathSlug(path: string): string {
  // The `u` flag makes an astral character one '-', as Ruby's per-codepoint gsub does, so the 63 cut lands where GitLab's does.
  return path
    .toLowerCase()
    .replace(/[^a-z0-9]/gu, '-')
    .slice(0, SLUG_MAX_LENGTH)
    .replace(/^-+|-+$/g, '');
}

/**
 * Every reading of the key, in GitLab's handler precedence
 * (CreateNote → CreateIssue → CreateNoteOnIssuable → Unsubscribe → CreateMergeRequest → ServiceDesk),
 * each handler contributing the readings its matchers accept. Empty when none. Never throws.
 *
 * GitLab stops at the first handler that claims a key, and within a handler at its first matcher; we
 * list them all, in that order, so a caller can try each against live data and the first hit is the
 * one GitLab would have chosen had it known which projects and tokens exist.
 * @example parseKey('gitlabhq-gitlabhq-1-auth_token-issue')
 * // [{ handler: 'new_issue', project: { by: 'id', slug: 'gitlabhq-gitlabhq', id: 1 }, token: 'auth_token' },
 * //  { handler: 'service_desk', project: { by: 'service_desk_key', slug: 'gitlabhq-gitlabhq-1-auth_token', serviceDeskKey: 'issue' } }]
 */
export function parseKey(key: string): KeyForm[] {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) return [];
  const forms: KeyForm[] = [];
  const hasSlash = key.includes('/');

  // CreateNote
  const replyKey = parseReplyKey(key);
  if (replyKey) forms.push({ handler: 'reply', replyKey });

  // CreateIssue
  if (!hasSlash && key.endsWith(ISSUE_SUFFIX)) {
    const parts = splitSlugIdToken(key.slice(0, -ISSUE_SUFFIX.length));
    if (parts) forms.push({ handler: 'new_issue', project: parts.project, token: parts.token });
  }
  const legacy = splitLegacy(key);
  if (legacy && !legacy.rest.includes('+') && !key.includes(UNSUBSCRIBE_SUFFIX_LEGACY)) {
    forms.push({ handler: 'new_issue', project: { by: 'path', path: legacy.path }, token: legacy.rest });
  }

  // CreateNoteOnIssuable: unlike its siblings GitLab does not skip keys containing '/' here.
  const note = splitIssueNote(key);
  if (note) forms.push({ handler: 'issue_note', project: note.project, token: note.token, issueIid: note.iid });

  // Unsubscribe
  for (const [suffix, isLegacy] of [[UNSUBSCRIBE_SUFFIX, false], [UNSUBSCRIBE_SUFFIX_LEGACY, true]] as const) {
    if (!key.endsWith(suffix)) continue;
    const unsubscribed = parseReplyKey(key.slice(0, -suffix.length));
    if (unsubscribed) forms.push({ handler: 'unsubscribe', replyKey: unsubscribed, legacy: isLegacy });
  }

  // CreateMergeRequest
  if (!hasSlash && key.endsWith(MERGE_REQUEST_SUFFIX)) {
    const parts = splitSlugIdToken(key.slice(0, -MERGE_REQUEST_SUFFIX.length));
    if (parts) forms.push({ handler: 'new_merge_request', project: parts.project, token: parts.token });
  }
  // GitLab's legacy MR regex, /\A(?<project_path>[^+]*)\+merge-request\+(?<incoming_email_token>.*)/, has no \z:
  // its greedy `.*` stops only at a newline, so the token is cut there and the rest ignored. GitLab's own key
  // capture (`(.+)` in the address regex) never yields a newline, so anchoring changes nothing for any key GitLab
  // could see; we anchor so that trailing junk after a newline is refused rather than silently dropped.
  if (legacy && legacy.rest.startsWith(LEGACY_MERGE_REQUEST_MARKER)) {
    forms.push({ handler: 'new_merge_request', project: { by: 'path', path: legacy.path }, token: legacy.rest.slice(LEGACY_MERGE_REQUEST_MARKER.length) });
  }

  // ServiceDesk: the current and alias forms exclude each other (trailing '-'), but legacy and alias can both read `group/my-project`.
  if (!hasSlash && key.endsWith(SERVICE_DESK_SUFFIX)) {
    const project = splitSlugId(key.slice(0, -SERVICE_DESK_SUFFIX.length));
    if (project) forms.push({ handler: 'service_desk', project });
  }
  if (hasSlash && !key.includes('+')) forms.push({ handler: 'service_desk', project: { by: 'path', path: key } });
  const alias = splitServiceDeskAlias(key);
  if (alias) forms.push({ handler: 'service_desk', project: alias });

  return forms;
}

/**
 * The key of the new-issue address (form 4), as `Project#new_issuable_address` builds it.
 * Throws RangeError when the key would not read back as this project, id and token (see {@link parseKey}).
 * @example newIssueKey('gitlabhq/gitlabhq', 1, 'auth_token') // 'gitlabhq-gitlabhq-1-auth_token-issue'
 */
export function newIssueKey(projectPath: string, projectId: number, token: string): string {
  const key = `${slugFor(projectPath)}-${checkId('projectId', projectId)}-${token}${ISSUE_SUFFIX}`;
  return readsBack(key, (f) => f.handler === 'new_issue' && sameIdRef(f.project, projectPath, projectId) && f.token === token);
}

/**
 * The key of the comment-on-issue address (form 5).
 * Throws RangeError when the key would not read back as this project, id, token and iid.
 * @example issueNoteKey('gitlabhq/gitlabhq', 1, 'auth_token', 5) // 'gitlabhq-gitlabhq-1-auth_token-issue-5'
 */
export function issueNoteKey(projectPath: string, projectId: number, token: string, iid: number): string {
  const key = `${slugFor(projectPath)}-${checkId('projectId', projectId)}-${token}${ISSUE_NOTE_INFIX}${checkId('iid', iid)}`;
  return readsBack(key, (f) => f.handler === 'issue_note' && sameIdRef(f.project, projectPath, projectId) && f.token === token && f.issueIid === iid);
}

/**
 * The key of the new-merge-request address (form 6).
 * Throws RangeError when the key would not read back as this project, id and token.
 * @example newMergeRequestKey('gitlabhq/gitlabhq', 1, 'auth_token') // 'gitlabhq-gitlabhq-1-auth_token-merge-request'
 */
export function newMergeRequestKey(projectPath: string, projectId: number, token: string): string {
  const key = `${slugFor(projectPath)}-${checkId('projectId', projectId)}-${token}${MERGE_REQUEST_SUFFIX}`;
  return readsBack(key, (f) => f.handler === 'new_merge_request' && sameIdRef(f.project, projectPath, projectId) && f.token === token);
}

/**
 * The key of the project's default Service Desk address (form 7); the trailing hyphen is GitLab's.
 * Throws RangeError when the path has an empty slug or the id is not a non-negative safe integer.
 * @example serviceDeskKey('email/test', 1) // 'email-test-1-issue-'
 */
export function serviceDeskKey(projectPath: string, projectId: number): string {
  const key = `${slugFor(projectPath)}-${checkId('projectId', projectId)}${SERVICE_DESK_SUFFIX}`;
  return readsBack(key, (f) => f.handler === 'service_desk' && sameIdRef(f.project, projectPath, projectId));
}

/**
 * The key of the Service Desk alias address (form 8): the project's slug and its configured project key.
 * Throws RangeError when the project key is not `[a-z0-9_]{1,255}` (GitLab refuses to store such a key).
 * @example serviceDeskAliasKey('email/test', 'mykey') // 'email-test-mykey'
 */
export function serviceDeskAliasKey(projectPath: string, serviceDeskKey: string): string {
  if (!isServiceDeskKey(serviceDeskKey)) {
    throw new RangeError(`service desk key must match [a-z0-9_]{1,${SERVICE_DESK_KEY_MAX_LENGTH}}, got ${JSON.stringify(serviceDeskKey.slice(0, 40))}`);
  }
  const slug = slugFor(projectPath);
  return readsBack(
    `${slug}-${serviceDeskKey}`,
    (f) => f.handler === 'service_desk' && f.project.by === 'service_desk_key' && f.project.slug === slug && f.project.serviceDeskKey === serviceDeskKey,
  );
}

/**
 * The key of a notification's unsubscribe address: the reply key and GitLab's current `-unsubscribe` suffix.
 * Throws RangeError when the argument is not a reply key, since the result would not be one GitLab or we accept.
 * @example unsubscribeKey('59d8df8370b7e95c5a49fbf86aeb2c93') // '59d8df8370b7e95c5a49fbf86aeb2c93-unsubscribe'
 */
export function unsubscribeKey(replyKey: string): string {
  if (!parseReplyKey(replyKey)) throw new RangeError(`not a reply key: ${JSON.stringify(replyKey.slice(0, 40))}`);
  return `${replyKey}${UNSUBSCRIBE_SUFFIX}`;
}

type Split = { project: ProjectRef; token: string };

/**
 * Mirrors `\A(?<project_slug>.+)-(?<project_id>\d+)-(?<token>.+)\z` with Ruby's semantics. The greedy slug
 * settles on the rightmost '-' followed by digits, a '-' and at least one character, so scanning from the
 * right finds GitLab's split first. The digit runs after each '-' are disjoint, so this is linear.
 */
function splitSlugIdToken(body: string): Split | null {
  // Ruby's `.` (no /m) refuses only "\n"; every character of the body is inside some `.+` or is '-' or a digit.
  if (body.includes('\n')) return null;
  for (let dash = body.lastIndexOf('-'); dash >= 1; dash = body.lastIndexOf('-', dash - 1)) {
    let end = dash + 1;
    while (end < body.length && isDigit(body.charCodeAt(end))) end += 1;
    if (end > dash + 1 && body[end] === '-' && end + 1 < body.length) {
      const id = toId(body.slice(dash + 1, end));
      // The regex match is GitLab's; an id we cannot hold exactly could only name the wrong project, so no reading.
      if (id === null) return null;
      return { project: { by: 'id', slug: body.slice(0, dash), id }, token: body.slice(end + 1) };
    }
  }
  return null;
}

/** Mirrors `\A(?<project_slug>.+)-(?<project_id>\d+)\z`: digits cannot hold '-', so the split is the last '-'. */
function splitSlugId(body: string): ProjectRef | null {
  if (body.includes('\n')) return null;
  const dash = body.lastIndexOf('-');
  if (dash < 1 || !isDigits(body.slice(dash + 1))) return null;
  const id = toId(body.slice(dash + 1));
  return id === null ? null : { by: 'id', slug: body.slice(0, dash), id };
}

/** Mirrors `…-(?<token>.+)-issue-(?<issuable_iid>\d+)\z`: the digits after the last "-issue-" are the only possible iid. */
function splitIssueNote(key: string): (Split & { iid: number }) | null {
  const at = key.lastIndexOf(ISSUE_NOTE_INFIX);
  if (at < 0) return null;
  const digits = key.slice(at + ISSUE_NOTE_INFIX.length);
  if (!isDigits(digits)) return null;
  const iid = toId(digits);
  const parts = splitSlugIdToken(key.slice(0, at));
  return parts && iid !== null ? { ...parts, iid } : null;
}

/**
 * Mirrors the legacy `\A(?<project_path>[^+]*)\+(?<rest>.*)\z`: the path runs to the first '+'. Ruby's `[^+]`
 * admits "\n" but `.` does not, hence the asymmetry. Empty captures are kept because GitLab keeps them
 * (an empty Ruby string is truthy); they simply find no project or user.
 */
function splitLegacy(key: string): { path: string; rest: string } | null {
  const plus = key.indexOf('+');
  if (plus < 0) return null;
  const rest = key.slice(plus + 1);
  return rest.includes('\n') ? null : { path: key.slice(0, plus), rest };
}

/** Mirrors `PROJECT_KEY_PATTERN = /\A(?<slug>.+)-(?<key>[a-z0-9_]+)\z/`: the key holds no '-', so the split is the last '-'. */
function splitServiceDeskAlias(key: string): ProjectRef | null {
  const dash = key.lastIndexOf('-');
  if (dash < 1) return null;
  const slug = key.slice(0, dash);
  const serviceDeskKey = key.slice(dash + 1);
  if (slug.includes('\n') || !isServiceDeskKey(serviceDeskKey)) return null;
  return { by: 'service_desk_key', slug, serviceDeskKey };
}

function isServiceDeskKey(text: string): boolean {
  return text.length <= SERVICE_DESK_KEY_MAX_LENGTH && SERVICE_DESK_KEY_PATTERN.test(text);
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function isDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i += 1) if (!isDigit(text.charCodeAt(i))) return false;
  return true;
}

/** Ruby's `to_i` drops leading zeros; beyond 2^53 a JS number would silently round to a neighbouring id. */
function toId(digits: string): number | null {
  const id = Number(digits);
  return Number.isSafeInteger(id) ? id : null;
}

function checkId(name: string, id: number): number {
  if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`${name} must be a non-negative safe integer, got ${id}`);
  return id;
}

function slugFor(projectPath: string): string {
  const slug = fullPathSlug(projectPath);
  // GitLab would mint `-1-token-issue` here, which its own `.+` slug can never read back.
  if (slug === '') throw new RangeError(`project path ${JSON.stringify(projectPath.slice(0, 40))} has an empty slug`);
  return slug;
}

function sameIdRef(project: ProjectRef, projectPath: string, projectId: number): boolean {
  return project.by === 'id' && project.slug === fullPathSlug(projectPath) && project.id === projectId;
}

/**
 * Tokens are opaque to GitLab but not to its greedy regexes: one holding `-<digits>-` moves the slug split,
 * one holding '/' or "\n" hides the key from its matcher. Refusing to mint such a key beats handing out an
 * address that would be refused at RCPT time.
 */
function readsBack(key: string, intended: (form: KeyForm) => boolean): string {
  if (!parseKey(key).some(intended)) throw new RangeError(`key ${JSON.stringify(key.slice(0, 80))} would not read back as intended`);
  return key;
}
