// The router against a real (in-memory, migrated) database: which rejection each address gets.
import { beforeAll, describe, expect, it } from 'vitest';
import { compileAddresses } from '../../../src/address/addresses.js';
import { fullPathSlug } from '../../../src/address/keys.js';
import { compileTemplate } from '../../../src/address/template.js';
import { openStore, type Store } from '../../../src/db/client.js';
import { createRepositories, type Repositories } from '../../../src/db/repositories.js';
import { MailRejection } from '../../../src/errors.js';
import { routeAddress, routeByHeaders } from '../../../src/route/router.js';
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

describe('the Service Desk alias address (INTAKE_SERVICE_DESK_ADDRESS)', () => {
  const addresses = compileAddresses('incoming+%{key}@example.com', 'contact+%{key}@example.com');
  const routed = (address: string) => {
    try {
      const route = routeAddress(address, addresses, repos);
      return route.kind === 'key' ? route.route.handler.name : route.kind;
    } catch (error) {
      if (error instanceof MailRejection) return error.code;
      throw error;
    }
  };

  it("reads its key as a Service Desk's alone: the project's own key, its suffix, or its legacy path", () => {
    const world = seedReplyWorld(repos);
    repos.projects.update(world.project.id, { serviceDeskEnabled: true, serviceDeskKey: 'help_desk' });
    const slug = fullPathSlug(world.project.path);
    expect(routed(`contact+${slug}-${world.project.id}-issue-@example.com`)).toBe('service_desk');
    expect(routed(`contact+${slug}-help_desk@example.com`)).toBe('service_desk');
    expect(routed(`contact+${world.project.path}@example.com`)).toBe('service_desk');
    // The reply key, the user's new-issue key: live at the address template, nothing at the alias.
    expect(routed(`incoming+${world.key}@example.com`)).toBe('reply');
    expect(routed(`contact+${world.key}@example.com`)).toBe('rcpt.project_not_found');
    const newIssue = `${slug}-${world.project.id}-${world.user.incomingEmailToken}-issue`;
    expect(routed(`incoming+${newIssue}@example.com`)).toBe('new_issue');
    expect(routed(`contact+${newIssue}@example.com`)).toBe('rcpt.project_not_found');
    expect(routed(`contact+${slug}-other_key@example.com`)).toBe('rcpt.project_not_found');
    expect(routed(`contact+nothing@example.com`)).toBe('rcpt.project_not_found');
    expect(routed(`incoming+nothing@example.com`)).toBe('rcpt.unknown_key');
    expect(routed('contact@example.com')).toBe('rcpt.no_such_address');
    repos.projects.update(world.project.id, { serviceDeskEnabled: false });
    expect(routed(`contact+${slug}-${world.project.id}-issue-@example.com`)).toBe('rcpt.project_not_found');
  });

  it('routes a forward by its headers: an alias address found there is read as a Service Desk key', () => {
    const world = seedReplyWorld(repos);
    repos.projects.update(world.project.id, { serviceDeskEnabled: true });
    const key = `${fullPathSlug(world.project.path)}-${world.project.id}-issue-`;
    const headers = (values: Record<string, string[]>) => ({ to: [], cc: [], references: [], header: (name: string) => values[name] ?? [] }) as never;
    const found = routeByHeaders(headers({ 'Delivered-To': [`contact+${world.key}@example.com`, `contact+${key}@example.com`] }), addresses, 'tracker.example.com', repos);
    expect(found.route?.handler.name).toBe('service_desk');
    expect(found.candidates.map((c) => c.outcome)).toEqual([{ refused: 'rcpt.project_not_found' }, { routed: 'service_desk' }]);
  });
});
