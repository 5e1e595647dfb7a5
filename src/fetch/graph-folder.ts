// graph-folder: a mail folder as a setting names it (`inbox`, `Inbox/Support`, `intake`), turned into the
// Microsoft Graph requests that find it, and the URL `inbound_messages.fetched_from` keeps for a message. Pure.

/**
 * Graph's well-known folder names (mailFolder resource), usable in place of an ID in any mailbox, whatever
 * its language: `inbox` is the inbox of a mailbox that calls it Posteingang.
 */
const WELL_KNOWN = new Set([
  'archive', 'clutter', 'conflicts', 'conversationhistory', 'deleteditems', 'drafts', 'inbox', 'junkemail', 'localfailures',
  'msgfolderroot', 'outbox', 'recoverableitemsdeletions', 'scheduled', 'searchfolders', 'sentitems', 'serverfailures', 'syncissues',
]);

/**
 * The first level of a folder path: a well-known name (any case), or a display name under the mailbox's
 * top (msgfolderroot); then each further level, a display name under the one before.
 * @example folderPath('Inbox/Support') // { root: 'inbox', names: ['Support'] }
 * @example folderPath('intake') // { root: 'msgfolderroot', names: ['intake'] }
 */
export function folderPath(setting: string): { root: string; names: string[] } {
  const levels = setting.split('/').map((level) => level.trim());
  if (levels.some((level) => level === '')) throw new Error(`${JSON.stringify(setting)} has an empty level: folders are named like Inbox/Support`);
  const first = levels[0] as string;
  return WELL_KNOWN.has(first.toLowerCase()) ? { root: first.toLowerCase(), names: levels.slice(1) } : { root: 'msgfolderroot', names: levels };
}

/** Two settings that name the same folder: well-known names and display names compare in any case, as Exchange does. */
export function sameFolder(a: string, b: string): boolean {
  const pa = folderPath(a);
  const pb = folderPath(b);
  return pa.root === pb.root && pa.names.length === pb.names.length && pa.names.every((name, i) => name.toLowerCase() === pb.names[i]?.toLowerCase());
}

/** An OData string literal: quoted, a quote inside doubled (OData 4.01 ABNF `SQUOTE-in-string`). */
export function odataString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * The message as Graph serves it, under its immutable ID (which survives a move between folders): what
 * `fetched_from` keeps, and what a person can GET with a token to see it.
 * @example graphMessageUrl('https://graph.microsoft.com', 'support@example.com', 'AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A')
 * // 'https://graph.microsoft.com/v1.0/users/support%40example.com/messages/AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A'
 */
export function graphMessageUrl(endpoint: string, user: string, id: string): string {
  return `${endpoint.replace(/\/+$/, '')}/v1.0/users/${encodeURIComponent(user)}/messages/${encodeURIComponent(id)}`;
}
