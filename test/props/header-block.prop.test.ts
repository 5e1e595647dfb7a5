// headerBlock, the count of a header's lines and bytes before mailauth reads it: examples, and
// properties over generated messages cut into generated pieces, against a plain reading of the whole.
// The seed is fixed and printed on failure; set FC_SEED to explore.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { headerBlock, type HeaderLimits } from '../../src/ingest/header-block.js';

const seed = Number(process.env.FC_SEED ?? 20261128);
const roomy: HeaderLimits = { maxLines: 1000, maxBytes: 1 << 20, maxSignatures: 100, maxAuthorFieldBytes: 1 << 20, maxSignatureBytes: 1 << 20, maxSignatureColons: 1 << 20, scanBytes: 1 << 21 };
const of = (text: string, limits = roomy) => headerBlock([Buffer.from(text, 'latin1')], limits);

/** The same count, read the plain way: the whole message as one string, split at LF, field by field. */
function reference(bytes: Buffer, limits: HeaderLimits) {
  const text = bytes.toString('latin1');
  const found = { lines: 0, bytes: 0, signatures: 0, authorFieldBytes: 0, signatureBytes: 0, signatureColons: 0, fromFields: 0, authorFields: [] as string[] };
  let kind = 'other';
  let signing = false;
  let fieldBytes = 0;
  let fieldText = '';
  const endField = () => {
    if (kind === 'author' && fieldBytes <= limits.maxAuthorFieldBytes) found.authorFields.push(fieldText);
    fieldText = '';
  };
  const count = (line: string, withEnd: string) => {
    found.lines++;
    if (!(/^[ \t]/.test(line) && found.lines > 1)) {
      endField();
      const name = line.trimStart();
      kind = /^(from|sender)[ \t]*:/i.test(name) ? 'author' : /^(dkim-signature|arc-message-signature|arc-seal|arc-authentication-results)[ \t]*:/i.test(name) ? 'signature' : 'other';
      fieldBytes = 0;
      signing = /^(dkim-signature|arc-message-signature)[ \t]*:/i.test(name);
      if (signing) found.signatures++;
      if (/^from[ \t]*:/i.test(name)) found.fromFields++;
    }
    fieldBytes += withEnd.length;
    if (kind === 'author') {
      found.authorFieldBytes = Math.max(found.authorFieldBytes, fieldBytes);
      fieldText += withEnd;
    }
    if (kind === 'signature') found.signatureBytes += withEnd.length;
    if (signing) found.signatureColons += line.split(':').length - 1;
  };
  const done = (complete: boolean) => ({
    ...found,
    complete,
    over:
      !complete ||
      found.lines > limits.maxLines ||
      found.bytes > limits.maxBytes ||
      found.signatures > limits.maxSignatures ||
      found.authorFieldBytes > limits.maxAuthorFieldBytes ||
      found.signatureBytes > limits.maxSignatureBytes ||
      found.signatureColons > limits.maxSignatureColons,
  });
  let offset = 0;
  for (;;) {
    const nl = text.indexOf('\n', offset);
    if (nl === -1) {
      if (text.length >= limits.scanBytes) return done(false);
      const rest = text.slice(offset);
      found.bytes = text.length;
      if (rest.length > 0) count(rest, rest);
      endField();
      return done(true);
    }
    if (nl > limits.scanBytes) return done(false);
    const line = text.slice(offset, nl);
    offset = nl + 1;
    found.bytes = offset;
    if (line === '' || line === '\r') {
      endField();
      return done(true);
    }
    count(line, line + '\n');
    if (offset >= limits.scanBytes) return done(false);
  }
}

