import { describe, expect, it } from 'vitest';
import { mintReplyKey, parseReplyKey, replyKeyStem } from '../../../src/address/reply-key.js';

describe('parseReplyKey', () => {
  it('reads a legacy 32-hex key', () => {
    expect(parseReplyKey('59d8df8370b7e95c5a49fbf86aeb2c93')).toEqual({ form: 'legacy', key: '59d8df8370b7e95c5a49fbf86aeb2c93' });
  });

  it('reads a partitioned key with and without its namespace', () => {
    expect(parseReplyKey('1-0123456789abcdefghijklmno-2s')).toEqual({
      form: 'partitioned',
      key: '1-0123456789abcdefghijklmno-2s',
      partition: '1',
      replyKey: '0123456789abcdefghijklmno',
      namespaceId: '2s',
    });
    expect(parseReplyKey('zz-0123456789abcdefghijklmno')).toMatchObject({ partition: 'zz', namespaceId: null });
  });

  it.each([
    '59D8DF8370B7E95C5A49FBF86AEB2C93',
    '59d8df8370b7e95c5a49fbf86aeb2c9',
    '1-0123456789abcdefghijklmn',
    '12345-0123456789abcdefghijklmno',
    '1-0123456789abcdefghijklmno-12345678901234',
    '1-0123456789ABCDEFGHIJKLMNO',
    '59d8df8370b7e95c5a49fbf86aeb2c93-unsubscribe',
    '',
  ])('refuses %j', (text) => {
    expect(parseReplyKey(text)).toBeNull();
  });

  it('gives the stem that identifies a notification without the namespace', () => {
    expect(replyKeyStem(parseReplyKey('1-0123456789abcdefghijklmno-2s')!)).toBe('1-0123456789abcdefghijklmno');
  });
});

describe('mintReplyKey', () => {
  it('pads 128 random bits in base36 to 25 characters', () => {
    expect(mintReplyKey(1, 35, Buffer.alloc(16))).toBe(`1-${'0'.repeat(25)}-z`);
    expect(mintReplyKey(36, 1, Buffer.alloc(16, 0xff))).toBe('10-f5lxx1zz5pnorynqglhzmsp33-1');
  });
});
