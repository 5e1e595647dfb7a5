// unsubscribe: a mail to KEY-unsubscribe (or KEY+unsubscribe) unsubscribes the notification's recipient
// from its issue or merge request, or for one Service Desk sent, takes the sender off its participants.
// The key is the credential, as in GitLab. Side effects: a subscriptions row, or a participant less.
import type { ReplyKey } from '../address/reply-key.js';
import type { Handler } from './handler.js';
import { resolveNotification, type NotificationTarget } from './reply.js';
import { externalSender } from './service-desk.js';

export const unsubscribeHandler: Handler<{ replyKey: ReplyKey }, NotificationTarget> = {
  name: 'unsubscribe',
  resolve: ({ replyKey }, repos) => resolveNotification(replyKey, repos),
  destination: ({ recipient, noteable }) => `unsubscribe:${recipient.id}:${noteable.type}:${noteable.row.id}`,
  handle(target, message, { repos }) {
    // A Service Desk notification's key (its recipient the Support Bot): the customer who writes stops
    // being a participant, which is what they mean; GitLab would unsubscribe the bot.
    if (target.recipient.userType === 'support_bot') {
      const sender = externalSender(message);
      if (sender && target.noteable.type === 'Issue') repos.issuables.removeParticipant(target.noteable.row.id, sender);
      return { targetType: target.noteable.type, targetId: target.noteable.row.id };
    }
    repos.issuables.setSubscription({
      userId: target.recipient.id,
      noteableType: target.noteable.type,
      noteableId: target.noteable.row.id,
      subscribed: false,
    });
    return { targetType: target.noteable.type, targetId: target.noteable.row.id };
  },
};
