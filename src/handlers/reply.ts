// reply: Reply by Email. A reply to a notification becomes a note by the notification's recipient.
// Input: a reply key (untrusted) and a parsed message. Side effects: writes notes and attachments.
import { createHash } from 'node:crypto';
import { parseReplyKey, replyKeyStem, type ReplyKey } from '../address/reply-key.js';
import type { Noteable } from '../db/repos/issuables.repo.js';
import type { SentNotification } from '../db/repos/notifications.repo.js';
import type { Project } from '../db/repos/projects.repo.js';
import type { User } from '../db/repos/users.repo.js';
import { MailRejection } from '../errors.js';
import { trimReply } from '../text/trim-reply.js';
import { checkCanComment } from './access.js';
import type { Handler } from './handler.js';

export interface ReplyTarget {
  notification: SentNotification;
  recipient: User;
  project: Project;
  noteable: Noteable;
}

export const replyHandler: Handler<ReplyKey, ReplyTarget> = {
  name: 'reply',
  match: parseReplyKey,
  resolve(key, repos) {
    const notification = repos.notifications.findByKey(key.key, key.form === 'partitioned' ? replyKeyStem(key) : null);
    if (!notification) throw new MailRejection('rcpt.unknown_key');
    const noteable = repos.issuables.findNoteable(notification.noteableType, notification.noteableId);
    if (!noteable) throw new MailRejection('rcpt.noteable_gone');
    // Foreign keys cascade: a notification outlives neither its recipient nor its project.
    const recipient = repos.users.findById(notification.recipientId);
    const project = repos.projects.findById(notification.projectId);
    if (!recipient || !project) throw new MailRejection('rcpt.unknown_key');
    checkCanComment(recipient, project, noteable, repos);
    return { notification, recipient, project, noteable };
  },
  handle(target, message, { repos, inboundMessageId }) {
    // GitLab takes Reply-To before From; either must be an address the recipient has verified, so a
    // forwarded notification cannot be answered by whoever it was forwarded to.
    const sender = message.replyTo ?? message.from;
    if (!sender || !repos.users.hasVerifiedEmail(target.recipient.id, sender)) {
      throw new MailRejection('data.sender_not_verified');
    }
    const { reply } = trimReply(message.text);
    if (reply === '') throw new MailRejection('data.blank');
    const note = repos.notes.create({
      projectId: target.project.id,
      noteableType: target.noteable.type,
      noteableId: target.noteable.row.id,
      authorId: target.recipient.id,
      body: reply,
      discussionId: target.notification.inReplyToDiscussionId,
      inboundMessageId,
    });
    for (const attachment of message.attachments) {
      repos.notes.addAttachment({
        inboundMessageId,
        ownerType: 'Note',
        ownerId: note.id,
        filename: attachment.filename,
        contentType: attachment.contentType,
        size: attachment.content.length,
        sha256: createHash('sha256').update(attachment.content).digest('hex'),
        content: attachment.content,
      });
    }
    if (target.noteable.type === 'Issue') repos.issuables.touchIssue(target.noteable.row.id);
    return { targetType: 'Note', targetId: note.id };
  },
};
