// handler: what every handler provides, so the router can try them in GitLab's precedence, and the
// message as handlers see it.
import type { Repositories } from '../db/repositories.js';

export interface HandlerContext {
  repos: Repositories;
  inboundMessageId: number;
  /** Attachments larger than this are left out, with a line in the body saying so. */
  maxAttachmentBytes: number;
  /** True for intake's own addresses, which are never added as Service Desk participants. */
  isOwnAddress(address: string): boolean;
}

export interface HandlerResult {
  targetType: string;
  targetId: number;
}

export interface Handler<Form = unknown, Target = unknown> {
  readonly name: string;
  /** Finds the live target the key names and checks the user may act on it; throws MailRejection. */
  resolve(form: Form, repos: Repositories): Target;
  /**
   * What the target is, whatever key named it (`Issue:12`, `new_issue:3`): the same message delivered
   * again to the same destination, by any key, creates nothing new.
   */
  destination(target: Target): string;
  /** Turns the message into work; throws MailRejection for mail it cannot use. Runs in a transaction. */
  handle(target: Target, message: ParsedMessage, context: HandlerContext): HandlerResult;
}

export interface ParsedAttachment {
  filename: string;
  contentType: string;
  /** Decoded size in bytes. */
  size: number;
  /**
   * The decoded content, in the pieces it was read in (never joined: a large file is held once); empty
   * when it is over the attachment limit and will not be stored.
   */
  content: readonly Buffer[];
  /** Content-ID without brackets, for inline parts referenced as cid: from the HTML. */
  contentId: string | null;
}

/** A message as handlers see it; made by ingest/parse.ts. */
export interface ParsedMessage {
  messageId: string | null;
  subject: string | null;
  /** First address of From. */
  from: string | null;
  /** First address of Reply-To. */
  replyTo: string | null;
  /** First address of Sender: who sent it for the From, when there is no From. */
  sender: string | null;
  /** Addresses of To and Cc, in order. */
  to: string[];
  cc: string[];
  /** In-Reply-To and References message ids, without angle brackets. */
  inReplyTo: string[];
  references: string[];
  /** Plain-text body: the text part, or Markdown made from the HTML part. */
  text: string;
  attachments: ParsedAttachment[];
  /** Raw values of a header (name in any case), in order. */
  header(name: string): string[];
}
