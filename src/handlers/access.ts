// access: who may do what: GitLab's read_project, create_issue, create_note, update_issue,
// set_issue_metadata and create_merge_request rules, reduced to the columns intake stores. Throws the
// rejection GitLab would give. Side effects: reads membership.
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
  checkNotArchived(project);
  return level;
}

/** An archived project is read-only, as in GitLab: no issues, comments or merge requests, by anyone. */
export function checkNotArchived(project: Project): void {
  if (project.archived) throw new MailRejection('rcpt.project_archived');
}

export function checkCanComment(user: User, project: Project, noteable: Noteable, repos: Repositories): void {
  const level = checkCanRead(user, project, repos);
  if (noteable.type === 'Issue') {
    const issue = noteable.row;
    // A confidential issue is for reporters and up, its author and its assignees (GitLab's IssueCollection#visible_to).
    if (issue.confidential && level < ACCESS.reporter && !authorOrAssignee(user, noteable, repos)) {
      throw new MailRejection('rcpt.not_permitted');
    }
  } else if (project.visibility === 'private' && level < ACCESS.reporter) {
    // Guests cannot see merge requests of private projects.
    throw new MailRejection('rcpt.not_permitted');
  }
}

/**
 * Whoever may see the project may open issues in it: a member of a private one, any user of an
 * internal or public one (GitLab's guest access comes with internal and public visibility).
 */
export function checkCanCreateIssue(user: User, project: Project, repos: Repositories): void {
  checkCanRead(user, project, repos);
}

export function checkCanCreateMergeRequest(user: User, project: Project, repos: Repositories): void {
  if (checkCanRead(user, project, repos) < ACCESS.developer) throw new MailRejection('rcpt.not_permitted');
}

/**
 * GitLab's update_issue and update_merge_request (`/close`, `/reopen`, `/title`): reporter access and up
 * for an issue, developer for a merge request, or being its author or an assignee of the issue.
 */
export function canUpdate(user: User, project: Project, noteable: Noteable, repos: Repositories): boolean {
  if (user.state === 'blocked') return false;
  const needed = noteable.type === 'Issue' ? ACCESS.reporter : ACCESS.developer;
  return repos.projects.accessLevel(project.id, user.id) >= needed || authorOrAssignee(user, noteable, repos);
}

/**
 * GitLab's set_issue_metadata (`/label`, `/unlabel`, `/assign`): reporter access and up, or, on the
 * issue the mail itself creates, any member.
 */
export function canSetMetadata(user: User, project: Project, creating: boolean, repos: Repositories): boolean {
  if (user.state === 'blocked') return false;
  return repos.projects.accessLevel(project.id, user.id) >= (creating ? ACCESS.guest : ACCESS.reporter);
}

function authorOrAssignee(user: User, noteable: Noteable, repos: Repositories): boolean {
  return noteable.row.authorId === user.id || (noteable.type === 'Issue' && repos.issuables.isAssignee(noteable.row.id, user.id));
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
