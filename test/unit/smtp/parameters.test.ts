// Which MAIL FROM and RCPT TO parameters intake takes: those of the extensions it advertises.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { declaredSize, MAIL_PARAMETERS, RCPT_PARAMETERS, undeclaredUtf8, unsupportedParameter } from '../../../src/smtp/parameters.js';

describe('unsupportedParameter', () => {
  it('takes SIZE, BODY and SMTPUTF8 on MAIL FROM, and nothing else', () => {
    expect(unsupportedParameter(false, MAIL_PARAMETERS)).toBeNull();
    expect(unsupportedParameter({ SIZE: '100', BODY: '8BITMIME', SMTPUTF8: true }, MAIL_PARAMETERS)).toBeNull();
    expect(unsupportedParameter({ SIZE: '100', FOO: 'bar' }, MAIL_PARAMETERS)).toBe('FOO');
    // DSN is not advertised: its parameters are as unknown as any other.
    expect(unsupportedParameter({ RET: 'HDRS' }, MAIL_PARAMETERS)).toBe('RET');
    expect(unsupportedParameter({ ENVID: 'x' }, MAIL_PARAMETERS)).toBe('ENVID');
    expect(unsupportedParameter({ AUTH: '<>' }, MAIL_PARAMETERS)).toBe('AUTH');
  });

  it('takes nothing on RCPT TO', () => {
    expect(unsupportedParameter(false, RCPT_PARAMETERS)).toBeNull();
    expect(unsupportedParameter({}, RCPT_PARAMETERS)).toBeNull();
    expect(unsupportedParameter({ NOTIFY: 'NEVER' }, RCPT_PARAMETERS)).toBe('NOTIFY');
    expect(unsupportedParameter({ ORCPT: 'rfc822;a@b.test' }, RCPT_PARAMETERS)).toBe('ORCPT');
  });

  it('cuts a long name for the reply line', () => {
    expect(unsupportedParameter({ ['X'.repeat(500)]: true }, MAIL_PARAMETERS)).toBe(`${'X'.repeat(40)}...`);
  });

  it('property: null exactly when every name is allowed; otherwise the first one that is not, at most 43 characters', () => {
    const name = fc.oneof(fc.constantFrom('SIZE', 'BODY', 'SMTPUTF8', 'RET', 'NOTIFY'), fc.string({ minLength: 1, maxLength: 80 }).map((s) => s.toUpperCase()));
    fc.assert(
      fc.property(fc.uniqueArray(name, { maxLength: 6 }), fc.constantFrom(MAIL_PARAMETERS, RCPT_PARAMETERS), (names, allowed) => {
        const args = Object.fromEntries(names.map((n) => [n, true]));
        const result = unsupportedParameter(names.length ? args : false, allowed);
        const first = Object.keys(args).find((n) => !allowed.has(n));
        if (first === undefined) return result === null;
        return result !== null && result.length <= 43 && first.startsWith(result.replace(/\.\.\.$/, ''));
      }),
      { seed: Number(process.env.FC_SEED ?? 20261126), numRuns: 500 },
    );
  });
});

describe('declaredSize', () => {
  it('is the SIZE= of MAIL FROM in bytes, or 0 when none is declared', () => {
    expect(declaredSize({ SIZE: '2048', BODY: '8BITMIME' })).toBe(2048);
    expect(declaredSize({ BODY: '8BITMIME' })).toBe(0);
    expect(declaredSize(false)).toBe(0);
    // A bare SIZE (smtp-server's true), nonsense, or a number past 2^53: nothing usable is declared.
    expect(declaredSize({ SIZE: true })).toBe(0);
    expect(declaredSize({ SIZE: 'ten' })).toBe(0);
    expect(declaredSize({ SIZE: '-5' })).toBe(0);
    expect(declaredSize({ SIZE: '99999999999999999999' })).toBe(0);
  });

  it('property: a whole number of bytes, never negative, equal to SIZE whenever SIZE is one', () => {
    fc.assert(
      fc.property(fc.oneof(fc.nat().map(String), fc.string(), fc.boolean(), fc.constant(undefined)), (size) => {
        const result = declaredSize(size === undefined ? {} : { SIZE: size });
        if (typeof size === 'string' && /^\d+$/.test(size) && Number.isSafeInteger(Number(size))) return result === Number(size);
        return Number.isSafeInteger(result) && result >= 0;
      }),
      { seed: Number(process.env.FC_SEED ?? 20261126), numRuns: 500 },
    );
  });
});

describe('undeclaredUtf8', () => {
  it('is true for a local part that is not ASCII when SMTPUTF8 was not declared, whatever the domain', () => {
    expect(undeclaredUtf8('jörg@example.com', false)).toBe(true);
    expect(undeclaredUtf8('jörg@example.com', true)).toBe(false);
    // smtp-server hands an xn-- domain over in Unicode: the domain alone says nothing.
    expect(undeclaredUtf8('jorg@exämple.com', false)).toBe(false);
    expect(undeclaredUtf8('"j@ö"@example.com', false)).toBe(true);
    expect(undeclaredUtf8('', false)).toBe(false);
  });

  it('property: true exactly when the part before the last @ holds a character past U+007F and SMTPUTF8 is off', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.string({ maxLength: 20 }), fc.boolean(), (local, domain, declared) => {
        const nonAscii = [...local.replace(/@/g, '')].some((c) => c.codePointAt(0)! > 0x7f);
        expect(undeclaredUtf8(`${local.replace(/@/g, '')}@${domain.replace(/@/g, '')}`, declared)).toBe(nonAscii && !declared);
      }),
      { seed: Number(process.env.FC_SEED ?? 20261127), numRuns: 500 },
    );
  });
});
