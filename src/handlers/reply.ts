// reply: Reply by Email. A reply to a notification becomes a note by its recipient, whose quick actions
// run; to one Service Desk sent (its recipient the Support Bot), a note by whoever answers. Input: a
// reply key and a parsed message (untrusted). Side effects: notes, attachments, quick actions' changes.
import { replyKeyStem, type ReplyKey } from '../address/reply-key.js';
import type { Repositories } from '../db/repositories.js';
import type { Noteable } from '../db/repos/issuables.repo.js';
import type { SentNotification } from '../db/repos/notifications.repo.js';
import type { Project } from '../db/repos/projects.repo.js';
import type { User } from '../db/repos/users.repo.js';
import { MailRejection } from '../errors.js';
import { extractQuickActions, ISSUE_ACTIONS, MERGE_REQUEST_ACTIONS, redactQuickActions } from '../text/quick-actions.js';
import { checkCanComment, checkNotArchived } from './access.js';
import { storeAttachments } from './attachments.js';
import { trimmedBody, withCollapsedQuote } from './body.js';
import type { Handler } from './handler.js';
import { runQuickActions } from './quick-actions.js';
import { externalNote, externalSender } from './service-desk.js';

export interface NotificationTarget {
  notification: SentNotification;
  recipient: User;
  project: Project;
  noteable: Noteable;
}

/** The live notification a reply key names; shared with unsubscribe. */
export function resolveNotification(key: ReplyKey, repos: Repositories): NotificationTarget {
  const notification = repos.notifications.findByKey(key.key, key.form === 'partitioned' ? replyKeyStem(key) : null);
  if (!notification) throw new MailRejection('rcpt.unknown_reply_key');
  const noteable = repos.issuables.findNoteable(notification.noteableType, notification.noteableId);
  if (!noteable) throw new MailRejection('rcpt.noteable_gone');
  // Foreign keys cascade: a notification outlives neither its recipient nor its project.
  const recipient = repos.users.findById(notification.recipientId);
  const project = repos.projects.findById(notification.projectId);
  if (!recipient || !project) throw new MailRejection('rcpt.unknown_reply_key');
  return { notification, recipient, project, noteable };
}

export const replyHandler: Handler<{ replyKey: ReplyKey }, NotificationTarget> = {
  name: 'reply',
  resolve({ replyKey }, repos) {
    const target = resolveNotification(replyKey, repos);
    if (target.recipient.userType === 'support_bot') {
      // Sent by Service Desk to its issue's external participants: answered by one of them.
      if (target.recipient.state === 'blocked') throw new MailRejection('rcpt.user_blocked');
      if (!target.project.serviceDeskEnabled) throw new MailRejection('rcpt.project_not_found');
      if (target.noteable.type !== 'Issue') throw new MailRejection('rcpt.not_permitted');
      checkNotArchived(target.project);
      return target;
    }
    checkCanComment(target.recipient, target.project, target.noteable, repos);
    return target;
  },
  destination: ({ noteable }) => `${noteable.type}:${noteable.row.id}`,
  handle(target, message, context) {
    const { repos, inboundMessageId } = context;
    if (target.recipient.userType === 'support_bot' && target.noteable.type === 'Issue') {
      // As GitLab for the Support Bot: no sender check (any participant may answer), the sender is the
      // note's external author, and quick actions are shown, never run.
      const { body, elided } = trimmedBody(message.text);
      const text = redactQuickActions(body);
      if (text === '' && message.attachments.length === 0) throw new MailRejection('data.blank');
      const noteId = externalNote(
        { issue: target.noteable.row, project: target.project, sender: externalSender(message), body: withCollapsedQuote(text, elided), discussionId: target.notification.inReplyToDiscussionId },
        message,
        context,
      );
      return { targetType: 'Note', targetId: noteId };
    }
    // GitLab takes Reply-To before From; either must be an address the recipient has verified, so a
    // forwarded notification cannot be answered by whoever it was forwarded to.
    const sender = message.replyTo ?? message.from;
    if (!sender || !repos.users.hasVerifiedEmail(target.recipient.id, sender)) {
      throw new MailRejection('data.sender_not_verified');
    }
    const { body, elided } = trimmedBody(message.text);
    const { text, actions } = extractQuickActions(body, target.noteable.type === 'Issue' ? ISSUE_ACTIONS : MERGE_REQUEST_ACTIONS);
    if (text === '' && actions.length === 0 && message.attachments.length === 0) throw new MailRejection('data.blank');
    const quickActionContext = { user: target.recipient, project: target.project, noteable: target.noteable, repos, inboundMessageId };
    runQuickActions(actions, quickActionContext);
    const { noteable } = target;
    // A reply of nothing but commands changes the issue and leaves no note, as in GitLab.
    if (text === '' && message.attachments.length === 0) return { targetType: noteable.type, targetId: noteable.row.id };
    const finish = (body: string) => (noteable.type === 'Issue' ? withCollapsedQuote(body, elided) : body);
    // Attachment links need the note's id, so with files the body is written twice; without, once.
    const noteId = repos.notes.create({
      projectId: target.project.id,
      noteableType: noteable.type,
      noteableId: noteable.row.id,
      authorId: target.recipient.id,
      body: message.attachments.length === 0 ? finish(text) : text,
      discussionId: target.notification.inReplyToDiscussionId,
      inboundMessageId,
    });
    if (message.attachments.length > 0) {
      const final = finish(storeAttachments(text, message.attachments, { type: 'Note', id: noteId }, context));
      if (final !== text) repos.notes.setBody(noteId, final);
    }
    if (noteable.type === 'Issue') repos.issuables.touchIssue(noteable.row.id);
    return { targetType: 'Note', targetId: noteId };
  },
};
