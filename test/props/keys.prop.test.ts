// Property tests for the key forms: minted keys read back, fullPathSlug's shape, and parseKey against
// GitLab's regexes taken literally. The seed is fixed and printed on failure; set FC_SEED to explore.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  fullPathSlug,
  issueNoteKey,
  newIssueKey,
  newMergeRequestKey,
  parseKey,
  serviceDeskAliasKey,
  serviceDeskKey,
  unsubscribeKey,
  type KeyForm,
} from '../../src/address/keys.js';
import { mintReplyKey, parseReplyKey } from '../../src/address/reply-key.js';

const seed = Number(process.env.FC_SEED ?? 20261125);
const params = { seed, numRuns: 500 };

const pathChar = fc.constantFrom(...Array.from('abcxyzABCXYZ0129/._-+ %éÄ😀\u212A'));
const anyPath = fc.oneof(fc.string({ unit: pathChar, maxLength: 90 }), fc.string({ maxLength: 90 }), fc.string({ unit: 'grapheme', maxLength: 40 }));
// GitLab mints `-<id>-…` for a path whose slug is empty, and its own `.+` slug cannot read that back; we refuse to mint it.
const mintablePath = anyPath.filter((path) => fullPathSlug(path) !== '');
const id = fc.maxSafeNat();
const token = fc.stringMatching(/^[a-z0-9_]{1,40}$/);
// Dashed tokens round-trip unless they hold `-<digits>-` (or start `<digits>-`) before another character:
// GitLab's greedy slug then splits there instead.
const dashedToken = fc.stringMatching(/^[a-z0-9_-]{1,24}$/);
const splitsEarly = (t: string) => /(?:^|-)\d+-./.test(t);
const glimtToken = fc.stringMatching(/^[0-9a-z]{1,25}$/).map((b36) => `glimt-${b36}`);
const replyKey = fc.oneof(
  fc.stringMatching(/^[0-9a-f]{32}$/),
  fc
    .tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 36 ** 4 - 1 }), fc.integer({ min: 0, max: 2 ** 48 }))
    .map(([bytes, partition, namespace]) => mintReplyKey(partition, namespace, Buffer.from(bytes))),
);

const byId = (path: string, projectId: number) => ({ by: 'id', slug: fullPathSlug(path), id: projectId }) as const;

describe('minted keys read back', () => {
  it('newIssueKey', () => {
    fc.assert(
      fc.property(mintablePath, id, token, (path, projectId, tok) => {
        expect(parseKey(newIssueKey(path, projectId, tok))).toContainEqual({ handler: 'new_issue', project: byId(path, projectId), token: tok });
      }),
      params,
    );
  });

  it('issueNoteKey', () => {
    fc.assert(
      fc.property(mintablePath, id, token, id, (path, projectId, tok, iid) => {
        expect(parseKey(issueNoteKey(path, projectId, tok, iid))).toContainEqual({ handler: 'issue_note', project: byId(path, projectId), token: tok, issueIid: iid });
      }),
      params,
    );
  });

  it('newMergeRequestKey', () => {
    fc.assert(
      fc.property(mintablePath, id, token, (path, projectId, tok) => {
        expect(parseKey(newMergeRequestKey(path, projectId, tok))).toContainEqual({ handler: 'new_merge_request', project: byId(path, projectId), token: tok });
      }),
      params,
    );
  });

  it('serviceDeskKey', () => {
    fc.assert(
      fc.property(mintablePath, id, (path, projectId) => {
        expect(parseKey(serviceDeskKey(path, projectId))).toContainEqual({ handler: 'service_desk', project: byId(path, projectId) });
      }),
      params,
    );
  });

  it('serviceDeskAliasKey', () => {
    fc.assert(
      fc.property(mintablePath, fc.stringMatching(/^[a-z0-9_]{1,255}$/), (path, key) => {
        expect(parseKey(serviceDeskAliasKey(path, key))).toContainEqual({
          handler: 'service_desk',
          project: { by: 'service_desk_key', slug: fullPathSlug(path), serviceDeskKey: key },
        });
      }),
      params,
    );
  });

  it('unsubscribeKey', () => {
    fc.assert(
      fc.property(replyKey, (key) => {
        expect(parseKey(unsubscribeKey(key))).toContainEqual({ handler: 'unsubscribe', replyKey: parseReplyKey(key), legacy: false });
      }),
      params,
    );
  });

  it('GitLab-style glimt- tokens always read back', () => {
    fc.assert(
      fc.property(mintablePath, id, glimtToken, (path, projectId, tok) => {
        expect(parseKey(newIssueKey(path, projectId, tok))[0]).toEqual({ handler: 'new_issue', project: byId(path, projectId), token: tok });
      }),
      params,
    );
  });

  it('a dashed token is minted, and reads back, exactly when no `-<digits>-` split precedes its end', () => {
    fc.assert(
      fc.property(mintablePath, id, dashedToken, (path, projectId, tok) => {
        if (splitsEarly(tok)) {
          expect(() => newIssueKey(path, projectId, tok)).toThrow(RangeError);
          expect(() => newMergeRequestKey(path, projectId, tok)).toThrow(RangeError);
        } else {
          expect(parseKey(newIssueKey(path, projectId, tok))[0]).toEqual({ handler: 'new_issue', project: byId(path, projectId), token: tok });
          expect(parseKey(newMergeRequestKey(path, projectId, tok))[0]).toEqual({ handler: 'new_merge_request', project: byId(path, projectId), token: tok });
        }
      }),
      params,
    );
  });

  it('slug-based minting refuses exactly the paths whose slug is empty', () => {
    fc.assert(
      fc.property(anyPath, id, (path, projectId) => {
        if (fullPathSlug(path) === '') expect(() => serviceDeskKey(path, projectId)).toThrow(RangeError);
        else expect(serviceDeskKey(path, projectId)).toBe(`${fullPathSlug(path)}-${projectId}-issue-`);
      }),
      params,
    );
  });
});

