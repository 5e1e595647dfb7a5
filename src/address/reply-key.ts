// reply-key: the grammar of GitLab's reply keys (legacy 32-hex and partitioned base36) and minting new ones.
// Input: untrusted key text from an address. Pure except mintReplyKey, which reads the CSPRNG.
import { randomBytes } from 'node:crypto';

export type ReplyKey =
  | { form: 'legacy'; key: string }
  | { form: 'partitioned'; key: string; partition: string; replyKey: string; namespaceId: string | null };

const LEGACY = /^[a-f0-9]{32}$/;
const PARTITIONED = /^([0-9a-z]{1,4})-([0-9a-z]{25})(?:-([0-9a-z]{1,13}))?$/;

/**
 * Reads a reply key, or returns null when the text is not one. Keys are case-sensitive.
 * @example parseReplyKey('1-0123456789abcdefghijklmno-2') // { form: 'partitioned', partition: '1', ... }
 */
export function parseReplyKey(text: string): ReplyKey | null {
  if (LEGACY.test(text)) return { form: 'legacy', key: text };
  const match = PARTITIONED.exec(text);
  if (!match) return null;
  return {
    form: 'partitioned',
    key: text,
    partition: match[1] as string,
    replyKey: match[2] as string,
    namespaceId: match[3] ?? null,
  };
}

/** The key without its namespace suffix: what identifies a notification when the suffix is absent. */
export function replyKeyStem(key: ReplyKey): string {
  return key.form === 'legacy' ? key.key : `${key.partition}-${key.replyKey}`;
}

/**
 * Mints a partitioned reply key as GitLab does: 128 random bits in base36, padded to 25 characters,
 * prefixed by the partition and followed by the namespace id, both in base36.
 */
export function mintReplyKey(partition: number, namespaceId: number, bytes: Buffer = randomBytes(16)): string {
  const random = BigInt(`0x${bytes.toString('hex')}`).toString(36).padStart(25, '0');
  return `${partition.toString(36)}-${random}-${namespaceId.toString(36)}`;
}
