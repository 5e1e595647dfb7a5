// Property tests for the policy protocol: whatever bytes arrive, every answer is one of the safe
// actions on one line, never OK, and a RCPT recipient is only let through (DUNNO) once checked.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide, formatAction, PolicyRequestReader, type RecipientVerdict } from '../../src/policy/protocol.js';

const seed = Number(process.env.FC_SEED ?? 20261126);
const params = { seed, numRuns: 400 };

const attributeName = fc.constantFrom('request', 'protocol_state', 'recipient', 'sender', 'instance', 'client_address', 'x_unknown', 'Recipient', '');
const attributeValue = fc.oneof(fc.constantFrom('RCPT', 'DATA', 'smtpd_access_policy', 'a@b.test', ''), fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }));
const line = fc.oneof(
  fc.tuple(attributeName, attributeValue).map(([n, v]) => `${n}=${v}`),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constant(''),
);
const stream = fc.array(line, { maxLength: 40 }).map((lines) => Buffer.from(lines.join('\n') + '\n\n', 'utf8'));

describe('policy protocol properties', () => {
  it('every answer is DUNNO, REJECT, DEFER_IF_PERMIT or 421 on one line, never OK; DUNNO at RCPT only after a check said so', () => {
    fc.assert(
      fc.property(stream, fc.integer({ min: 1, max: 64 }), fc.constantFrom<RecipientVerdict['kind']>('accept', 'not_ours', 'refuse', 'disconnect'), (bytes, chunk, verdictKind) => {
        const reader = new PolicyRequestReader();
        for (let i = 0; i < bytes.length; i += chunk) {
          for (const request of reader.push(bytes.subarray(i, i + chunk))) {
            const checked: string[] = [];
            const check = (recipient: string): RecipientVerdict => {
              checked.push(recipient);
              if (verdictKind === 'refuse') return { kind: 'refuse', temporary: false, dsn: '5.1.1', text: 'no' };
              if (verdictKind === 'disconnect') return { kind: 'disconnect', dsn: '4.7.0', text: 'go away' };
              return { kind: verdictKind };
            };
            const action = decide(request, check);
            const out = formatAction(action);
            expect(out).toMatch(/^action=(DUNNO|REJECT [^\n]*|DEFER_IF_PERMIT [^\n]*|421 [^\n]*)\n\n$/);
            const atRcpt = request.attributes.get('protocol_state')?.toUpperCase() === 'RCPT';
            if (atRcpt && action.action === 'DUNNO') expect(checked).toEqual([request.attributes.get('recipient')]);
          }
        }
      }),
      params,
    );
  });
});
