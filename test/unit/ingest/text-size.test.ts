// oversizedTextPart: which parts of a large message count as its text, and when they are too big to decode.
import { describe, expect, it } from 'vitest';
import { oversizedTextPart, TEXT_LIMITS } from '../../../src/ingest/text-size.js';

const lines = (bytes: number) => Buffer.from('x'.repeat(74).concat('\r\n').repeat(Math.ceil(bytes / 76)).slice(0, bytes));

function multipart(parts: { headers: string[]; body: Buffer }[]): Buffer[] {
  const out: Buffer[] = [Buffer.from('From: a@b.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n')];
  for (const part of parts) out.push(Buffer.from(`--b\r\n${part.headers.join('\r\n')}\r\n\r\n`), part.body, Buffer.from('\r\n'));
  out.push(Buffer.from('--b--\r\n'));
  return out;
}

describe('oversizedTextPart', () => {
  it('passes a single-part message at the limit and refuses one past it, naming the part', async () => {
    const head = Buffer.from('From: a@b.example\r\n\r\n');
    expect(await oversizedTextPart([head, lines(TEXT_LIMITS.bytes - 2)])).toBeNull();
    expect(await oversizedTextPart([head, lines(TEXT_LIMITS.bytes + 100)])).toMatch(/^a text\/plain part of 400\d{4} bytes; text parts are read up to 4000000 bytes$/);
  });

  it('counts inline text parts only: the same bytes as an attachment or another type are not text', async () => {
    const big = lines(TEXT_LIMITS.bytes + 1000);
    expect(await oversizedTextPart(multipart([{ headers: ['Content-Type: text/plain'], body: big }]))).toMatch(/^a text\/plain part/);
    expect(await oversizedTextPart(multipart([{ headers: ['Content-Type: text/plain', 'Content-Disposition: attachment; filename="log.txt"'], body: big }]))).toBeNull();
    expect(await oversizedTextPart(multipart([{ headers: ['Content-Type: application/octet-stream'], body: big }]))).toBeNull();
  });

  it('takes a text part with a name for a file, as the parser does, whatever its disposition (Apple Mail sends files inline)', async () => {
    const big = lines(TEXT_LIMITS.bytes + 1000);
    expect(await oversizedTextPart(multipart([{ headers: ['Content-Type: text/plain; name="server.log"', 'Content-Disposition: inline; filename="server.log"'], body: big }]))).toBeNull();
    expect(await oversizedTextPart(multipart([{ headers: ['Content-Type: text/plain; name="server.log"'], body: big }]))).toBeNull();
    // The message's own top-level text stays its body, name or not.
    const head = Buffer.from('From: a@b.example\r\nContent-Type: text/plain; name="body.txt"\r\n\r\n');
    expect(await oversizedTextPart([head, big])).toMatch(/^a text\/plain part/);
  });

  it('gives HTML more room, as its Markdown is much shorter', async () => {
    expect(await oversizedTextPart(multipart([{ headers: ['Content-Type: text/html'], body: lines(TEXT_LIMITS.bytes + 1000) }]))).toBeNull();
    expect(await oversizedTextPart(multipart([{ headers: ['Content-Type: text/html'], body: lines(TEXT_LIMITS.htmlBytes + 1000) }]))).toMatch(/^a text\/html part/);
  });

  it('leaves what it cannot split to mailparser', async () => {
    expect(await oversizedTextPart([Buffer.from('\u0000'.repeat(100))])).toBeNull();
  });
});
