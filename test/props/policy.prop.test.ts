// Property tests for the policy protocol: whatever bytes arrive, every answer is one of the safe
// actions on one line, never OK, and a RCPT recipient is only let through (DUNNO) once checked.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide, formatAction, PolicyRequestReader, type RecipientVerdict } from '../../src/policy/protocol.js';

const seed = Number(process.env.FC_SEED ?? 20261126);
const params = { seed, numRuns: 1000 };

const attributeName = fc.constantFrom('request', 'protocol_state', 'recipient', 'sender', 'instance', 'client_address', 'x_unknown', 'Recipient', '');
const attributeValue = fc.oneof(fc.constantFrom('RCPT', 'DATA', 'smtpd_access_policy', 'a@b.test', ''), fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }));
const noise = fc.oneof(
  fc.tuple(attributeName, attributeValue).map(([n, v]) => `${n}=${v}`),
  // No line breaks: a random line must not end the request it is in.
  fc.string({ unit: 'binary', maxLength: 60 }).map((text) => text.replace(/[\r\n]/g, '')),
);
const recipient = fc.oneof(fc.constantFrom('incoming+abc@example.com', 'someone@elsewhere.test', 'a@b.test'), fc.string({ minLength: 1, maxLength: 40 }).map((text) => text.replace(/[\r\n]/g, '') || 'x'));
/**
 * A request as Postfix sends it at RCPT (most of them), changed at random: a state other than RCPT, a
 * missing or unknown request type, no recipient, and lines of noise anywhere among its attributes.
 */
const request = fc
  .record({
    state: fc.constantFrom('RCPT', 'RCPT', 'RCPT', 'rcpt', 'DATA', 'END-OF-MESSAGE', null),
    kind: fc.constantFrom('smtpd_access_policy', 'smtpd_access_policy', 'smtpd_access_policy', 'other', null),
    recipient: fc.option(recipient, { freq: 6 }),
    noise: fc.array(fc.tuple(noise, fc.nat()), { maxLength: 6 }),
  })
  .map(({ state, kind, recipient, noise }) => {
    const lines = [...(kind === null ? [] : [`request=${kind}`]), ...(state === null ? [] : [`protocol_state=${state}`]), ...(recipient === null ? [] : [`recipient=${recipient}`]), 'sender=a@b.test'];
    for (const [text, at] of noise) lines.splice(at % (lines.length + 1), 0, text);
    return `${lines.join('\n')}\n\n`;
  });
const stream = fc.array(fc.oneof({ weight: 4, arbitrary: request }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) }), { minLength: 1, maxLength: 8 }).map((parts) => Buffer.from(parts.join(''), 'utf8'));

describe('policy protocol properties', () => {
  it("every answer is DUNNO, REJECT, DEFER_IF_PERMIT or 421 on one line, never OK; at RCPT, the check's verdict decides, and DUNNO only after a check said so", () => {
    const reached = { checked: 0, rejected: 0, deferred: 0, disconnected: 0, letThrough: 0, notAtRcpt: 0, cannotJudge: 0 };
    fc.assert(
      fc.property(stream, fc.integer({ min: 1, max: 64 }), fc.constantFrom<RecipientVerdict['kind']>('accept', 'not_ours', 'refuse', 'disconnect'), fc.boolean(), (bytes, chunk, verdictKind, temporary) => {
        const reader = new PolicyRequestReader();
        for (let i = 0; i < bytes.length; i += chunk) {
          for (const request of reader.push(bytes.subarray(i, i + chunk))) {
            const checked: string[] = [];
            const check = (recipient: string): RecipientVerdict => {
              checked.push(recipient);
              if (verdictKind === 'refuse') return { kind: 'refuse', temporary, dsn: temporary ? '4.3.0' : '5.1.1', text: 'no' };
              if (verdictKind === 'disconnect') return { kind: 'disconnect', dsn: '4.7.0', text: 'go away' };
              return { kind: verdictKind };
            };
            const action = decide(request, check);
            const out = formatAction(action);
            expect(out).toMatch(/^action=(DUNNO|REJECT [^\n]*|DEFER_IF_PERMIT [^\n]*|421 [^\n]*)\n\n$/);
            const atRcpt = request.attributes.get('protocol_state')?.toUpperCase() === 'RCPT';
            if (!atRcpt) {
              reached.notAtRcpt++;
              expect(checked).toEqual([]);
              continue;
            }
            const kind = request.attributes.get('request');
            // Only a whole request of the right type, naming a recipient, is judged by the check.
            const judgeable = request.problems.length === 0 && (kind === undefined || kind === 'smtpd_access_policy') && Boolean(request.attributes.get('recipient'));
            expect(checked.length > 0, JSON.stringify([...request.attributes])).toBe(judgeable);
            if (checked.length === 0) {
              // Nothing checked: the request could not be judged, and Postfix is told to try later.
              reached.cannotJudge++;
              expect(action.action).toBe('DEFER_IF_PERMIT');
              continue;
            }
            reached.checked++;
            expect(checked).toEqual([request.attributes.get('recipient')]);
            const expected = { accept: 'DUNNO', not_ours: 'DUNNO', refuse: temporary ? 'DEFER_IF_PERMIT' : 'REJECT', disconnect: '421' }[verdictKind];
            expect(action.action).toBe(expected);
            if (action.action === 'REJECT') reached.rejected++;
            if (action.action === 'DEFER_IF_PERMIT') reached.deferred++;
            if (action.action === '421') reached.disconnected++;
            if (action.action === 'DUNNO') reached.letThrough++;
          }
        }
      }),
      params,
    );
    // The generator reaches every branch, not only the parser's.
    for (const [branch, count] of Object.entries(reached)) expect(count, branch).toBeGreaterThanOrEqual(5);
  });
});
