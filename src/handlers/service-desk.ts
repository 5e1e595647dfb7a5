// service-desk: Service Desk. Mail from anyone becomes a confidential issue with an external author;
// a later mail in the same thread (In-Reply-To or References naming a stored Message-ID) becomes a
// note on it. Quick actions from outside are shown, never run. Side effects: issues, notes, participants.
import type { ProjectRef } from '../address/keys.js';
import type { Project } from '../db/repos/projects.repo.js';
import { MailRejection } from '../errors.js';
import { redactQuickActions } from '../text/quick-actions.js';
import { storeAttachments } from './attachments.js';
import { wholeBody } from './body.js';
import type { Handler, HandlerContext } from './handler.js';
import { resolveProject } from './resolve.js';
import { itemTitle } from '../text/title.js';

/** GitLab's MAX_NUMBER_OF_RECORDS: external participants per issue. */
export const MAX_PARTICIPANTS = 10;

export const serviceDeskHandler: Handler<{ project: ProjectRef }, { project: Project }> = {
  name: 'service_desk',
  resolve(form, repos) {
    const project = resolveProject(form.project, repos);
    if (!project.serviceDeskEnabled) throw new MailRejection('rcpt.project_not_found');
    return { project };
  },
  destination: ({ project }) => `service_desk:${project.id}`,
  handle({ project }, message, context) {
    const { repos, inboundMessageId } = context;
    // GitLab's order: Reply-To, From, then Sender.
    const sender = message.replyTo ?? message.from ?? message.sender;
    const thread = repos.issuables.findIssueByEmailMessageId(project.id, [...message.inReplyTo, ...message.references]);
    if (thread) {
      const body = redactQuickActions(wholeBody(message.text, { allowOnlyQuotes: false }));
      if (body === '' && message.attachments.length === 0) throw new MailRejection('data.blank');
      const noteId = repos.notes.create({ projectId: project.id, noteableType: 'Issue', noteableId: thread.id, authorId: null, externalAuthor: sender, body, inboundMessageId });
      const withFiles = storeAttachments(body, message.attachments, { type: 'Note', id: noteId }, context);
      if (withFiles !== body) repos.notes.setBody(noteId, withFiles);
      if (message.messageId) repos.issuables.addIssueEmail(thread.id, message.messageId);
      if (sender) repos.issuables.addParticipant(thread.id, sender);
      addCcParticipants(thread.id, project, message.cc, context);
      if (thread.state === 'closed' && project.serviceDeskReopen) {
        repos.issuables.updateIssue(thread.id, { state: 'opened' });
        repos.notes.create({ projectId: project.id, noteableType: 'Issue', noteableId: thread.id, authorId: null, body: 'reopened', system: true, inboundMessageId });
      } else {
        repos.issuables.touchIssue(thread.id);
      }
      return { targetType: 'Note', targetId: noteId };
    }
    const title = itemTitle(message.subject ?? '');
    if (!title) throw new MailRejection('data.invalid_issue');
    const description = redactQuickActions(wholeBody(message.text, { allowOnlyQuotes: true }));
    const issue = repos.issuables.createIssue({ projectId: project.id, authorId: null, externalAuthor: sender, title, description, confidential: true });
    const withFiles = storeAttachments(description, message.attachments, { type: 'Issue', id: issue.id }, context);
    if (withFiles !== description) repos.issuables.setDescription('Issue', issue.id, withFiles);
    if (message.messageId) repos.issuables.addIssueEmail(issue.id, message.messageId);
    if (sender) repos.issuables.addParticipant(issue.id, sender);
    addCcParticipants(issue.id, project, message.cc, context);
    return { targetType: 'Issue', targetId: issue.id };
  },
};

/** With the project's setting on, the Cc addresses of a new request or of a reply join the issue, as in GitLab. */
function addCcParticipants(issueId: number, project: Project, cc: string[], context: HandlerContext): void {
  if (!project.serviceDeskCcParticipants) return;
  for (const address of cc) {
    if (context.repos.issuables.participantsOf(issueId).length >= MAX_PARTICIPANTS) break;
    if (!context.isOwnAddress(address)) context.repos.issuables.addParticipant(issueId, address);
  }
}
