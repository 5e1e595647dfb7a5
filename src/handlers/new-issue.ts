// new-issue: New issue by email. The token in the key names the author; the subject is the title and
// the whole body (quotes kept) the description. Side effects: writes an issue and its attachments.
import type { ProjectRef } from '../address/keys.js';
import type { Project } from '../db/repos/projects.repo.js';
import type { User } from '../db/repos/users.repo.js';
import { MailRejection } from '../errors.js';
import { extractQuickActions } from '../text/quick-actions.js';
import { checkCanCreateIssue } from './access.js';
import { storeAttachments } from './attachments.js';
import { wholeBody } from './body.js';
import type { Handler } from './handler.js';
import { runQuickActions } from './quick-actions.js';
import { resolveProject, resolveTokenUser } from './resolve.js';
import { itemTitle } from '../text/title.js';

export interface AuthorTarget {
  project: Project;
  author: User;
}

/** Project and token user of a new-issue, comment or merge-request key. */
export function resolveAuthorTarget(form: { project: ProjectRef; token: string }, repos: Parameters<typeof resolveProject>[1]): AuthorTarget {
  const project = resolveProject(form.project, repos);
  const author = resolveTokenUser(form.token, repos);
  return { project, author };
}

export const newIssueHandler: Handler<{ project: ProjectRef; token: string }, AuthorTarget> = {
  name: 'new_issue',
  resolve(form, repos) {
    const target = resolveAuthorTarget(form, repos);
    checkCanCreateIssue(target.author, target.project, repos);
    return target;
  },
  destination: ({ project }) => `new_issue:${project.id}`,
  handle({ project, author }, message, context) {
    const { repos, inboundMessageId } = context;
    const title = itemTitle(message.subject ?? '');
    if (!title) throw new MailRejection('data.invalid_issue');
    // Forwarding a mail with no comment of one's own is a normal way to file an issue: keep quotes.
    const { text, actions } = extractQuickActions(wholeBody(message.text, { allowOnlyQuotes: true }));
    const issue = repos.issuables.createIssue({ projectId: project.id, authorId: author.id, title, description: text });
    const description = storeAttachments(text, message.attachments, { type: 'Issue', id: issue.id }, context);
    if (description !== text) repos.issuables.setDescription('Issue', issue.id, description);
    runQuickActions(actions, { user: author, project, noteable: { type: 'Issue', row: issue }, repos, inboundMessageId, creating: true });
    return { targetType: 'Issue', targetId: issue.id };
  },
};
