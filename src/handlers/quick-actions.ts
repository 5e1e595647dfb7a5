// quick-actions: carries out the quick actions of a mail as the user it comes from, recording each
// change as a system note. Side effects: updates the issue or merge request, writes system notes.
import type { Repositories } from '../db/repositories.js';
import type { Noteable } from '../db/repos/issuables.repo.js';
import type { Project } from '../db/repos/projects.repo.js';
import type { User } from '../db/repos/users.repo.js';
import type { QuickAction } from '../text/quick-actions.js';
import { canSee, canSetMetadata, canUpdate } from './access.js';
import { itemTitle } from '../text/title.js';

export interface QuickActionContext {
  user: User;
  project: Project;
  noteable: Noteable;
  repos: Repositories;
  inboundMessageId: number;
  /** The mail creates the issue: as in GitLab, `/close`, `/reopen` and `/title` need one that exists already. */
  creating?: boolean;
}

/**
 * Runs the actions the user may run and returns the system notes written. An action the user may not
 * run is dropped, as GitLab does: no change, no error.
 */
export function runQuickActions(actions: QuickAction[], context: QuickActionContext): string[] {
  const { user, project, repos } = context;
  let noteable = context.noteable;
  if (actions.length === 0) return [];
  const changes: string[] = [];
  // Assignments last: who may be assigned depends on what the other commands make of the issue
  // (`/confidential` after `/assign` must not leave someone assigned who cannot see it).
  for (const action of [...actions.filter((a) => a.name !== 'assign'), ...actions.filter((a) => a.name === 'assign')]) {
    if (!mayRun(action.name, noteable, context)) continue;
    const change = apply(action, noteable, context);
    if (change) {
      changes.push(change);
      noteable = repos.issuables.findNoteable(noteable.type, noteable.row.id) ?? noteable;
    }
  }
  for (const body of changes) {
    repos.notes.create({
      projectId: project.id,
      noteableType: noteable.type,
      noteableId: noteable.row.id,
      authorId: user.id,
      body,
      system: true,
      inboundMessageId: context.inboundMessageId,
    });
  }
  return changes;
}

/** GitLab's condition of each command, checked against the issue as the commands before it left it. */
function mayRun(name: string, noteable: Noteable, { user, project, repos, creating = false }: QuickActionContext): boolean {
  switch (name) {
    case 'close':
    case 'reopen':
    case 'title':
      return !creating && canUpdate(user, project, noteable, repos);
    case 'unlabel':
    case 'unassign':
      return !creating && canSetMetadata(user, project, creating, repos);
    case 'label':
    case 'assign':
      return canSetMetadata(user, project, creating, repos);
    case 'confidential':
      // set_confidentiality: set_issue_metadata, or creating the issue.
      return creating || canSetMetadata(user, project, creating, repos);
    case 'subscribe':
    case 'unsubscribe':
      // Whoever can see it; the author of a new issue is subscribed by writing it.
      return !creating && canSee(user, project, noteable, repos);
    default:
      return false;
  }
}

/** The users an `/assign` or `/unassign` names, as GitLab reads them: `me`, `@name` or a bare `name`. */
function usersNamed(argument: string, { user, repos }: QuickActionContext): User[] {
  const named = argument.split(/[\s,]+/).filter(Boolean).map((word) => (word.toLowerCase() === 'me' ? user : repos.users.findByUsernameAnyCase(word.replace(/^@/, ''))));
  // The Support Bot is nobody to assign.
  const found = named.filter((u): u is User => u !== undefined && u.userType === 'human');
  return found.filter((u, i) => found.findIndex((v) => v.id === u.id) === i);
}

function apply(action: QuickAction, noteable: Noteable, context: QuickActionContext): string | null {
  const { repos, project } = context;
  const { row } = noteable;
  const what = noteable.type === 'Issue' ? 'issue' : 'merge request';
  switch (action.name) {
    case 'close':
      if (row.state !== 'opened') return null;
      if (noteable.type === 'Issue') repos.issuables.updateIssue(row.id, { state: 'closed' });
      else repos.issuables.updateMergeRequest(row.id, { state: 'closed' });
      return 'closed';
    case 'reopen':
      if (row.state !== 'closed') return null;
      if (noteable.type === 'Issue') repos.issuables.updateIssue(row.id, { state: 'opened' });
      else {
        // As GitLab (validate_branches): never two open merge requests of the same branches.
        const open = repos.issuables.findOpenMergeRequest(noteable.row.projectId, noteable.row.sourceBranch, noteable.row.targetBranch);
        if (open && open.id !== row.id) return null;
        repos.issuables.updateMergeRequest(row.id, { state: 'opened' });
      }
      return 'reopened';
    case 'title': {
      const title = itemTitle(action.argument);
      if (!title || title === row.title) return null;
      if (noteable.type === 'Issue') repos.issuables.updateIssue(row.id, { title });
      else repos.issuables.updateMergeRequest(row.id, { title });
      return `changed title from **${row.title}** to **${title}**`;
    }
    case 'label':
    case 'unlabel': {
      if (noteable.type !== 'Issue') return null;
      const labels = labelsIn(action.argument);
      if (action.name === 'unlabel' && labels.length === 0) {
        const removed = repos.issuables.removeAllLabels(row.id);
        return removed.length ? `removed ${removed.map((l) => `~${l}`).join(' ')} ${plural(removed, 'label')}` : null;
      }
      const changed = labels.filter((l) => (action.name === 'label' ? repos.issuables.addLabel(row.id, l) : repos.issuables.removeLabel(row.id, l)));
      if (changed.length === 0) return null;
      return `${action.name === 'label' ? 'added' : 'removed'} ${changed.map((l) => `~${l}`).join(' ')} ${plural(changed, 'label')}`;
    }
    case 'assign': {
      if (noteable.type !== 'Issue') return null;
      const assigned = usersNamed(action.argument, context)
        // As GitLab: someone who cannot see the issue is left out, silently.
        .filter((u) => canSee(u, project, noteable, repos) && repos.issuables.addAssignee(row.id, u.id));
      return assigned.length ? `assigned to ${assigned.map((u) => `@${u.username}`).join(' ')}` : null;
    }
    case 'unassign': {
      if (noteable.type !== 'Issue') return null;
      // Without names, everyone assigned.
      const unassigned = action.argument.trim() === ''
        ? repos.issuables.removeAllAssignees(row.id).map((id) => repos.users.findById(id)).filter((u) => u !== undefined)
        : usersNamed(action.argument, context).filter((u) => repos.issuables.removeAssignee(row.id, u.id));
      return unassigned.length ? `unassigned ${unassigned.map((u) => `@${u.username}`).join(' ')}` : null;
    }
    case 'subscribe':
    case 'unsubscribe':
      // The user's own setting: GitLab writes no system note for it.
      repos.issuables.setSubscription({ userId: context.user.id, noteableType: noteable.type, noteableId: row.id, subscribed: action.name === 'subscribe' });
      return null;
    case 'confidential':
      if (noteable.type !== 'Issue' || noteable.row.confidential) return null;
      repos.issuables.updateIssue(row.id, { confidential: true });
      return `made the ${what} confidential`;
    default:
      return null;
  }
}

function labelsIn(argument: string): string[] {
  return [...argument.matchAll(/~(?:"([^"]+)"|([^\s~"]+))/g)].map((m) => (m[1] ?? m[2]) as string);
}

function plural(items: string[], word: string): string {
  return items.length === 1 ? word : `${word}s`;
}
