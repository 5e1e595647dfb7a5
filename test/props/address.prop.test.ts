// Property tests for the address template and the reply-key grammar. The seed is fixed and printed on
// failure; set FC_SEED to explore other inputs.
import { domainToASCII, domainToUnicode } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileAddresses } from '../../src/address/addresses.js';
import { mintReplyKey, parseReplyKey } from '../../src/address/reply-key.js';
import { compileTemplate, TemplateError } from '../../src/address/template.js';

const seed = Number(process.env.FC_SEED ?? 20261125);
const params = { seed, numRuns: 500 };

const localChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-_.=/'.split(''));
const keyArb = fc.string({ unit: localChar, minLength: 1, maxLength: 64 });
const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$/);
const domainArb = fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join('.'));
const affix = fc.string({ unit: fc.constantFrom(...'abcxyz+-_.'.split('')), maxLength: 8 });

describe('address template properties', () => {
  it('match(format(key)) gives the key back, whatever case the domain arrives in', () => {
    fc.assert(
      fc.property(affix, affix, domainArb, keyArb, fc.boolean(), (prefix, suffix, domain, key, upper) => {
        const t = compileTemplate(`${prefix}%{key}${suffix}@${domain}`);
        const address = t.format(key);
        const [local, dom] = [address.slice(0, address.lastIndexOf('@')), address.slice(address.lastIndexOf('@') + 1)];
        expect(t.match(`${local}@${upper ? dom.toUpperCase() : dom}`)).toEqual({ kind: 'key', key });
      }),
      params,
    );
  });

  it('the local part quoted, or the domain in Unicode or in its ASCII form, matches as the address itself', () => {
    const unicodeLabel = fc.constantFrom('exämple', 'bücher', '日本', 'ελληνικά', 'café');
    const idnArb = fc.tuple(fc.array(label, { maxLength: 2 }), unicodeLabel, fc.stringMatching(/^[a-z]{2,6}$/)).map(([before, idn, tld]) => [...before, idn, tld].join('.'));
    fc.assert(
      fc.property(fc.oneof(domainArb, idnArb), keyArb, (domain, key) => {
        const t = compileTemplate(`incoming+%{key}@${domain}`);
        const address = t.format(key);
        const at = address.lastIndexOf('@');
        const [local, ascii] = [address.slice(0, at), address.slice(at + 1)];
        const idn = ascii.includes('xn--');
        // (domainToASCII reads an all-digit name as an IPv4 address: only an internationalised one goes through it.)
        expect(ascii).toBe(idn ? domainToASCII(domain) : domain);
        const variants = [`"${local}"@${ascii}`, `"${local}"@${domain.toUpperCase()}`, ...(idn ? [`${local}@${domainToUnicode(ascii)}`, `${local}@${domain}`] : [])];
        for (const variant of variants) {
          expect(t.match(variant)).toEqual({ kind: 'key', key });
        }
      }),
      params,
    );
  });

  it('match never throws, and answers key only for its own domain and prefix: near misses and random strings alike', () => {
    const t = compileTemplate('incoming+%{key}@example.com');
    const domain = fc.constantFrom('example.com', 'example.com', 'EXAMPLE.COM', 'Example.Com', 'example.com.evil', 'evil.example.com', 'xexample.com', 'example.co', 'example.comm', 'example.com.', 'exa mple.com', '');
    const prefix = fc.constantFrom('incoming+', 'incoming+', 'INCOMING+', 'incoming-', 'incoming', 'outgoing+', '+', '');
    const nearMiss = fc.tuple(prefix, keyArb, domain, fc.constantFrom('plain', 'quoted', 'angle')).map(([before, key, dom, form]) => {
      const local = `${before}${key}`;
      const address = `${form === 'quoted' ? `"${local}"` : local}@${dom}`;
      return { address: form === 'angle' ? `<${address}>` : address, before, key, dom };
    });
    const random = fc.string({ maxLength: 200 }).map((address) => ({ address, before: null, key: null, dom: null }));
    const seen = { key: 0, otherwise: 0 };
    fc.assert(
      fc.property(fc.oneof({ weight: 3, arbitrary: nearMiss }, { weight: 1, arbitrary: random }), ({ address, before, key, dom }) => {
        const result = t.match(address);
        seen[result.kind === 'key' ? 'key' : 'otherwise']++;
        if (result.kind === 'key') expect(address.toLowerCase().replace(/^<|>$/g, '').endsWith('@example.com')).toBe(true);
        if (dom === null) return;
        // The prefix and the key together make the local part ('incoming' and '+a' are incoming+a).
        const local = `${before}${key}`;
        const ours = dom.toLowerCase() === 'example.com' && local.toLowerCase().startsWith('incoming+') && local.length > 'incoming+'.length;
        expect(result.kind === 'key', address).toBe(ours);
        if (ours) expect(result).toEqual({ kind: 'key', key: local.slice('incoming+'.length) });
      }),
      params,
    );
    expect(seen.key, 'addresses matched').toBeGreaterThan(20);
    expect(seen.otherwise, 'addresses refused').toBeGreaterThan(20);
  });

  it('compileTemplate either compiles or throws TemplateError, never anything else; what compiles formats keys it matches back', () => {
    // Templates near the valid form (a %{key} in a local part, a domain), and random strings.
    const nearTemplate = fc
      .tuple(affix, fc.constantFrom('%{key}', '%{key}', '%{key}', '%{KEY}', '%{key}%{key}', '%{ key}', ''), affix, fc.constantFrom('@', '@', '@', '@@', ''), fc.oneof(domainArb, fc.constantFrom('', 'exa mple.com', '-bad.com', 'example.com.')))
      .map((parts) => parts.join(''));
    let compiled = 0;
    fc.assert(
      fc.property(fc.oneof({ weight: 3, arbitrary: nearTemplate }, { weight: 1, arbitrary: fc.string({ maxLength: 60 }) }), keyArb, (template, key) => {
        let t;
        try {
          t = compileTemplate(template);
        } catch (error) {
          expect(error).toBeInstanceOf(TemplateError);
          return;
        }
        compiled++;
        if (t.hasKey) expect(t.match(t.format(key))).toEqual({ kind: 'key', key });
      }),
      params,
    );
    expect(compiled, 'templates that compiled').toBeGreaterThan(50);
  });
});

