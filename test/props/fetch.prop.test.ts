// Property tests for what the IMAP fetcher reads from untrusted messages and folder names: the
// Return-Path scan (src/fetch/return-path.ts) and the message's IMAP URL (src/fetch/imap-url.ts).
// The seed is fixed and printed on failure; set FC_SEED to explore other inputs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { imapMessageUrl } from '../../src/fetch/imap-url.js';
import { returnPathOf } from '../../src/fetch/return-path.js';

const seed = Number(process.env.FC_SEED ?? 20261128);
const params = { seed, numRuns: 1000 };

const atom = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,20}$/);
const address = fc.tuple(atom, fc.stringMatching(/^[a-z0-9-]{1,12}(\.[a-z]{2,6}){1,2}$/)).map(([local, domain]) => `${local}@${domain}`);
const fieldName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/).filter((name) => name.toLowerCase() !== 'return-path');
const field = fc.tuple(fieldName, fc.stringMatching(/^[ -~]{0,60}$/)).map(([name, value]) => `${name}: ${value}`);
const newline = fc.constantFrom('\r\n', '\n');

describe('returnPathOf', () => {
  it('never throws, and is null, empty, or one word without blanks or brackets, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        const found = returnPathOf(Buffer.from(bytes));
        expect(found === null || !/[\s<>]/.test(found)).toBe(true);
      }),
      params,
    );
  });

  it('finds the address of a Return-Path field among any other fields before it, and of the first one only', () => {
    fc.assert(
      fc.property(fc.array(field, { maxLength: 8 }), fc.oneof(address, fc.constant('')), address, newline, fc.array(field, { maxLength: 8 }), (before, sender, other, nl, after) => {
        const header = [...before, `Return-Path: <${sender}>`, ...after, `Return-Path: <${other}>`].join(nl);
        expect(returnPathOf(Buffer.from(`${header}${nl}${nl}body`))).toBe(sender);
      }),
      params,
    );
  });

  it('never reads one from the body', () => {
    fc.assert(
      fc.property(fc.array(field, { maxLength: 8 }), address, newline, (fields, sender, nl) => {
        const raw = `${[...fields, 'Subject: x'].join(nl)}${nl}${nl}Return-Path: <${sender}>${nl}`;
        expect(returnPathOf(Buffer.from(raw))).toBeNull();
      }),
      params,
    );
  });
});

describe('imapMessageUrl', () => {
  const place = fc.record({
    user: fc.string({ maxLength: 30 }),
    host: fc.stringMatching(/^[a-z0-9.-]{1,30}$/),
    port: fc.integer({ min: 1, max: 65535 }),
    mailbox: fc.string({ minLength: 1, maxLength: 40 }),
    uidValidity: fc.bigInt({ min: 1n, max: 4294967295n }),
    uid: fc.integer({ min: 1, max: 4294967295 }),
  });

  it('is one URL per message: two places differ in their URLs, and the URL holds no blank, and its UIDs read back', () => {
    fc.assert(
      fc.property(place, place, (a, b) => {
        const [ua, ub] = [imapMessageUrl(a), imapMessageUrl(b)];
        const same = a.user === b.user && a.host === b.host && a.port === b.port && a.mailbox === b.mailbox && a.uidValidity === b.uidValidity && a.uid === b.uid;
        expect(ua === ub).toBe(same);
        expect(ua).not.toMatch(/\s/);
        expect(ua).toMatch(new RegExp(`;UIDVALIDITY=${a.uidValidity}/;UID=${a.uid}$`));
      }),
      params,
    );
  });
});
