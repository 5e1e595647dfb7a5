import { describe, expect, it } from 'vitest';
import {
  fullPathSlug,
  issueNoteKey,
  MAX_KEY_LENGTH,
  newIssueKey,
  newMergeRequestKey,
  parseKey,
  serviceDeskAliasKey,
  serviceDeskKey,
  unsubscribeKey,
  type KeyForm,
} from '../../../src/address/keys.js';

const HEX = '59d8df8370b7e95c5a49fbf86aeb2c93';
const PART = '1-0123456789abcdefghijklmno-2s';
const legacyReply = { form: 'legacy', key: HEX } as const;
const partitioned = { form: 'partitioned', key: PART, partition: '1', replyKey: '0123456789abcdefghijklmno', namespaceId: '2s' } as const;

const byId = (slug: string, id: number) => ({ by: 'id', slug, id }) as const;
const byPath = (path: string) => ({ by: 'path', path }) as const;
const alias = (slug: string, serviceDeskKey: string): KeyForm => ({ handler: 'service_desk', project: { by: 'service_desk_key', slug, serviceDeskKey } });

describe('parseKey: GitLab fixture keys', () => {
  it.each<[string, KeyForm[]]>([
    [HEX, [{ handler: 'reply', replyKey: legacyReply }]],
    [PART, [{ handler: 'reply', replyKey: partitioned }, alias('1-0123456789abcdefghijklmno', '2s')]],
    [`${HEX}-unsubscribe`, [{ handler: 'unsubscribe', replyKey: legacyReply, legacy: false }, alias(HEX, 'unsubscribe')]],
    [`${HEX}+unsubscribe`, [{ handler: 'unsubscribe', replyKey: legacyReply, legacy: true }]],
    [`${PART}-unsubscribe`, [{ handler: 'unsubscribe', replyKey: partitioned, legacy: false }, alias(PART, 'unsubscribe')]],
    [
      'gitlabhq-gitlabhq-1-auth_token-issue',
      [{ handler: 'new_issue', project: byId('gitlabhq-gitlabhq', 1), token: 'auth_token' }, alias('gitlabhq-gitlabhq-1-auth_token', 'issue')],
    ],
    ['gitlabhq/gitlabhq+auth_token', [{ handler: 'new_issue', project: byPath('gitlabhq/gitlabhq'), token: 'auth_token' }]],
    [
      'gitlabhq-gitlabhq-1-auth_token-issue-5',
      [{ handler: 'issue_note', project: byId('gitlabhq-gitlabhq', 1), token: 'auth_token', issueIid: 5 }, alias('gitlabhq-gitlabhq-1-auth_token-issue', '5')],
    ],
    [
      'gitlabhq-gitlabhq-1-auth_token-merge-request',
      [{ handler: 'new_merge_request', project: byId('gitlabhq-gitlabhq', 1), token: 'auth_token' }, alias('gitlabhq-gitlabhq-1-auth_token-merge', 'request')],
    ],
    ['gitlabhq/gitlabhq+merge-request+auth_token', [{ handler: 'new_merge_request', project: byPath('gitlabhq/gitlabhq'), token: 'auth_token' }]],
    ['email-test-1-issue-', [{ handler: 'service_desk', project: byId('email-test', 1) }]],
    ['email/test', [{ handler: 'service_desk', project: byPath('email/test') }]],
    ['email-test-mykey', [alias('email-test', 'mykey')]],
    // The gem's own identifier spec: a glimt-style token and GitLab's documented examples.
    [
      'gitlab-org-gitlab-ce-20-Author_Token12345678-issue',
      [{ handler: 'new_issue', project: byId('gitlab-org-gitlab-ce', 20), token: 'Author_Token12345678' }, alias('gitlab-org-gitlab-ce-20-Author_Token12345678', 'issue')],
    ],
    ['gitlab-org/gitlab-ce+Author_Token+extra', []],
  ])('%j', (key, expected) => {
    expect(parseKey(key)).toEqual(expected);
  });
});

