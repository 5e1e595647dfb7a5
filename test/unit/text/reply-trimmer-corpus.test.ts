// Discourse's email_reply_trimmer cases (test/fixtures/reply-trimmer/README.md): every input must trim to
// upstream's reply and elided text, and the forwarded ones must split the way upstream's
// extract_embedded_email does. Compared with outer whitespace stripped, as upstream compares.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { extractEmbedded, trimReply } from '../../../src/text/trim-reply.js';

const root = new URL('../../fixtures/reply-trimmer/', import.meta.url);
const read = (folder: string, name: string) => readFileSync(new URL(`${folder}/${name}`, root), 'utf8');
const has = (folder: string, name: string) => existsSync(new URL(`${folder}/${name}`, root));
const names = readdirSync(new URL('emails/', root)).filter((name) => name.endsWith('.txt')).sort();

describe('email_reply_trimmer corpus', () => {
  it('has all 32 cases, 5 of them with an embedded message', () => {
    expect(names).toHaveLength(32);
    expect(names.filter((name) => has('embedded', name))).toHaveLength(5);
  });

  it.each(names)('%s: reply and elided part match upstream', (name) => {
    const { reply, elided } = trimReply(read('emails', name));
    expect(reply.trim()).toBe(read('trimmed', name).trim());
    expect(elided.trim()).toBe(read('elided', name).trim());
  });

  it.each(names.filter((name) => has('embedded', name)))('%s: the embedded message and the text before it', (name) => {
    const found = extractEmbedded(read('emails', name));
    expect(found).not.toBeNull();
    expect(found?.embedded.trim()).toBe(read('embedded', name).trim());
    expect(found?.before.trim()).toBe(read('before', name).trim());
  });
});
