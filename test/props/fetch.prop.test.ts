// Property tests for what the fetchers read from untrusted messages and folder names: the Return-Path
// scan (src/fetch/return-path.ts), the message's IMAP URL (src/fetch/imap-url.ts), and Graph's folder
// paths, OData strings and message URLs (src/fetch/graph-folder.ts).
// The seed is fixed and printed on failure; set FC_SEED to explore other inputs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { folderPath, graphMessageUrl, odataString, sameFolder } from '../../src/fetch/graph-folder.js';
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

describe('Graph folders and URLs', () => {
  const level = fc.string({ minLength: 1, maxLength: 12 }).filter((l) => !l.includes('/') && l.trim() !== '');

  it('a folder path either names its levels, trimmed, or throws a message naming the setting', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (setting) => {
        try {
          const path = folderPath(setting);
          const levels = setting.split('/').map((l) => l.trim());
          expect(path.names).toEqual(path.root === 'msgfolderroot' ? levels : levels.slice(1));
          // In any case, for letters whose cases map back (not ß, whose upper case is SS).
          if (setting.toUpperCase().toLowerCase() === setting.toLowerCase()) expect(sameFolder(setting, setting.toUpperCase())).toBe(true);
        } catch (error) {
          expect((error as Error).message).toContain(JSON.stringify(setting));
        }
      }),
      params,
    );
  });

  it('an OData string reads back as the value: quoted, and no lone quote inside', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (value) => {
        const literal = odataString(value);
        expect(literal.startsWith("'") && literal.endsWith("'")).toBe(true);
        const inner = literal.slice(1, -1);
        expect(inner.replace(/''/g, '')).not.toContain("'");
        expect(inner.replaceAll("''", "'")).toBe(value);
      }),
      params,
    );
  });

  it('a message URL stays under the endpoint, one path segment for the mailbox and one for the ID', () => {
    fc.assert(
      // Exchange's IDs, base64 in either alphabet (graph-api.ts refuses any other).
      fc.property(level, fc.stringMatching(/^[A-Za-z0-9+/_=-]{1,80}$/), (user, id) => {
        const url = new URL(graphMessageUrl('https://graph.microsoft.com', user, id));
        expect(url.origin).toBe('https://graph.microsoft.com');
        const segments = url.pathname.split('/');
        expect(segments.slice(0, 3)).toEqual(['', 'v1.0', 'users']);
        expect(segments).toHaveLength(6);
        expect(decodeURIComponent(segments[5] as string)).toBe(id);
      }),
      params,
    );
  });
});