describe('parseKey: greedy captures as in GitLab', () => {
  it('keeps a dashed token whole when no "-<digits>-" follows the id', () => {
    expect(parseKey('my-group-my-project-42-glimt-3f9xk-issue')[0]).toEqual({
      handler: 'new_issue',
      project: byId('my-group-my-project', 42),
      token: 'glimt-3f9xk',
    });
  });

  it('moves the slug split right when the token itself holds "-<digits>-", as GitLab does', () => {
    expect(parseKey('foo-5-tok-7-x-issue')[0]).toEqual({ handler: 'new_issue', project: byId('foo-5-tok', 7), token: 'x' });
    expect(parseKey('foo-5-12-x-issue')[0]).toEqual({ handler: 'new_issue', project: byId('foo-5', 12), token: 'x' });
  });

  it('lets slugs hold digits and reads ids like Ruby to_i', () => {
    expect(parseKey('123-007-t-issue')[0]).toEqual({ handler: 'new_issue', project: byId('123', 7), token: 't' });
  });

  it('lists a new_issue reading before the service desk alias reading of the same key', () => {
    expect(parseKey('foo-5-tok-issue').map((f) => f.handler)).toEqual(['new_issue', 'service_desk']);
    expect(parseKey('foo-5-tok-issue')[1]).toEqual(alias('foo-5-tok', 'issue'));
  });

  it('lists the current reading before the legacy one when one handler has both', () => {
    expect(parseKey('a-1-b+c-issue')).toEqual([
      { handler: 'new_issue', project: byId('a', 1), token: 'b+c' },
      { handler: 'new_issue', project: byPath('a-1-b'), token: 'c-issue' },
      alias('a-1-b+c', 'issue'),
    ]);
  });

  it('reads a token ending in "-issue-<n>" for a note, not a token ending in "-issue"', () => {
    expect(parseKey('p-1-t-issue-issue-5')[0]).toEqual({ handler: 'issue_note', project: byId('p', 1), token: 't-issue', issueIid: 5 });
  });

  it('does not skip "/" for notes on issues, but does for new issues, new MRs and Service Desk', () => {
    expect(parseKey('a/b-1-t-issue-5')[0]).toEqual({ handler: 'issue_note', project: byId('a/b', 1), token: 't', issueIid: 5 });
    expect(parseKey('a/b-1-t-issue').map((f) => f.handler)).toEqual(['service_desk', 'service_desk']);
    expect(parseKey('a/b-1-t-merge-request')).toEqual([
      { handler: 'service_desk', project: byPath('a/b-1-t-merge-request') },
      alias('a/b-1-t-merge', 'request'),
    ]);
    expect(parseKey('a/b-1-issue-')).toEqual([{ handler: 'service_desk', project: byPath('a/b-1-issue-') }]);
  });

  it('reads both a legacy Service Desk path and an alias from "group/my-project"', () => {
    expect(parseKey('group/my-project')).toEqual([{ handler: 'service_desk', project: byPath('group/my-project') }, alias('group/my', 'project')]);
  });

  it('refuses legacy new-issue readings when the key holds "+unsubscribe" anywhere', () => {
    expect(parseKey('a/b+unsubscribe')).toEqual([]);
    expect(parseKey('a/b+unsubscribed')).toEqual([]);
    expect(parseKey('a/b+unsub')).toEqual([{ handler: 'new_issue', project: byPath('a/b'), token: 'unsub' }]);
  });

  it('lets a legacy MR token hold "+" and "-"', () => {
    expect(parseKey('a/b+merge-request+tok+x-y')).toEqual([
      { handler: 'new_merge_request', project: byPath('a/b'), token: 'tok+x-y' },
      alias('a/b+merge-request+tok+x', 'y'),
    ]);
  });

  it('keeps the empty captures GitLab keeps', () => {
    expect(parseKey('+')).toEqual([{ handler: 'new_issue', project: byPath(''), token: '' }]);
    expect(parseKey('a/b+merge-request+')).toEqual([{ handler: 'new_merge_request', project: byPath('a/b'), token: '' }]);
  });

  it('refuses a legacy MR key with a newline after the token instead of cutting the token there', () => {
    expect(parseKey('a/b+merge-request+tok\njunk')).toEqual([]);
  });

  it('treats "\\n" as Ruby\'s `.` does: no slug, token or alias slug may hold one', () => {
    expect(parseKey('fo\no-1-t-issue')).toEqual([]);
    expect(parseKey('foo-1-t\n-issue')).toEqual([]);
    expect(parseKey('a/\nb')).toEqual([{ handler: 'service_desk', project: byPath('a/\nb') }]);
  });

  it('drops id readings too large to hold exactly', () => {
    expect(parseKey('foo-9007199254740993-tok-issue')).toEqual([alias('foo-9007199254740993-tok', 'issue')]);
    expect(parseKey('foo-1-tok-issue-99999999999999999999')).toEqual([alias('foo-1-tok-issue', '99999999999999999999')]);
    expect(parseKey('foo-9007199254740991-issue-')).toEqual([{ handler: 'service_desk', project: byId('foo', 9007199254740991) }]);
  });
});

