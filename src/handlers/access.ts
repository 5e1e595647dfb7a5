// access: who may do what: GitLab's read_project, create_issue, create_note, update_issue and
// create_merge_request rules, reduced to the columns intake stores. Throws the rejection GitLab would
// give. Side effects: reads membership.
import type { Repositories } from '../db/repositories.js';
import type { Noteable } from '../db/repos/issuables.repo.js';
import type { Project } from '../db/repos/projects.repo.js';
import type { User } from '../db/repos/users.repo.js';
import { MailRejection } from '../errors.js';

export const ACCESS = { guest: 10, reporter: 20, developer: 30, maintainer: 40, owner: 50 } as const;

/** Checks the user is active and may see the project; returns their access level (0 for none). */
export function checkCanRead(user: User, project: Project, repos: Repositories): number {
  if (user.state === 'blocked') throw new MailRejection('rcpt.user_blocked');
  const level = repos.projects.accessLevel(project.id, user.id);
  // Existence of a project the user cannot see is not revealed (GitLab's ProjectNotFound).
  if (project.visibility === 'private' && level < ACCESS.guest) throw new MailRejection('rcpt.project_not_found');
  return level;
}

export function checkCanComment(user: User, project: Project, noteable: Noteable, repos: Repositories): void {
  const level = checkCanRead(user, project, repos);
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

/** A member may open issues; so may any user on a public project. */
export function checkCanCreateIssue(user: User, project: Project, repos: Repositories): void {
  const level = checkCanRead(user, project, repos);
  if (level < ACCESS.guest && project.visibility !== 'public') throw new MailRejection('rcpt.not_permitted');
}

export function checkCanCreateMergeRequest(user: User, project: Project, repos: Repositories): void {
  if (checkCanRead(user, project, repos) < ACCESS.developer) throw new MailRejection('rcpt.not_permitted');
}

/** Quick actions that change an issue need reporter access, or being its author. */
export function canUpdate(user: User, project: Project, noteable: Noteable, repos: Repositories): boolean {
  if (user.state === 'blocked') return false;
  return repos.projects.accessLevel(project.id, user.id) >= ACCESS.reporter || noteable.row.authorId === user.id;
}

/** Whether the user may see the issue or merge request: only such a user can be assigned to it. */
export function canSee(user: User, project: Project, noteable: Noteable, repos: Repositories): boolean {
  try {
    checkCanComment(user, project, noteable, repos);
    return true;
  } catch (error) {
    if (error instanceof MailRejection) return false;
    throw error;
  }
}