describe('reply key properties', () => {
  it('every minted key parses back as partitioned with its parts', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 36 ** 4 - 1 }), fc.integer({ min: 0, max: 2 ** 48 }), (bytes, partition, namespace) => {
        const key = mintReplyKey(partition, namespace, Buffer.from(bytes));
        expect(parseReplyKey(key)).toEqual({
          form: 'partitioned',
          key,
          partition: partition.toString(36),
          replyKey: key.split('-')[1],
          namespaceId: namespace.toString(36),
        });
      }),
      params,
    );
  });

  it('every 32-hex string is a legacy key; parseReplyKey never throws', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-f]{32}$/), (hex) => {
        expect(parseReplyKey(hex)?.form).toBe('legacy');
      }),
      params,
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        parseReplyKey(text);
      }),
      params,
    );
  });
});

describe('the address template and the Service Desk alias read as one', () => {
  it("an address either template makes is read back as its key, marked as the alias's when only the alias takes it", () => {
    fc.assert(
      fc.property(affix, affix, domainArb, domainArb, keyArb, (prefix, aliasPrefix, domain, aliasDomain, key) => {
        const incoming = `in${prefix}%{key}@${domain}`;
        const alias = `sd${aliasPrefix}%{key}@${aliasDomain}`;
        const both = compileAddresses(incoming, alias);
        const [t, a] = [compileTemplate(incoming), compileTemplate(alias)];
        expect(both.match(t.format(key))).toEqual({ kind: 'key', key });
        const aliased = a.format(key);
        const first = t.match(aliased);
        expect(both.match(aliased)).toEqual(first.kind === 'key' ? first : { kind: 'key', key, serviceDesk: true });
      }),
      params,
    );
  });

  it('never takes as a key what neither template takes', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (address) => {
        const both = compileAddresses('incoming+%{key}@example.com', 'contact-%{key}@example.net');
        const single = [compileTemplate('incoming+%{key}@example.com').match(address), compileTemplate('contact-%{key}@example.net').match(address)];
        if (single.every((m) => m.kind !== 'key')) expect(both.match(address).kind).not.toBe('key');
      }),
      params,
    );
  });
});
