import { describe, expect, it } from 'vitest';
import { folderPath, graphMessageUrl, odataString, sameFolder } from '../../../src/fetch/graph-folder.js';

describe('folderPath', () => {
  it('takes a well-known first level in any case, and display names below it', () => {
    expect(folderPath('inbox')).toEqual({ root: 'inbox', names: [] });
    expect(folderPath('Inbox/Support/Level 2')).toEqual({ root: 'inbox', names: ['Support', 'Level 2'] });
    expect(folderPath('DeletedItems')).toEqual({ root: 'deleteditems', names: [] });
  });

  it('looks for any other first level under the top of the mailbox', () => {
    expect(folderPath('intake')).toEqual({ root: 'msgfolderroot', names: ['intake'] });
    expect(folderPath('Posteingang/Support')).toEqual({ root: 'msgfolderroot', names: ['Posteingang', 'Support'] });
  });

  it('trims each level and refuses an empty one, saying so', () => {
    expect(folderPath(' Inbox / Support ')).toEqual({ root: 'inbox', names: ['Support'] });
    expect(() => folderPath('Inbox//Support')).toThrow('"Inbox//Support" has an empty level');
    expect(() => folderPath('/Support')).toThrow('has an empty level');
    expect(() => folderPath('Support/')).toThrow('has an empty level');
  });
});

describe('sameFolder', () => {
  it('compares well-known names and display names in any case', () => {
    expect(sameFolder('inbox', 'INBOX')).toBe(true);
    expect(sameFolder('Inbox/Support', 'inbox/support')).toBe(true);
    expect(sameFolder('Inbox/Support', 'Inbox/Support/Done')).toBe(false);
    expect(sameFolder('Archive', 'archive/x')).toBe(false);
    expect(sameFolder('intake', 'Inbox/intake')).toBe(false);
  });
});

describe('odataString', () => {
  it('quotes a value and doubles the quotes in it', () => {
    expect(odataString('Support')).toBe("'Support'");
    expect(odataString("Support's")).toBe("'Support''s'");
    expect(odataString("'")).toBe("''''");
  });
});

describe('graphMessageUrl', () => {
  it('names the message under the endpoint, the mailbox and its ID, %-encoded', () => {
    expect(graphMessageUrl('https://graph.microsoft.com', 'support@example.com', 'AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A=')).toBe(
      'https://graph.microsoft.com/v1.0/users/support%40example.com/messages/AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A%3D',
    );
    expect(graphMessageUrl('https://graph.microsoft.us/', 'u', 'x/y')).toBe('https://graph.microsoft.us/v1.0/users/u/messages/x%2Fy');
  });
});
