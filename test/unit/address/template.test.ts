import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileTemplate, redactedAddress, TemplateError } from '../../../src/address/template.js';

describe('compileTemplate', () => {
  const t = compileTemplate('incoming+%{key}@Example.com');

  it('takes the key out of a matching address, keeping its case', () => {
    expect(t.match('incoming+AbC-123@example.com')).toEqual({ kind: 'key', key: 'AbC-123' });
  });

  it('compares the domain case-insensitively', () => {
    expect(t.match('incoming+abc@EXAMPLE.COM')).toEqual({ kind: 'key', key: 'abc' });
  });

  it('is greedy, so a key may hold + and -', () => {
    expect(t.match('incoming+group/project+token@example.com')).toEqual({ kind: 'key', key: 'group/project+token' });
  });

  it('tolerates angle brackets around the address', () => {
    expect(t.match('<incoming+abc@example.com>')).toEqual({ kind: 'key', key: 'abc' });
  });

  it('tells a foreign domain from a local address that does not match', () => {
    expect(t.match('incoming+abc@example.com.evil.org')).toEqual({ kind: 'foreign_domain', domain: 'example.com.evil.org' });
    expect(t.match('someone@example.com')).toEqual({ kind: 'no_match' });
    expect(t.match('incoming+@example.com')).toEqual({ kind: 'no_match' });
    expect(t.match('incoming')).toEqual({ kind: 'no_domain' });
  });

  it('takes postmaster, bare or at its domain, in any case, before any key (RFC 5321 §4.5.1): a catch-all template too', () => {
    for (const address of ['postmaster@example.com', 'PostMaster@EXAMPLE.COM', '<postmaster@example.com>', '"postmaster"@example.com', 'Postmaster', '<Postmaster>']) {
      expect(t.match(address), address).toEqual({ kind: 'postmaster' });
      expect(compileTemplate('%{key}@example.com').match(address), address).toEqual({ kind: 'postmaster' });
      expect(compileTemplate('intake@example.com').match(address), address).toEqual({ kind: 'postmaster' });
    }
    // Only its own: postmaster elsewhere is a foreign address, and near misses are no postmaster.
    expect(t.match('postmaster@other.example')).toEqual({ kind: 'foreign_domain', domain: 'other.example' });
    expect(t.match('postmasters@example.com')).toEqual({ kind: 'no_match' });
    expect(t.match('incoming+postmaster@example.com')).toEqual({ kind: 'key', key: 'postmaster' });
    expect(compileTemplate('%{key}@example.com').match('postmaster-x@example.com')).toEqual({ kind: 'key', key: 'postmaster-x' });
  });

  it('knows its mailbox address: the template without the key and its separator', () => {
    expect(t.mailbox).toBe('incoming@Example.com');
    expect(t.match('incoming@example.com')).toEqual({ kind: 'mailbox' });
    expect(compileTemplate('%{key}@example.com').mailbox).toBeNull();
    expect(compileTemplate('reply-%{key}-in@example.com').mailbox).toBe('reply-in@example.com');
  });

  it('takes an internationalised domain in either form, and uses its ASCII form', () => {
    for (const written of ['exämple.com', 'xn--exmple-cua.com', 'XN--EXMPLE-CUA.COM']) {
      const idn = compileTemplate(`incoming+%{key}@${written}`);
      expect(idn.domain).toBe('xn--exmple-cua.com');
      // smtp-server turns an xn-- domain it is sent into Unicode; a client may send either.
      for (const sent of ['exämple.com', 'EXÄMPLE.com', 'xn--exmple-cua.com', 'XN--EXMPLE-CUA.COM']) {
        expect(idn.match(`incoming+abc@${sent}`)).toEqual({ kind: 'key', key: 'abc' });
      }
      expect(idn.match('incoming+abc@example.com')).toEqual({ kind: 'foreign_domain', domain: 'example.com' });
      // An ASCII domain is kept as written; a Unicode one is written in its ASCII form.
      expect(idn.format('abc')).toBe(`incoming+abc@${written === 'exämple.com' ? 'xn--exmple-cua.com' : written}`);
    }
    expect(t.match('incoming+abc@exämple.com')).toEqual({ kind: 'foreign_domain', domain: 'exämple.com' });
  });

  it('unquotes a quoted local part: the same mailbox (RFC 5321 §4.1.2)', () => {
    expect(t.match('"incoming+abc"@example.com')).toEqual({ kind: 'key', key: 'abc' });
    expect(t.match('<"incoming+a\\"b"@example.com>')).toEqual({ kind: 'key', key: 'a"b' });
    expect(t.match('"incoming"@example.com')).toEqual({ kind: 'mailbox' });
    expect(t.match('"a@b"@example.com')).toEqual({ kind: 'no_match' });
  });

  it('formats a key into an address', () => {
    expect(t.format('1-abc-2')).toBe('incoming+1-abc-2@Example.com');
  });

  it('accepts a template without %{key}: only the mailbox itself matches', () => {
    const plain = compileTemplate('support@example.com');
    expect(plain.hasKey).toBe(false);
    expect(plain.match('Support@Example.com')).toEqual({ kind: 'mailbox' });
    expect(plain.match('support+abc@example.com')).toEqual({ kind: 'no_match' });
    expect(() => plain.format('abc')).toThrow(TemplateError);
  });

  it.each([
    ['incoming+%{key}', 'address template must look like local@domain'],
    ['incoming@%{key}.example.com', '%{key} must be in the local part, not the domain'],
    ['%{key}+%{key}@example.com', '%{key} may appear only once'],
    ['in coming+%{key}@example.com', 'must not contain spaces'],
    ['incoming+%{key}@exa_mple.com', 'is not a valid domain name'],
    ['incoming+%{key}@exä_mple.com', '"exä_mple.com" is not a valid domain name'],
    // Its mailbox would be postmaster's: kept for a person, never routed.
    ['postmaster+%{key}@example.com', "its mailbox address postmaster@example.com is postmaster's (RFC 5321 §4.5.1)"],
    ['PostMaster-%{key}@example.com', "its mailbox address PostMaster@example.com is postmaster's"],
    ['postmaster@example.com', "its mailbox address postmaster@example.com is postmaster's"],
    ['post%{key}master@example.com', "its mailbox address postmaster@example.com is postmaster's"],
  ])('refuses the invalid template %s', (template, message) => {
    expect(() => compileTemplate(template)).toThrow(message);
  });

  it('takes a template whose keyed addresses start with postmaster but whose mailbox is another', () => {
    const t = compileTemplate('postmaster-in+%{key}@example.com');
    expect(t.mailbox).toBe('postmaster-in@example.com');
    expect(t.match('postmaster-in+abc@example.com')).toEqual({ kind: 'key', key: 'abc' });
    expect(t.match('postmaster@example.com')).toEqual({ kind: 'postmaster' });
  });
});

describe('redactedAddress', () => {
  const t = compileTemplate('incoming+%{key}@example.com');

  it('keeps four characters of a key, and other addresses whole', () => {
    expect(redactedAddress(t, 'incoming+acme-widgets-1-glimt-s3cr3ttoken-issue@Example.com')).toBe('incoming+acme…@example.com');
    expect(redactedAddress(t, 'someone@elsewhere.example')).toBe('someone@elsewhere.example');
    expect(redactedAddress(t, 'incoming@example.com')).toBe('incoming@example.com');
    expect(redactedAddress(t, 'postmaster')).toBe('postmaster');
  });

  it('property: a key longer than four characters never appears in what is logged', () => {
    fc.assert(
      // Keys as minted: with a digit (a word such as "ample" would be found in the address's own text).
      fc.property(fc.stringMatching(/^[A-Za-z_-]{0,30}[0-9][A-Za-z0-9_-]{4,30}$/), (key) => !redactedAddress(t, t.format(key)).includes(key)),
      { seed: Number(process.env.FC_SEED ?? 20261126), numRuns: 300 },
    );
  });
});
