// issue-note: comment on an issue by email (`...-issue-<iid>`). The whole body becomes a note by the
// token's user, quotes included: it is meant for forwarding mail into an issue.
// Side effects: writes a note, attachments, and the changes quick actions make.
import type { ProjectRef } from '../address/keys.js';
import type { Issue } from '../db/repos/issuables.repo.js';
import { MailRejection } from '../errors.js';
import { extractQuickActions } from '../text/quick-actions.js';
import { checkCanComment } from './access.js';
import { storeAttachments } from './attachments.js';
import { wholeBody } from './body.js';
import type { Handler } from './handler.js';
import { resolveAuthorTarget, type AuthorTarget } from './new-issue.js';
import { runQuickActions } from './quick-actions.js';

export const issueNoteHandler: Handler<{ project: ProjectRef; token: string; issueIid: number }, AuthorTarget & { issue: Issue }> = {
  name: 'issue_note',
  resolve(form, repos) {
    const target = resolveAuthorTarget(form, repos);
    const issue = repos.issuables.findIssueByIid(target.project.id, form.issueIid);
    if (!issue) throw new MailRejection('rcpt.noteable_gone');
    checkCanComment(target.author, target.project, { type: 'Issue', row: issue }, repos);
    return { ...target, issue };
  },
  destination: ({ issue }) => `Issue:${issue.id}`,
  handle({ project, author, issue }, message, context) {
    const { repos, inboundMessageId } = context;
    // Unlike GitLab, a forward of nothing but quotes is kept: forwarding mail into an issue is what
    // this address is for, and an HTML forward's quotation is a Markdown quote (html-to-markdown.ts).
    const { text, actions } = extractQuickActions(wholeBody(message.text, { allowOnlyQuotes: true }));
    if (text === '' && actions.length === 0 && message.attachments.length === 0) throw new MailRejection('data.blank');
    runQuickActions(actions, { user: author, project, noteable: { type: 'Issue', row: issue }, repos, inboundMessageId });
    if (text === '' && message.attachments.length === 0) return { targetType: 'Issue', targetId: issue.id };
    const noteId = repos.notes.create({ projectId: project.id, noteableType: 'Issue', noteableId: issue.id, authorId: author.id, body: text, inboundMessageId });
    const body = storeAttachments(text, message.attachments, { type: 'Note', id: noteId }, context);
    if (body !== text) repos.notes.setBody(noteId, body);
    repos.issuables.touchIssue(issue.id);
    return { targetType: 'Note', targetId: noteId };
  },
};
