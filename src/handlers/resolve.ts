// resolve: the lookups several handlers share: the project a key names (by id and slug, by path, or
// by Service Desk key) and the user an incoming-email token belongs to. Side effects: database reads.
import { fullPathSlug, type ProjectRef } from '../address/keys.js';
import type { Repositories } from '../db/repositories.js';
import type { Project } from '../db/repos/projects.repo.js';
import type { User } from '../db/repos/users.repo.js';
import { MailRejection } from '../errors.js';

/**
 * The project a key names. A slug that no longer matches the project's path (it was renamed or
 * moved) does not count, as in GitLab: an old address must not reach a project by id alone.
 */
export function resolveProject(ref: ProjectRef, repos: Repositories): Project {
  let project: Project | undefined;
  if (ref.by === 'id') {
    const found = repos.projects.findById(ref.id);
    project = found && fullPathSlug(found.path) === ref.slug ? found : undefined;
  } else if (ref.by === 'path') {
    project = repos.projects.findByPath(ref.path);
  } else {
    project = repos.projects.findByServiceDeskKey(ref.serviceDeskKey).find((p) => fullPathSlug(p.path) === ref.slug);
  }
  if (!project) throw new MailRejection('rcpt.project_not_found');
  return project;
}

export function resolveTokenUser(token: string, repos: Repositories): User {
  const user = token === '' ? undefined : repos.users.findByIncomingEmailToken(token);
  // The Support Bot writes no issues of its own: its token is never an address.
  if (!user || user.userType !== 'human') throw new MailRejection('rcpt.user_not_found');
  if (user.state === 'blocked') throw new MailRejection('rcpt.user_blocked');
  return user;
}
