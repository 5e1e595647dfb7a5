// service-desk: Service Desk. Mail from anyone becomes an issue (confidential by default) with an external author;
// a later mail in the same thread (In-Reply-To or References naming a stored Message-ID) becomes a
// note on it. Quick actions from outside are shown, never run. Side effects: issues, notes, participants.
import type { ProjectRef } from '../address/keys.js';
import type { Issue } from '../db/repos/issuables.repo.js';
import type { Project } from '../db/repos/projects.repo.js';
import { MailRejection } from '../errors.js';
import { redactQuickActions } from '../text/quick-actions.js';
import { checkNotArchived } from './access.js';
import { storeAttachments } from './attachments.js';
import { wholeBody } from './body.js';
import type { Handler, HandlerContext, ParsedMessage } from './handler.js';
import { resolveProject } from './resolve.js';
import { itemTitle } from '../text/title.js';

/** GitLab's MAX_NUMBER_OF_RECORDS: external participants per issue. */
export const MAX_PARTICIPANTS = 10;
/** GitLab's MAX_NUMBER_OF_EMAILS: new participants one mail's Cc may add. */
export const MAX_CC_PARTICIPANTS_PER_MAIL = 6;

export const serviceDeskHandler: Handler<{ project: ProjectRef }, { project: Project }> = {
  name: 'service_desk',
  resolve(form, repos) {
    const project = resolveProject(form.project, repos);
    if (!project.serviceDeskEnabled) throw new MailRejection('rcpt.project_not_found');
    checkNotArchived(project);
    return { project };
  },
  destination: ({ project }) => `service_desk:${project.id}`,
  handle({ project }, message, context) {
    const { repos } = context;
    const sender = externalSender(message);
    const thread = repos.issuables.findIssueByEmailMessageId(project.id, [...message.inReplyTo, ...message.references]);
    if (thread) {
      const body = redactQuickActions(wholeBody(message.text, { allowOnlyQuotes: false }));
      const noteId = externalNote({ issue: thread, project, sender, body, discussionId: null }, message, context);
      return { targetType: 'Note', targetId: noteId };
    }
    const title = itemTitle(message.subject ?? '');
    if (!title) throw new MailRejection('data.invalid_issue');
    const description = redactQuickActions(wholeBody(message.text, { allowOnlyQuotes: true }));
    const issue = repos.issuables.createIssue({ projectId: project.id, authorId: null, externalAuthor: sender, title, description, confidential: project.visibility === 'public' || project.serviceDeskConfidential });
    const withFiles = storeAttachments(description, message.attachments, { type: 'Issue', id: issue.id }, context);
    if (withFiles !== description) repos.issuables.setDescription('Issue', issue.id, withFiles);
    joinThread(issue.id, project, sender, message, context);
    return { targetType: 'Issue', targetId: issue.id };
  },
};

/** Who a customer's mail is from, in GitLab's order: Reply-To, From, then Sender. */
export function externalSender(message: ParsedMessage): string | null {
  return message.replyTo ?? message.from ?? message.sender;
}

/**
 * A note by someone outside (a Service Desk customer): its quick actions were redacted already. The
 * sender and, with the setting on, the Cc join the issue; a closed one reopens when the project says.
 * Returns the note's id.
 */
export function externalNote(
  note: { issue: Issue; project: Project; sender: string | null; body: string; discussionId: string | null },
  message: ParsedMessage,
  context: HandlerContext,
): number {
  const { issue, project, sender, body } = note;
  const { repos, inboundMessageId } = context;
  if (body === '' && message.attachments.length === 0) throw new MailRejection('data.blank');
  const noteId = repos.notes.create({ projectId: project.id, noteableType: 'Issue', noteableId: issue.id, authorId: null, externalAuthor: sender, body, discussionId: note.discussionId, inboundMessageId });
  const withFiles = storeAttachments(body, message.attachments, { type: 'Note', id: noteId }, context);
  if (withFiles !== body) repos.notes.setBody(noteId, withFiles);
  joinThread(issue.id, project, sender, message, context);
  if (issue.state === 'closed' && project.serviceDeskReopen) {
    repos.issuables.updateIssue(issue.id, { state: 'opened' });
    repos.notes.create({ projectId: project.id, noteableType: 'Issue', noteableId: issue.id, authorId: null, body: 'reopened', system: true, inboundMessageId });
  } else {
    repos.issuables.touchIssue(issue.id);
  }
  return noteId;
}

/**
 * A customer's mail joins its issue's thread: its Message-ID, so that replies to it find the issue, and
 * its sender as a participant; with the project's setting on, its Cc too, as in GitLab.
 */
function joinThread(issueId: number, project: Project, sender: string | null, message: ParsedMessage, context: HandlerContext): void {
  const { repos } = context;
  if (message.messageId) repos.issuables.addIssueEmail(issueId, message.messageId);
  if (sender) repos.issuables.addParticipant(issueId, sender);
  if (!project.serviceDeskCcParticipants) return;
  let added = 0;
  for (const address of message.cc) {
    if (added >= MAX_CC_PARTICIPANTS_PER_MAIL || repos.issuables.participantsOf(issueId).length >= MAX_PARTICIPANTS) break;
    // An address without a domain (`Cc: bob`) is no one's to write to.
    if (address.includes('@') && !context.isOwnAddress(address) && repos.issuables.addParticipant(issueId, address)) added++;
  }
}
