import { describe, expect, it } from 'vitest';
import { trimReply } from '../../../src/text/trim-reply.js';

describe('trimReply', () => {
  it('drops a trailing quote and keeps it as the elided part', () => {
    expect(trimReply('Agreed.\n\n> the original\n> text\n')).toEqual({ reply: 'Agreed.', elided: '> the original\n> text' });
  });

  it('cuts at "On ... wrote:" even when the quote under it is not marked', () => {
    expect(trimReply('Yes.\r\n\r\nOn Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\r\nthe original\r\n').reply).toBe('Yes.');
  });

  it('cuts at a "-- " signature delimiter, but not at a lone bullet', () => {
    expect(trimReply('Body.\n-- \nJake\n555-1234').reply).toBe('Body.');
    expect(trimReply('List:\n-\nitem one\n*\nitem two').reply).toBe('List:\n-\nitem one\n*\nitem two');
  });

  it('keeps an inline answer: a quote followed by more text stays', () => {
    const text = '> Can you check?\nChecked, it works.\n> And the other thing?\nAlso fine.';
    expect(trimReply(text).reply).toBe(text);
  });

  it('drops mobile signatures', () => {
    expect(trimReply('On my way.\n\nSent from my iPhone').reply).toBe('On my way.');
  });

  it('cuts at an Outlook original-message block', () => {
    expect(trimReply('Done.\n\n-----Original Message-----\nFrom: x').reply).toBe('Done.');
    expect(trimReply('Done.\n\nFrom: GitLab <gitlab@example.com>\nSent: Monday\nTo: Jake\n').reply).toBe('Done.');
  });

  it('is blank when there is only a quote', () => {
    expect(trimReply('\n> only\n> quoted\n').reply).toBe('');
    expect(trimReply('   \n\n').reply).toBe('');
  });

  it('removes trailing spaces from each line', () => {
    expect(trimReply('a  \nb\t\n').reply).toBe('a\nb');
  });
});
