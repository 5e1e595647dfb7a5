// repositories: the set of repositories handed to the pipeline stages, bound to one open store.
import type { Store } from './client.js';
import { createInboundRepository } from './repos/inbound.repo.js';
import { createIssuablesRepository } from './repos/issuables.repo.js';
import { createNotesRepository } from './repos/notes.repo.js';
import { createNotificationsRepository } from './repos/notifications.repo.js';
import { createProjectsRepository } from './repos/projects.repo.js';
import { createUsersRepository } from './repos/users.repo.js';

export function createRepositories(store: Store) {
  const { db } = store;
  return {
    transaction: store.transaction,
    writeTransaction: store.writeTransaction,
    commit: store.commit,
    users: createUsersRepository({ db }),
    projects: createProjectsRepository({ db }),
    issuables: createIssuablesRepository({ db }),
    notes: createNotesRepository({ db }),
    notifications: createNotificationsRepository({ db }),
    inbound: createInboundRepository({ db }),
  };
}

export type Repositories = ReturnType<typeof createRepositories>;