describe('headerBlock', () => {
  it('counts up to the empty line that ends the header, CRLF or bare LF', () => {
    expect(of('A: 1\r\nB: 2\r\n\r\nbody\r\n')).toMatchObject({ lines: 2, bytes: 14, complete: true, over: false });
    expect(of('A: 1\nB: 2\n\nbody')).toMatchObject({ lines: 2, bytes: 11, complete: true, over: false });
    expect(of('A: 1\r\n folded\r\n\r\n')).toMatchObject({ lines: 2, bytes: 17, over: false });
    expect(of('\r\nbody')).toMatchObject({ lines: 0, bytes: 2, over: false });
    expect(of('')).toMatchObject({ lines: 0, bytes: 0, complete: true, over: false });
  });

  it('takes a message with no empty line as all header', () => {
    expect(of('A: 1\r\nB: 2')).toMatchObject({ lines: 2, bytes: 10, complete: true, over: false });
    expect(of('A: 1\r\n')).toMatchObject({ lines: 1, bytes: 6, over: false });
  });

  it('counts past a limit to the end of the header, and no further than scanBytes', () => {
    expect(of('A\nB\nC\nD\n\n', { ...roomy, maxLines: 2 })).toMatchObject({ lines: 4, bytes: 9, complete: true, over: true });
    expect(of('AAAA\nBBBB\n\n', { ...roomy, maxBytes: 7 })).toMatchObject({ lines: 2, bytes: 11, over: true });
    expect(of('A\nB\n\n', { ...roomy, maxLines: 2, maxBytes: 5 })).toMatchObject({ lines: 2, bytes: 5, over: false });
    // A From after the line past the limit is still counted.
    expect(of('From: a@b\nX\nY\nFrom: c@d\n\n', { ...roomy, maxLines: 2 })).toMatchObject({ fromFields: 2, over: true });
    expect(of('A'.repeat(50), { ...roomy, scanBytes: 20 })).toMatchObject({ bytes: 20, complete: false, over: true });
    expect(of(`A: 1\n${'B'.repeat(50)}\n\n`, { ...roomy, scanBytes: 20 })).toMatchObject({ lines: 1, complete: false, over: true });
  });

  it('finds a CRLF and an empty line split over two pieces', () => {
    const pieces = ['A: 1\r', '\n', '\r', '\nbody'].map((p) => Buffer.from(p));
    expect(headerBlock(pieces, roomy)).toMatchObject({ lines: 1, bytes: 8, complete: true, over: false });
    // A byte that is not CR before an LF at the start of the next piece ends a line, not the header.
    expect(headerBlock([Buffer.from('A: 1\r\nX'), Buffer.from('\n\r\n')], roomy)).toMatchObject({ lines: 2, bytes: 10, over: false });
  });

  it('gives the From and Sender fields whole, continuation lines and all, even cut over pieces', () => {
    const pieces = ['To: x@y\r\nFrom: a@b,\r\n', ' c@d\r\nSender: e', '@f\r\nSubject: s\r\n\r\nbody'].map((p) => Buffer.from(p));
    expect(headerBlock(pieces, roomy).authorFields.map((f) => f.toString())).toEqual(['From: a@b,\r\n c@d\r\n', 'Sender: e@f\r\n']);
    // A first line that starts with a blank has nothing to continue: mailparser reads it as a field.
    expect(of(' From: a@b\r\n\r\n').authorFields.map((f) => f.toString())).toEqual([' From: a@b\r\n']);
    expect(of(' From: a@b\r\n\r\n').fromFields).toBe(1);
    // One past its limit is left out; the limit says so.
    expect(of('From: aaaaaaaa@b\r\n\r\n', { ...roomy, maxAuthorFieldBytes: 10 })).toMatchObject({ authorFields: [], over: true });
  });

  it('counts DKIM-Signature and ARC-Message-Signature fields, not their continuation lines, and stops past the limit', () => {
    const header = 'DKIM-Signature: v=1;\r\n b=x\r\nARC-Message-Signature: i=1\r\ndkim-signature : v=1\r\nX-DKIM-Signature: no\r\n\r\n';
    expect(of(header)).toMatchObject({ lines: 5, bytes: header.length, signatures: 3, authorFieldBytes: 0, signatureBytes: 22 + 6 + 29 + 21, signatureColons: 3, fromFields: 0, over: false });
    expect(of(header, { ...roomy, maxSignatureColons: 2 })).toMatchObject({ over: true });
    expect(of(header, { ...roomy, maxSignatures: 2 })).toMatchObject({ signatures: 3, over: true });
    expect(of(header, { ...roomy, maxSignatureBytes: 50 })).toMatchObject({ over: true });
    // A field name cut over two pieces.
    expect(headerBlock([Buffer.from('DKIM-Sig'), Buffer.from('nature: v=1\r\n\r\n')], roomy)).toMatchObject({ signatures: 1 });
  });

  it('measures the largest From or Sender field, its continuation lines with it', () => {
    const header = 'From: a@example.org,\r\n b@example.org\r\nTo: c@example.org\r\nSender: d@example.org\r\n\r\n';
    expect(of(header)).toMatchObject({ authorFieldBytes: 22 + 16, fromFields: 1, over: false });
    expect(of('From: a@b\r\nfrom : c@d\r\nX-From: e@f\r\n\r\n')).toMatchObject({ fromFields: 2 });
    expect(of(header, { ...roomy, maxAuthorFieldBytes: 37 })).toMatchObject({ over: true });
  });

  it('counts what a plain reading of the whole counts, however the message is cut', () => {
    const line = fc.oneof(
      fc.stringMatching(/^[ -~]{0,12}$/),
      fc.constantFrom('', '\r', ' folded', '\tfolded', 'X: y', '\r\r', 'DKIM-Signature: v=1', 'arc-message-signature :i=1', 'ARC-Seal: i=1', ' DKIM-Signature: folded', 'DKIM-Signatures: no', 'From: a@b', 'sender : c@d', 'From-X: no', ' h=from:to:subject'),
    );
    const message = fc
      .tuple(fc.array(fc.tuple(line, fc.constantFrom('\r\n', '\n')), { maxLength: 30 }), fc.string({ maxLength: 20 }))
      .map(([lines, tail]) => Buffer.from(lines.map(([l, end]) => l + end).join('') + tail, 'latin1'));
    const limits = fc.record({
      maxLines: fc.integer({ min: 0, max: 40 }),
      maxBytes: fc.integer({ min: 0, max: 400 }),
      maxSignatures: fc.integer({ min: 0, max: 5 }),
      maxAuthorFieldBytes: fc.integer({ min: 0, max: 200 }),
      maxSignatureBytes: fc.integer({ min: 0, max: 200 }),
      maxSignatureColons: fc.integer({ min: 0, max: 10 }),
      scanBytes: fc.integer({ min: 1, max: 600 }),
    });
    fc.assert(
      fc.property(message, fc.array(fc.nat(), { maxLength: 6 }), limits, (bytes, cuts, lim) => {
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const pieces = [0, ...at].map((start, i) => bytes.subarray(start, [...at, bytes.length][i]));
        const expected = reference(bytes, lim);
        const found = headerBlock(pieces, lim);
        expect({ complete: found.complete, over: found.over }).toEqual({ complete: expected.complete, over: expected.over });
        if (expected.complete) expect({ ...found, authorFields: found.authorFields.map((f) => f.toString('latin1')) }).toEqual(expected);
      }),
      { seed, numRuns: 5_000 },
    );
  });

  it('never counts past a limit by more than the line that crossed it', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 500 }), (bytes, maxLines, maxBytes) => {
        const found = headerBlock([Buffer.from(bytes)], { maxLines, maxBytes, maxSignatures: maxLines, maxAuthorFieldBytes: maxBytes, maxSignatureBytes: maxBytes, maxSignatureColons: maxBytes, scanBytes: 4 * maxBytes });
        expect(found.lines).toBeLessThanOrEqual(maxLines + 1);
        if (!found.over) expect(found.bytes).toBeLessThanOrEqual(maxBytes);
        expect(found.bytes).toBeLessThanOrEqual(bytes.length);
      }),
      { seed, numRuns: 2_000 },
    );
  });
});
