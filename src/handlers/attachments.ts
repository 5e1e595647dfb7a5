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
 * Points Turndown's `](cid:ID)` and `](cid:ID "title")` at url, keeping the alt text and title; the
 * ID may be percent-encoded (RFC 2392). null when the body does not refer to contentId.
 */
function replaceCid(body: string, contentId: string, url: string): string | null {
  if (!body.includes('](cid:')) return null;
  let found = false;
  // The ID stops at any bracket and the title within a line, so no match can run on over the next one.
  const replaced = body.replace(/\]\(cid:([^()[\]\s]+)((?:[ \t]+"[^"\n]{0,500}")?)\)/g, (whole, id: string, title: string) => {
    if (id !== contentId && safeDecode(id) !== contentId) return whole;
    found = true;
    return `](${url}${title})`;
  });
  return found ? replaced : null;
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
  const trailing: string[] = [];
  let text = body;
  for (const attachment of attachments) {
    if (attachment.size > context.maxAttachmentBytes) {
      trailing.push(`*${attachment.filename} (${attachment.size} bytes) was not stored: attachments are limited to ${context.maxAttachmentBytes} bytes.*`);
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
    const link = attachmentLink(id, attachment);
    const inline = attachment.contentId ? replaceCid(text, attachment.contentId, `attachment:${id}`) : null;
    if (inline !== null) {
      text = inline;
    } else if (options.listed?.(attachment) ?? true) {
      trailing.push(link);
    }
  }
  return trailing.length === 0 ? text : `${text}${text ? '\n\n' : ''}${trailing.join('\n')}`;
}
