// handler: what every handler provides, so the router can try them in order (GitLab's Handler.for).
import type { Repositories } from '../db/repositories.js';

export interface HandlerContext {
  repos: Repositories;
  inboundMessageId: number;
}

export interface HandlerResult {
  targetType: string;
  targetId: number;
}

export interface Handler<Parsed = unknown, Target = unknown> {
  readonly name: string;
  /** Reads the key if it is of this handler's form (pure); null lets the next handler try. */
  match(key: string): Parsed | null;
  /** Finds the live target of the key and checks the user may act on it; throws MailRejection. */
  resolve(parsed: Parsed, repos: Repositories): Target;
  /** Turns the message into work; throws MailRejection for mail it cannot use. Runs in a transaction. */
  handle(target: Target, message: ParsedMessage, context: HandlerContext): HandlerResult;
}

export interface ParsedAttachment {
  filename: string;
  contentType: string;
  content: Buffer;
}

/** A message as handlers see it; made by ingest/parse.ts. */
export interface ParsedMessage {
  messageId: string | null;
  subject: string | null;
  /** First address of From. */
  from: string | null;
  /** First address of Reply-To. */
  replyTo: string | null;
  /** Plain-text body: the text part, or text made from the HTML part. */
  text: string;
  attachments: ParsedAttachment[];
  /** Raw values of a header (name in any case), in order. */
  header(name: string): string[];
}
