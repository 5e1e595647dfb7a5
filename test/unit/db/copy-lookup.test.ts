// findProcessedCopy(): finds a stored copy of a message from the message's side (its Message-ID or
// digest, then that row's deliveries), whatever the destination has received, on a real SQLite file.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../../src/db/client.js';
import { createRepositories } from '../../../src/db/repositories.js';
import { tempDir } from '../../helpers/server.js';

describe('the copy lookup', () => {
  it('is planned from the message side, by index, and finds the processed copy among a busy destination', () => {
    const store = openStore(join(tempDir(), 'intake.sqlite'));
    const sources: string[] = [];
    const prepare = store.sqlite.prepare.bind(store.sqlite);
    store.sqlite.prepare = ((source: string) => {
      sources.push(source);
      return prepare(source);
    }) as typeof store.sqlite.prepare;
    try {
      const repos = createRepositories(store);
      const delivered = (messageId: string | null, sha256: string, destination: string, status: 'processed' | 'rejected') => {
        const id = repos.inbound.insert({ ingress: 'smtp', mailFrom: 'a@example.com', rcptTo: ['r@example.com'], fromAddress: 'a@example.com', messageId, sha256, size: 1, status });
        repos.inbound.addDelivery(id, { recipient: 'r@example.com', stage: 'data', status, destination });
        return id;
      };
      repos.transaction(() => {
        // A busy issue: many deliveries to it, none of them a copy.
        for (let i = 0; i < 2000; i++) delivered(`other-${i}@example.com`, `d${i}`, 'Issue:1', 'processed');
        delivered('copy@example.com', 'c', 'Issue:1', 'rejected');
        delivered('copy@example.com', 'c', 'Issue:1', 'processed');
        delivered(null, 'same-bytes', 'Issue:1', 'processed');
      });
      const message = { id: 999_999, messageId: 'copy@example.com', from: 'a@example.com', sha256: 'x' };
      expect(repos.inbound.findProcessedCopy('Issue:1', message)).toMatchObject({ status: 'processed', destination: 'Issue:1' });
      expect(repos.inbound.findProcessedCopy('Issue:2', message)).toBeUndefined();
      expect(repos.inbound.findProcessedCopy('Issue:1', { ...message, from: 'b@example.com' })).toBeUndefined();
      expect(repos.inbound.findProcessedCopy('Issue:1', { ...message, messageId: null, sha256: 'same-bytes' })).toMatchObject({ status: 'processed' });

      const lookups = sources.filter((source) => /inner join "deliveries"/.test(source));
      expect(lookups).toHaveLength(2);
      for (const source of lookups) {
        const bindings = source.match(/\?/g)?.map(() => 'x') ?? [];
        const plan = (store.sqlite.prepare(`EXPLAIN QUERY PLAN ${source}`).all(...bindings) as { detail: string }[]).map((row) => row.detail);
        expect(plan[0]).toMatch(/^SEARCH inbound_messages USING INDEX inbound_messages_(message_id|sha256)/);
        expect(plan[1]).toMatch(/^SEARCH deliveries USING INDEX deliveries_inbound_message/);
        expect(plan.join('\n')).not.toMatch(/SCAN/);
      }
    } finally {
      store.close();
    }
  });
});
