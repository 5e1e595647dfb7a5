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
    const route = routeAddress(template.format(world.key), template, repos);
    expect(route.handler.name).toBe('reply');
    expect(route.key).toBe(world.key);
  });

  it.each([
    ['incoming+abc', 'rcpt.no_domain'],
    ['a@other.example', 'rcpt.relay_denied'],
    ['incoming@example.com', 'rcpt.no_such_address'],
    ['postmaster@example.com', 'rcpt.no_such_address'],
    ['incoming+nope@example.com', 'rcpt.unknown_key'],
  ])('%s → %s', (address, code) => {
    expect(codeFor(address)).toBe(code);
  });

  it('treats a key whose recipient was deleted as unknown: the notification goes with the user', () => {
    const world = seedReplyWorld(repos);
    expect(codeFor(template.format(world.key))).toBeNull();
    store.sqlite.prepare('delete from users where id = ?').run(world.user.id);
    expect(codeFor(template.format(world.key))).toBe('rcpt.unknown_key');
  });
});
