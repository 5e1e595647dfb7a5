// sameMailbox: the domain in any case, the local part as written (keys are case-sensitive).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mailboxOf, sameMailbox } from '../../../src/address/mailbox.js';

describe('sameMailbox', () => {
  it('takes the domain in any case and the local part only as written', () => {
    expect(sameMailbox('incoming+Key@Example.COM', 'incoming+Key@example.com')).toBe(true);
    expect(sameMailbox('incoming+Key@example.com', 'incoming+key@example.com')).toBe(false);
    expect(sameMailbox('a@b@c.org', 'a@b@C.org')).toBe(true);
    expect(sameMailbox('a@b@c.org', 'a@B@c.org')).toBe(false);
    expect(mailboxOf('postmaster')).toBe('postmaster');
  });

  it('property: the same mailbox exactly when the local parts are equal and the domains equal in lower case', () => {
    const part = fc.string({ unit: fc.constantFrom(...'aAbB+-.@xX'.split('')), maxLength: 6 });
    fc.assert(
      fc.property(part, part, part, part, (l1, d1, l2, d2) => {
        const a = `${l1}@${d1.replace(/@/g, '')}`;
        const b = `${l2}@${d2.replace(/@/g, '')}`;
        expect(sameMailbox(a, b)).toBe(l1 === l2 && d1.replace(/@/g, '').toLowerCase() === d2.replace(/@/g, '').toLowerCase());
        expect(sameMailbox(a, a.slice(0, a.lastIndexOf('@') + 1) + a.slice(a.lastIndexOf('@') + 1).toUpperCase())).toBe(true);
      }),
      { seed: Number(process.env.FC_SEED ?? 20261127), numRuns: 500 },
    );
  });
});