describe('fullPathSlug properties', () => {
  it('is idempotent, at most 63 characters and shaped like a slug', () => {
    fc.assert(
      fc.property(fc.oneof(anyPath, fc.string({ unit: 'binary', maxLength: 200 })), (path) => {
        const slug = fullPathSlug(path);
        expect(fullPathSlug(slug)).toBe(slug);
        expect(slug.length).toBeLessThanOrEqual(63);
        expect(slug).toMatch(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$|^$/);
      }),
      params,
    );
  });
});

// GitLab's matchers, transcribed literally (Ruby's `.` is `[^\n]`, `\z` is an unflagged `$`). V8 backtracks these
// just as Onigmo does, so they give the same captures; only short keys go through them, where backtracking is cheap.
const DOT = '[^\\n]';
const BASE = `(?<slug>${DOT}+)-(?<id>\\d+)`;
const GITLAB = {
  issue: new RegExp(`^${BASE}-(?<token>${DOT}+)-issue$`),
  issueLegacy: new RegExp(`^(?<path>[^+]*)\\+(?<token>${DOT}*)$`),
  note: new RegExp(`^${BASE}-(?<token>${DOT}+)-issue-(?<iid>\\d+)$`),
  mr: new RegExp(`^${BASE}-(?<token>${DOT}+)-merge-request$`),
  mrLegacy: new RegExp(`^(?<path>[^+]*)\\+merge-request\\+(?<token>${DOT}*)`),
  sd: new RegExp(`^${BASE}-issue-$`),
  sdLegacy: /^(?<path>[^+]*)$/,
  alias: new RegExp(`^(?<slug>${DOT}+)-(?<key>[a-z0-9_]+)$`),
};

function gitlabReadings(key: string): KeyForm[] {
  const out: KeyForm[] = [];
  const g = (m: RegExpExecArray | null, name: string) => m?.groups?.[name] as string;
  const idRef = (m: RegExpExecArray) => ({ by: 'id', slug: g(m, 'slug'), id: Number(g(m, 'id')) }) as const;
  const safe = (...ns: number[]) => ns.every((n) => Number.isSafeInteger(n));
  const slash = key.includes('/');

  const reply = parseReplyKey(key);
  if (reply) out.push({ handler: 'reply', replyKey: reply });
  let m = slash ? null : GITLAB.issue.exec(key);
  if (m && safe(idRef(m).id)) out.push({ handler: 'new_issue', project: idRef(m), token: g(m, 'token') });
  m = GITLAB.issueLegacy.exec(key);
  if (m && !g(m, 'token').includes('+') && !key.includes('+unsubscribe')) out.push({ handler: 'new_issue', project: { by: 'path', path: g(m, 'path') }, token: g(m, 'token') });
  m = GITLAB.note.exec(key);
  if (m && safe(idRef(m).id, Number(g(m, 'iid')))) out.push({ handler: 'issue_note', project: idRef(m), token: g(m, 'token'), issueIid: Number(g(m, 'iid')) });
  for (const [suffix, legacy] of [['-unsubscribe', false], ['+unsubscribe', true]] as const) {
    const r = key.endsWith(suffix) ? parseReplyKey(key.slice(0, -suffix.length)) : null;
    if (r) out.push({ handler: 'unsubscribe', replyKey: r, legacy });
  }
  m = slash ? null : GITLAB.mr.exec(key);
  if (m && safe(idRef(m).id)) out.push({ handler: 'new_merge_request', project: idRef(m), token: g(m, 'token') });
  m = GITLAB.mrLegacy.exec(key);
  // Our one deliberate difference: GitLab's unanchored legacy MR regex would ignore whatever follows a newline.
  if (m && m[0] === key) out.push({ handler: 'new_merge_request', project: { by: 'path', path: g(m, 'path') }, token: g(m, 'token') });
  m = slash ? null : GITLAB.sd.exec(key);
  if (m && safe(idRef(m).id)) out.push({ handler: 'service_desk', project: idRef(m) });
  m = GITLAB.sdLegacy.exec(key);
  if (m && g(m, 'path').includes('/') && !key.includes('+')) out.push({ handler: 'service_desk', project: { by: 'path', path: g(m, 'path') } });
  m = GITLAB.alias.exec(key);
  if (m && g(m, 'key').length <= 255) out.push({ handler: 'service_desk', project: { by: 'service_desk_key', slug: g(m, 'slug'), serviceDeskKey: g(m, 'key') } });
  return out;
}

