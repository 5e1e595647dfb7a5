// access: who may comment where: GitLab's read_project and create_note rules, reduced to the columns
// intake stores. Throws the rejection GitLab would give. Side effects: reads membership.
import type { Repositories } from '../db/repositories.js';
import type { Noteable } from '../db/repos/issuables.repo.js';
import type { Project } from '../db/repos/projects.repo.js';
import type { User } from '../db/repos/users.repo.js';
import { MailRejection } from '../errors.js';

export const ACCESS = { guest: 10, reporter: 20, developer: 30, maintainer: 40, owner: 50 } as const;

export function checkCanComment(user: User, project: Project, noteable: Noteable, repos: Repositories): void {
  if (user.state === 'blocked') throw new MailRejection('rcpt.user_blocked');
  const level = repos.projects.accessLevel(project.id, user.id);
  // Existence of a project the user cannot see is not revealed (GitLab's ProjectNotFound).
  if (project.visibility === 'private' && level < ACCESS.guest) throw new MailRejection('rcpt.project_not_found');
  if (noteable.type === 'Issue') {
    const issue = noteable.row;
    if (issue.confidential && level < ACCESS.reporter && issue.authorId !== user.id) {
      throw new MailRejection('rcpt.not_permitted');
    }
  } else if (project.visibility === 'private' && level < ACCESS.reporter) {
    // Guests cannot see merge requests of private projects.
    throw new MailRejection('rcpt.not_permitted');
  }
}
