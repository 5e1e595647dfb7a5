import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { itemTitle, TITLE_MAX } from '../../../src/text/title.js';

describe('itemTitle', () => {
  it.each([
    ['Order 123\r\nX-Injected: yes', 'Order 123 X-Injected: yes'],
    ['Widgets\u0000\u0007\u001b[31m red', 'Widgets [31m red'],
    ['  Re:\tWidgets   squeak  ', 'Re: Widgets squeak'],
    ['\r\n\u0000', ''],
    ['Grüße 日本語', 'Grüße 日本語'],
  ])('%j → %j', (subject, title) => {
    expect(itemTitle(subject)).toBe(title);
  });

  it('cuts a long subject at a word, to GitLab\'s 255 characters with an ellipsis', () => {
    const title = itemTitle(`${'squeak '.repeat(60)}end`);
    expect([...title]).toHaveLength(36 * 7 - 1 + 1);
    expect(title.endsWith('squeak…')).toBe(true);
    expect([...itemTitle('日'.repeat(300))]).toHaveLength(TITLE_MAX);
  });

  it('always gives one line of at most 255 characters, without control characters, and is idempotent', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 600, unit: 'binary' }), (subject) => {
        const title = itemTitle(subject);
        expect([...title].length).toBeLessThanOrEqual(TITLE_MAX);
        // eslint-disable-next-line no-control-regex -- what must never be left
        expect(title).not.toMatch(/[\u0000-\u001f\u007f]/);
        expect(title).toBe(title.trim());
        expect(itemTitle(title)).toBe(title);
      }),
      { seed: Number(process.env.FC_SEED ?? 20261126), numRuns: 1000 },
    );
  });
});
