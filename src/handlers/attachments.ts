// attachments: stores a message's files with the item they came with and links them from its body:
// inline images where the HTML referenced them, the others at the end. Side effects: writes rows.
import { createHash } from 'node:crypto';
import type { ParsedAttachment } from './handler.js';
import type { HandlerContext } from './handler.js';

export interface Owner {
  type: 'Issue' | 'Note' | 'MergeRequest';
  id: number;
}

/**
 * The link intake writes into bodies: attachments are addressed by their row id. Like GitLab, an
 * image's alt text is its file name without the extension.
 */
export function attachmentLink(id: number, attachment: ParsedAttachment): string {
  const name = attachment.filename.replace(/[[\]]/g, '');
  if (!attachment.contentType.startsWith('image/')) return `[${name}](attachment:${id})`;
  return `![${name.replace(/\.[^.]+$/, '') || name}](attachment:${id})`;
}

/**
 * Points Turndown's `](cid:ID)` and `](cid:ID "title")` at the url of the attachment with that
 * Content-ID, keeping the alt text and title; the ID may be percent-encoded (RFC 2392). One pass for
 * all attachments (one per attachment took 33 s for 900 of them over a long body). Returns the body
 * and the Content-IDs it referred to.
 */
function replaceCids(body: string, urls: ReadonlyMap<string, string>): { body: string; used: Set<string> } {
  const used = new Set<string>();
  if (urls.size === 0 || !body.includes('](cid:')) return { body, used };
  // The ID stops at any bracket and the title within a line, so no match can run on over the next one.
  const replaced = body.replace(/\]\(cid:([^()[\]\s]+)((?:[ \t]+"[^"\n]{0,500}")?)\)/g, (whole, id: string, title: string) => {
    const contentId = urls.has(id) ? id : safeDecode(id);
    const url = contentId === null ? undefined : urls.get(contentId);
    if (url === undefined || contentId === null) return whole;
    used.add(contentId);
    return `](${url}${title})`;
  });
  return { body: replaced, used };
}

function safeDecode(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

/**
 * Stores the attachments and returns the body with links: `cid:` references are replaced in place,
 * every other file is listed at the end. A file over the limit is not stored; a line says so.
 */
export function storeAttachments(body: string, attachments: ParsedAttachment[], owner: Owner, context: HandlerContext, options: { listed?: (a: ParsedAttachment) => boolean } = {}): string {
  const stored: { attachment: ParsedAttachment; id: number | null }[] = [];
  const urls = new Map<string, string>();
  for (const attachment of attachments) {
    if (attachment.size > context.maxAttachmentBytes) {
      stored.push({ attachment, id: null });
      continue;
    }
    const id = context.repos.notes.addAttachment({
      inboundMessageId: context.inboundMessageId,
      ownerType: owner.type,
      ownerId: owner.id,
      filename: attachment.filename,
      contentType: attachment.contentType,
      size: attachment.size,
      sha256: attachment.content.reduce((hash, piece) => hash.update(piece), createHash('sha256')).digest('hex'),
      content: attachment.content,
    });
    stored.push({ attachment, id });
    // Two parts with one Content-ID: the first is the one a reference means.
    if (attachment.contentId && !urls.has(attachment.contentId)) urls.set(attachment.contentId, `attachment:${id}`);
  }
  const { body: text, used } = replaceCids(body, urls);
  const trailing: string[] = [];
  for (const { attachment, id } of stored) {
    if (id === null) {
      trailing.push(`*${attachment.filename} (${attachment.size} bytes) was not stored: attachments are limited to ${context.maxAttachmentBytes} bytes.*`);
    } else if (!(attachment.contentId && used.has(attachment.contentId) && urls.get(attachment.contentId) === `attachment:${id}`) && (options.listed?.(attachment) ?? true)) {
      trailing.push(attachmentLink(id, attachment));
    }
  }
  return trailing.length === 0 ? text : `${text}${text ? '\n\n' : ''}${trailing.join('\n')}`;
}
