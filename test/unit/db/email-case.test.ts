// A user's addresses compared without case, beyond ASCII, as GitLab compares them: SQLite's lower()
// folds ASCII only, so `JÖRG@` stored and `JÖRG@` sent would not have been the same address.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../../src/db/client.js';
import { createRepositories, type Repositories } from '../../../src/db/repositories.js';

let store: Store;
let repos: Repositories;
beforeEach(() => {
  store = openStore(':memory:');
  repos = createRepositories(store);
});
afterEach(() => store.close());

describe('a user\'s addresses, in any case', () => {
  it('are verified senders whatever the case of their letters beyond ASCII', () => {
    const user = repos.users.create({ username: 'joerg', name: 'Jörg', email: 'JÖRG.MÜLLER@Example.de', incomingEmailToken: 'glimt-joerg' });
    repos.users.addEmail({ userId: user.id, email: 'ΟΔΥΣΣΕΑΣ@example.gr', verified: true });
    repos.users.addEmail({ userId: user.id, email: 'Ärger@example.de', verified: false });
    for (const sent of ['JÖRG.MÜLLER@Example.de', 'jörg.müller@example.de', 'Jörg.Müller@EXAMPLE.DE', 'οδυσσεας@example.gr', 'ΟΔΥΣΣΕΑΣ@EXAMPLE.GR']) {
      expect(repos.users.hasVerifiedEmail(user.id, sent), sent).toBe(true);
    }
    expect(repos.users.hasVerifiedEmail(user.id, 'ärger@example.de')).toBe(false);
    expect(repos.users.hasVerifiedEmail(user.id, 'jorg.muller@example.de')).toBe(false);
  });

  it('are verified by `emails verify` in any case', () => {
    const user = repos.users.create({ username: 'aerger', name: 'Ä', email: 'a@example.de', incomingEmailToken: 'glimt-ae' });
    repos.users.addEmail({ userId: user.id, email: 'ÄRGER@example.de', verified: false });
    expect(repos.users.verifyEmail(user.id, 'ärger@EXAMPLE.de')).toMatchObject({ email: 'ÄRGER@example.de', verified: true });
    expect(repos.users.hasVerifiedEmail(user.id, 'Ärger@example.de')).toBe(true);
  });
});