const HEX = '59d8df8370b7e95c5a49fbf86aeb2c93';
const keyPiece = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...Array.from('ab09_-+/\nA.%')) },
  { weight: 1, arbitrary: fc.constantFrom('-issue', '-issue-', '-merge-request', '+merge-request+', '-unsubscribe', '+unsubscribe', HEX, '1-0123456789abcdefghijklmno', '-42-', '12345678901234567') },
);
const noise = fc.array(keyPiece, { maxLength: 10 }).map((pieces) => pieces.join(''));
// Noise alone seldom lines up `<slug>-<id>-<token><suffix>`, so most keys are built in that shape with noise in the parts.
const fragment = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[a-z0-9_-]{1,8}$/) },
  { weight: 1, arbitrary: fc.array(keyPiece, { maxLength: 3 }).map((pieces) => pieces.join('')) },
);
const digits = fc.stringMatching(/^[0-9]{1,3}$/);
const shaped = fc
  .tuple(
    fragment,
    fc.constantFrom('-', '-', '/', '+'),
    fc.oneof(digits, fragment),
    fc.constantFrom('-', '-', '+'),
    fragment,
    fc.constantFrom('-issue', '-issue-', '-merge-request', '-unsubscribe', '+unsubscribe', '+merge-request+', ''),
    fc.oneof(fc.constant(''), digits, fragment),
  )
  .map((parts) => parts.join(''));
const replyish = fc
  .tuple(fc.oneof(replyKey, fragment), fc.constantFrom('-unsubscribe', '+unsubscribe', '', '-x', '-unsubscribe-unsubscribe'))
  .map((parts) => parts.join(''));
const current = fc
  .tuple(fragment, digits, fragment, fc.constantFrom('issue', 'merge-request', 'issue-7', 'issue-00', 'issue-9007199254740993'), fc.boolean())
  .map(([slug, id, tok, suffix, serviceDesk]) => (serviceDesk ? `${slug}-${id}-issue-` : `${slug}-${id}-${tok}-${suffix}`));
const keyish = fc.oneof(
  { weight: 1, arbitrary: noise },
  { weight: 3, arbitrary: shaped },
  { weight: 2, arbitrary: current },
  { weight: 1, arbitrary: replyish },
);

describe('parseKey properties', () => {
  it('agrees with GitLab\'s regexes, reading for reading and in order', () => {
    fc.assert(
      fc.property(keyish, (key) => {
        expect(parseKey(key)).toEqual(gitlabReadings(key));
      }),
      { seed, numRuns: 3000 },
    );
  });

  it('never throws on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), keyish), (key) => {
        expect(Array.isArray(parseKey(key))).toBe(true);
      }),
      params,
    );
  });

  it('never throws, and answers fast, on 5,000-character strings', () => {
    const long = fc.oneof(
      fc.string({ minLength: 4000, maxLength: 5000 }),
      fc.array(keyPiece, { minLength: 1000, maxLength: 1200 }).map((pieces) => pieces.join('').slice(0, 5000)),
    );
    fc.assert(
      fc.property(long, (key) => {
        const started = performance.now();
        const forms = parseKey(key);
        expect(performance.now() - started).toBeLessThan(50);
        if (key.length > 1000) expect(forms).toEqual([]);
      }),
      { seed, numRuns: 100 },
    );
  });
});
