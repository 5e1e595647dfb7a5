// unsubscribe: a mail to KEY-unsubscribe (or the legacy KEY+unsubscribe) unsubscribes the
// notification's recipient from its issue or merge request. Like GitLab, the key is the credential:
// the sender is not checked. Side effects: writes a subscriptions row.
import type { ReplyKey } from '../address/reply-key.js';
import type { Handler } from './handler.js';
import { resolveNotification, type NotificationTarget } from './reply.js';

export const unsubscribeHandler: Handler<{ replyKey: ReplyKey }, NotificationTarget> = {
  name: 'unsubscribe',
  resolve: ({ replyKey }, repos) => resolveNotification(replyKey, repos),
  destination: ({ recipient, noteable }) => `unsubscribe:${recipient.id}:${noteable.type}:${noteable.row.id}`,
  handle(target, _message, { repos }) {
    repos.issuables.setSubscription({
      userId: target.recipient.id,
      noteableType: target.noteable.type,
      noteableId: target.noteable.row.id,
      subscribed: false,
    });
    return { targetType: target.noteable.type, targetId: target.noteable.row.id };
  },
};
