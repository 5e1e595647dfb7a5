// The router against a real (in-memory, migrated) database: which rejection each address gets.
import { beforeAll, describe, expect, it } from 'vitest';
import { compileTemplate } from '../../../src/address/template.js';
import { openStore, type Store } from '../../../src/db/client.js';
import { createRepositories, type Repositories } from '../../../src/db/repositories.js';
import { MailRejection } from '../../../src/errors.js';
import { routeAddress } from '../../../src/route/router.js';
import { seedReplyWorld } from '../../helpers/seed.js';

let store: Store;
let repos: Repositories;
const template = compileTemplate('incoming+%{key}@example.com');
beforeAll(() => {
  store = openStore(':memory:');
  repos = createRepositories(store);
});

function codeFor(address: string): string | null {
  try {
    routeAddress(address, template, repos);
    return null;
  } catch (error) {
    if (error instanceof MailRejection) return error.code;
    throw error;
  }
}

describe('routeAddress', () => {
  it('routes a live reply key to the reply handler', () => {
    const world = seedReplyWorld(repos);
    const routed = routeAddress(template.format(world.key), template, repos);
    expect(routed.kind === 'key' && [routed.route.handler.name, routed.route.key]).toEqual(['reply', world.key]);
    expect(routeAddress('incoming@example.com', template, repos)).toEqual({ kind: 'mailbox' });
    expect(routeAddress('Postmaster@example.com', template, repos)).toEqual({ kind: 'postmaster' });
    expect(routeAddress('Postmaster', template, repos)).toEqual({ kind: 'postmaster' });
  });

  it.each([
    ['incoming+abc', 'rcpt.no_domain'],
    ['a@other.example', 'rcpt.relay_denied'],
    ['someone@example.com', 'rcpt.no_such_address'],
    ['postmaster@other.example', 'rcpt.relay_denied'],
    ['incoming+nope@example.com', 'rcpt.unknown_key'],
    ['incoming+0123456789abcdef0123456789abcdef@example.com', 'rcpt.unknown_reply_key'],
    ['incoming+acme-widgets-99-glimt-x-issue@example.com', 'rcpt.project_not_found'],
  ])('%s → %s', (address, code) => {
    expect(codeFor(address)).toBe(code);
  });

  it('treats a key whose recipient was deleted as unknown: the notification goes with the user', () => {
    const world = seedReplyWorld(repos);
    expect(codeFor(template.format(world.key))).toBeNull();
    store.sqlite.prepare('delete from users where id = ?').run(world.user.id);
    expect(codeFor(template.format(world.key))).toBe('rcpt.unknown_reply_key');
  });
});
