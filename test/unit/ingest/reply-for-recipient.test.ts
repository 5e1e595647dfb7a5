// replyForRecipient: the LMTP reply for one recipient comes from its own deliveries row; the same
// mailbox with the domain in another case falls back to it, another case of the local part never does.
import { describe, expect, it } from 'vitest';
import type { Delivery } from '../../../src/db/repos/inbound.repo.js';
import { replyForRecipient, type IngestResult } from '../../../src/ingest/ingest.js';

const row = (id: number, recipient: string, status: Delivery['status'], reasonCode: string | null): Delivery => ({
  id,
  inboundMessageId: 7,
  recipient,
  key: null,
  source: null,
  destination: null,
  stage: 'data',
  status,
  reasonCode,
  reason: null,
  handler: null,
  targetType: null,
  targetId: null,
  createdAt: '2026-11-27T00:00:00.000Z',
});

describe('replyForRecipient', () => {
  const result: IngestResult = {
    inboundMessageId: 7,
    status: 'processed',
    deliveries: [row(1, 'incoming+KEY@example.com', 'processed', null), row(2, 'incoming+key@example.com', 'rejected', 'data.sender_not_verified')],
    reply: { code: 250, message: '2.6.0 Message accepted as inbound message 7' },
  };

  it('answers each recipient from its own row; keys differing in case are different recipients', () => {
    expect(replyForRecipient(result, 'incoming+KEY@example.com')).toEqual({ code: 250, message: '2.6.0 Message accepted as inbound message 7' });
    expect(replyForRecipient(result, 'incoming+key@example.com').code).toBe(550);
  });

  it('takes the domain in any case, never the local part', () => {
    expect(replyForRecipient(result, 'incoming+key@EXAMPLE.COM').code).toBe(550);
    expect(replyForRecipient(result, 'incoming+KEY@Example.Com').code).toBe(250);
    // No row of its own at all: the message was not stored for it.
    expect(replyForRecipient(result, 'incoming+Key@example.com')).toEqual({ code: 451, message: '4.3.0 Temporary failure storing the message, please try again later' });
  });
});
