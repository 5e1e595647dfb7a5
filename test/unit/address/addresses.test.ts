// The address template and the Service Desk alias template read as one (src/address/addresses.ts).
import { describe, expect, it } from 'vitest';
import { compileAddresses } from '../../../src/address/addresses.js';
import { redactedAddress } from '../../../src/address/template.js';

describe('compileAddresses', () => {
  const both = compileAddresses('incoming+%{key}@example.com', 'contact+%{key}@example.com');

  it('without an alias is the address template itself', () => {
    const only = compileAddresses('incoming+%{key}@example.com', null);
    expect(only.match('contact+acme-7-issue-@example.com')).toEqual({ kind: 'no_match' });
    expect(only.serviceDesk).toBeUndefined();
  });

  it("marks a key under the alias as the Service Desk's, and reads the address template first", () => {
    expect(both.match('contact+acme-7-issue-@example.com')).toEqual({ kind: 'key', key: 'acme-7-issue-', serviceDesk: true });
    expect(both.match('CONTACT+acme-7-issue-@Example.COM')).toEqual({ kind: 'key', key: 'acme-7-issue-', serviceDesk: true });
    expect(both.match('incoming+acme-7-issue-@example.com')).toEqual({ kind: 'key', key: 'acme-7-issue-' });
    expect(both.match('incoming@example.com')).toEqual({ kind: 'mailbox' });
    expect(both.match('postmaster@example.com')).toEqual({ kind: 'postmaster' });
  });

  it("takes not the alias's bare mailbox, which names no project, nor other local parts", () => {
    expect(both.match('contact@example.com')).toEqual({ kind: 'no_match' });
    expect(both.match('someone@example.com')).toEqual({ kind: 'no_match' });
    expect(both.match('contact+x@other.example')).toEqual({ kind: 'foreign_domain', domain: 'other.example' });
    expect(both.match('contact+x')).toEqual({ kind: 'no_domain' });
  });

  it('an alias at a domain of its own: its keys and its postmaster are ours, its other local parts are not', () => {
    const apart = compileAddresses('incoming+%{key}@example.com', 'help-%{key}@support.example.net');
    expect(apart.match('help-acme-app@support.example.net')).toEqual({ kind: 'key', key: 'acme-app', serviceDesk: true });
    expect(apart.match('postmaster@support.example.net')).toEqual({ kind: 'postmaster' });
    expect(apart.match('someone@support.example.net')).toEqual({ kind: 'no_match' });
    expect(apart.match('incoming+x@support.example.net')).toEqual({ kind: 'no_match' });
    expect(apart.match('help-x@example.com')).toEqual({ kind: 'no_match' });
    expect(apart.match('x@elsewhere.example')).toEqual({ kind: 'foreign_domain', domain: 'elsewhere.example' });
  });

  it('formats and names the mailbox as the address template; a log line redacts an alias key under the alias', () => {
    expect(both.format('k')).toBe('incoming+k@example.com');
    expect(both.mailbox).toBe('incoming@example.com');
    expect(redactedAddress(both, 'contact+acme-widgets-support@example.com')).toBe('contact+acme…@example.com');
    expect(redactedAddress(both, 'incoming+0123456789@example.com')).toBe('incoming+0123…@example.com');
  });
});
