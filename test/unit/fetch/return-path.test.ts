import { describe, expect, it } from 'vitest';
import { returnPathOf } from '../../../src/fetch/return-path.js';

const of = (text: string) => returnPathOf(Buffer.from(text, 'latin1'));

describe('returnPathOf', () => {
  it('reads the address of the first Return-Path field, in any case of its name, CRLF or LF', () => {
    expect(of('Return-Path: <bounces+123@lists.example.org>\r\nFrom: a@b\r\n\r\nbody')).toBe('bounces+123@lists.example.org');
    expect(of('Delivered-To: incoming@example.com\nreturn-path:<a@b.example>\n\nbody')).toBe('a@b.example');
    expect(of('RETURN-PATH : <a@b.example>\r\n\r\n')).toBe('a@b.example');
  });

  it('is the empty string for the null sender, as MAIL FROM:<> is (a bounce)', () => {
    expect(of('Return-Path: <>\r\nFrom: MAILER-DAEMON@example.org\r\n\r\n')).toBe('');
  });

  it('takes the topmost of several: the last delivery agent writes its own first', () => {
    expect(of('Return-Path: <real@example.org>\r\nReceived: x\r\nReturn-Path: <forged@evil.example>\r\n\r\n')).toBe('real@example.org');
  });

  it('reads a folded field and a bare address without brackets', () => {
    expect(of('Return-Path:\r\n <folded@example.org>\r\n\r\n')).toBe('folded@example.org');
    expect(of('Return-Path: bare@example.org\r\n\r\n')).toBe('bare@example.org');
  });

  it('is null without one, for one that is not an address, and for one in the body', () => {
    expect(of('From: a@b\r\n\r\nbody')).toBeNull();
    expect(of('Return-Path: <a@b> <c@d>\r\n\r\n')).toBeNull();
    expect(of('Return-Path: not an address\r\n\r\n')).toBeNull();
    expect(of('From: a@b\r\n\r\nReturn-Path: <in@body.example>\r\n')).toBeNull();
    expect(of('')).toBeNull();
  });

  it('reads no further than the first 64 KiB', () => {
    const filler = `X-Filler: ${'y'.repeat(70 * 1024)}\r\n`;
    expect(of(`${filler}Return-Path: <late@example.org>\r\n\r\n`)).toBeNull();
  });
});