describe('parseKey: near misses', () => {
  it.each<[string, string, KeyForm[]]>([
    ['upper-case hex', HEX.toUpperCase(), []],
    ['upper-case hex unsubscribe', `${HEX.toUpperCase()}-unsubscribe`, [alias(HEX.toUpperCase(), 'unsubscribe')]],
    ['31 hex', HEX.slice(1), []],
    ['hex with a trailing dot', `${HEX}.`, []],
    ['issue key with a trailing dot', 'gitlabhq-gitlabhq-1-auth_token-issue.', []],
    ['issue key with an extra suffix', 'gitlabhq-gitlabhq-1-auth_token-issues', [alias('gitlabhq-gitlabhq-1-auth_token', 'issues')]],
    ['Issue in upper case', 'gitlabhq-gitlabhq-1-auth_token-Issue', []],
    ['unsubscribe in upper case', `${HEX}-Unsubscribe`, []],
    ['unsubscribe without a reply key', 'abc-unsubscribe', [alias('abc', 'unsubscribe')]],
    ['double unsubscribe', `${HEX}-unsubscribe-unsubscribe`, [alias(`${HEX}-unsubscribe`, 'unsubscribe')]],
    ['service desk without its trailing hyphen', 'email-test-1-issue', [alias('email-test-1', 'issue')]],
    ['service desk without an id', 'email-test-issue-', []],
    ['empty slug', '-1-tok-issue', [alias('-1-tok', 'issue')]],
    ['empty token', 'foo-1--issue', [alias('foo-1-', 'issue')]],
    ['percent sign', 'foo%-1-tok-issue', [{ handler: 'new_issue', project: byId('foo%', 1), token: 'tok' }, alias('foo%-1-tok', 'issue')]],
    ['percent in the alias key', 'email-test-my%key', []],
    ['double quotes', '"foo"', []],
    ['quoted issue key', '"foo-1-tok-issue"', []],
    ['single quote in a legacy path', "o'brien/app", [{ handler: 'service_desk', project: byPath("o'brien/app") }]],
    ['legacy path with "+" has no service desk reading', 'email/test+', [{ handler: 'new_issue', project: byPath('email/test'), token: '' }]],
    ['a bare word', 'support', []],
    ['empty string', '', []],
    ['a lone hyphen', '-', []],
    ['upper-case alias key', 'email-test-MyKey', []],
  ])('%s', (_name, key, expected) => {
    expect(parseKey(key)).toEqual(expected);
  });

  it('reads 300-character keys in full', () => {
    const slug = 'a'.repeat(280);
    expect(parseKey(`${slug}-1-tok-issue`)[0]).toEqual({ handler: 'new_issue', project: byId(slug, 1), token: 'tok' });
    expect(parseKey('x'.repeat(300))).toEqual([]);
    expect(parseKey(`${'g/'.repeat(150)}`)).toEqual([{ handler: 'service_desk', project: byPath('g/'.repeat(150)) }]);
  });

  it('caps the alias key at 255 characters', () => {
    expect(parseKey(`s-${'k'.repeat(255)}`)).toEqual([alias('s', 'k'.repeat(255))]);
    expect(parseKey(`s-${'k'.repeat(256)}`)).toEqual([]);
  });

  it(`reads nothing from keys over ${MAX_KEY_LENGTH} characters`, () => {
    const atLimit = `${'a'.repeat(MAX_KEY_LENGTH - 8)}-1-t-issue`.slice(-MAX_KEY_LENGTH);
    expect(atLimit).toHaveLength(MAX_KEY_LENGTH);
    expect(parseKey(atLimit)[0]?.handler).toBe('new_issue');
    expect(parseKey(`a${atLimit}`)).toEqual([]);
  });

  it('answers pathological keys quickly', () => {
    const keys = [
      '-1'.repeat(500),
      `${'1-'.repeat(497)}-issue`,
      `${'a-1-'.repeat(248)}-issue-1`,
      `${'-'.repeat(993)}-issue-`,
      `${'+'.repeat(998)}-x`,
      `${'9'.repeat(993)}-issue`,
      'a'.repeat(5000),
    ];
    const started = performance.now();
    for (let i = 0; i < 20; i += 1) for (const key of keys) parseKey(key);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('never throws on non-string input from untyped callers', () => {
    expect(parseKey(undefined as unknown as string)).toEqual([]);
    expect(parseKey(42 as unknown as string)).toEqual([]);
  });
});

describe('fullPathSlug', () => {
  it.each([
    ['Group/Sub.Group/My_Project', 'group-sub-group-my-project'],
    ['gitlabhq/gitlabhq', 'gitlabhq-gitlabhq'],
    ['email/test', 'email-test'],
    ['/leading/and/trailing/', 'leading-and-trailing'],
    ['__Under__/', 'under'],
    ['..', ''],
    ['', ''],
    ['a--b', 'a--b'],
    ['Ünïcode/ÿ', 'n-code'],
    ['a😀b', 'a-b'],
    ['\u212Aelvin', 'kelvin'],
  ])('%j → %j', (path, slug) => {
    expect(fullPathSlug(path)).toBe(slug);
  });

  it('cuts a 100-character path to 63 characters, then trims the hyphens the cut exposes', () => {
    const path = `${'a'.repeat(60)}/b/${'c'.repeat(37)}`;
    expect(path).toHaveLength(100);
    expect(fullPathSlug(path)).toBe(`${'a'.repeat(60)}-b`);
    const endsOnSeparators = `${'x'.repeat(61)}__${'y'.repeat(37)}`;
    expect(fullPathSlug(endsOnSeparators)).toBe('x'.repeat(61));
  });
});

describe('minting keys', () => {
  it('builds each key in GitLab\'s shape', () => {
    expect(newIssueKey('gitlabhq/gitlabhq', 1, 'auth_token')).toBe('gitlabhq-gitlabhq-1-auth_token-issue');
    expect(issueNoteKey('gitlabhq/gitlabhq', 1, 'auth_token', 5)).toBe('gitlabhq-gitlabhq-1-auth_token-issue-5');
    expect(newMergeRequestKey('gitlabhq/gitlabhq', 1, 'auth_token')).toBe('gitlabhq-gitlabhq-1-auth_token-merge-request');
    expect(serviceDeskKey('email/test', 1)).toBe('email-test-1-issue-');
    expect(serviceDeskAliasKey('email/test', 'mykey')).toBe('email-test-mykey');
    expect(unsubscribeKey(HEX)).toBe(`${HEX}-unsubscribe`);
    expect(unsubscribeKey(PART)).toBe(`${PART}-unsubscribe`);
  });

  it('mints GitLab-style glimt- tokens, which read back', () => {
    expect(newIssueKey('My/Proj', 7, 'glimt-8xk2p0q')).toBe('my-proj-7-glimt-8xk2p0q-issue');
  });

  it.each<[string, () => string]>([
    ['a token holding "-<digits>-"', () => newIssueKey('a/b', 1, 'x-12-y')],
    ['a token starting "<digits>-"', () => newMergeRequestKey('a/b', 1, '12-y')],
    ['a token holding "/"', () => newIssueKey('a/b', 1, 'x/y')],
    ['an empty token', () => newIssueKey('a/b', 1, '')],
    ['a token holding a newline', () => issueNoteKey('a/b', 1, 'x\ny', 2)],
    ['a key over the length cap', () => newIssueKey('a/b', 1, 't'.repeat(MAX_KEY_LENGTH))],
    ['a path with an empty slug', () => serviceDeskKey('__/..', 1)],
    ['a negative id', () => newIssueKey('a/b', -1, 't')],
    ['a fractional iid', () => issueNoteKey('a/b', 1, 't', 1.5)],
    ['an unsafe id', () => serviceDeskKey('a/b', 2 ** 53)],
    ['an upper-case alias key', () => serviceDeskAliasKey('a/b', 'Key')],
    ['a 256-character alias key', () => serviceDeskAliasKey('a/b', 'k'.repeat(256))],
    ['a non-reply key', () => unsubscribeKey('abc')],
  ])('refuses %s', (_name, mint) => {
    expect(mint).toThrow(RangeError);
  });

  it('still mints tokens holding "/" for notes on issues, which GitLab reads with "/"', () => {
    expect(parseKey(issueNoteKey('a/b', 1, 'x/y', 2))[0]).toEqual({ handler: 'issue_note', project: byId('a-b', 1), token: 'x/y', issueIid: 2 });
  });
});
