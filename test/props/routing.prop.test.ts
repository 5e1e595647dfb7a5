// Property tests for the parsers of untrusted header text: the header candidate scan, message ids and
// quick actions. Seed fixed; FC_SEED to explore.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ParsedMessage } from '../../src/handlers/handler.js';
import { messageIds } from '../../src/ingest/parse.js';
import { headerCandidates } from '../../src/route/router.js';
import { extractQuickActions, redactQuickActions } from '../../src/text/quick-actions.js';

const seed = Number(process.env.FC_SEED ?? 20261125);

function message(headers: Record<string, string[]>, to: string[] = [], cc: string[] = [], references: string[] = []): ParsedMessage {
  return { messageId: null, subject: null, from: null, replyTo: null, sender: null, to, cc, inReplyTo: [], references, text: '', attachments: [], header: (name) => headers[name.toLowerCase()] ?? [] };
}

describe('header candidate scan', () => {
  it('never throws, and lists To first and Cc last, whatever the header values', () => {
    const value = fc.string({ maxLength: 200 });
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('delivered-to', 'x-delivered-to', 'envelope-to', 'x-envelope-to', 'received', 'x-original-to', 'x-forwarded-to'), fc.array(value, { maxLength: 5 })), fc.array(fc.emailAddress(), { maxLength: 5 }), fc.array(fc.emailAddress(), { maxLength: 5 }), (headers, to, cc) => {
        const found = headerCandidates(message(headers, to, cc), 'tracker.example');
        expect(found.slice(0, to.length).map((c) => c.source)).toEqual(to.map(() => 'To'));
        expect(found.slice(found.length - cc.length).map((c) => c.source)).toEqual(cc.map(() => 'Cc'));
      }),
      { seed, numRuns: 500 },
    );
  });

  it('finds a reply key in References only for our host, in any case; another host is named, without a key', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-f]{32}$/), fc.boolean(), (key, upper) => {
        const host = upper ? 'TRACKER.EXAMPLE' : 'tracker.example';
        const found = headerCandidates(message({}, [], [], [`issue_1@tracker.example`, `reply-${key}@${host}`, `reply-${key}@evil.example`]), 'tracker.example');
        expect(found).toEqual([
          { source: 'References', value: `reply-${key}@${host}`, key },
          { source: 'References', value: `reply-${key}@evil.example`, skipped: 'host is not INTAKE_HOSTNAME tracker.example' },
        ]);
      }),
      { seed, numRuns: 200 },
    );
  });

  it('reads Received "for <...>" recipients in order and ignores malformed lines', () => {
    const found = headerCandidates(message({ received: ['from x by y for <a@ex.example>; date', 'for <<broken@x>', 'garbage ((((', 'by z for <b@ex.example> (c)'] }), 'h');
    expect(found.map((c) => c.value)).toEqual(['a@ex.example', 'b@ex.example']);
  });
});

describe('messageIds', () => {
  it('never throws, and every id has no brackets or spaces', () => {
    // Folded References: ids between blanks, tabs and line breaks, brackets unbalanced at times.
    const piece = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom(' ', '\t', '\r\n ', '\r\n\t', '\n', '<', '>', '<a@b.example>', '<c@d.example>'));
    fc.assert(
      fc.property(fc.array(fc.array(piece, { maxLength: 12 }).map((pieces) => pieces.join('')), { maxLength: 5 }), (values) => {
        for (const id of messageIds(values)) expect(id).not.toMatch(/[<>\s]/);
      }),
      { seed, numRuns: 500 },
    );
  });

  it('reads thousands of References quickly enough to stay in a test', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => `<id${i}@x.example>`).join(',');
    expect(messageIds([ids])).toHaveLength(5000);
  });
});

describe('quick actions', () => {
  const line = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('/close', '/label ~a ~"b c"', '/title New', '/todo', '```', '> /close', ' /close'));
  const body = fc.array(line, { maxLength: 20 }).map((l) => l.join('\n'));

  it('extraction never throws, is idempotent on its text, and only takes lines outside code fences', () => {
    fc.assert(
      fc.property(body, (text) => {
        const once = extractQuickActions(text);
        expect(extractQuickActions(once.text).text).toBe(once.text);
        for (const action of once.actions) expect(action.line.startsWith('/')).toBe(true);
      }),
      { seed, numRuns: 1000 },
    );
  });

  it('redaction keeps every line, and leaves nothing a later extraction would run', () => {
    fc.assert(
      fc.property(body, (text) => {
        const redacted = redactQuickActions(text);
        expect(redacted.split('\n')).toHaveLength(text.split('\n').length);
        expect(extractQuickActions(redacted).actions).toEqual([]);
      }),
      { seed, numRuns: 1000 },
    );
  });
});
