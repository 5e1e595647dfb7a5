// Seed rows for tests, written through the real repositories.
import { mintReplyKey } from '../../src/address/reply-key.js';
import type { Repositories } from '../../src/db/repositories.js';

let counter = 0;

export function seedReplyWorld(repos: Repositories, options: { visibility?: 'private' | 'internal' | 'public'; accessLevel?: number | null; confidential?: boolean } = {}) {
  counter++;
  return repos.transaction(() => {
    const user = repos.users.create({
      username: `jake${counter}`,
      name: 'Jake the Dog',
      email: `jake${counter}@adventuretime.ooo`,
      incomingEmailToken: `glimt-token${counter}`,
    });
    const project = repos.projects.create({ path: `gitlabhq/project${counter}`, name: `project${counter}`, visibility: options.visibility ?? 'private' });
    if (options.accessLevel !== null) repos.projects.setMember({ projectId: project.id, userId: user.id, accessLevel: options.accessLevel ?? 30 });
    const issue = repos.issuables.createIssue({ projectId: project.id, authorId: user.id, title: 'Squeaky widgets', description: '', confidential: options.confidential ?? false });
    const notification = repos.notifications.create({
      replyKey: mintReplyKey(1, project.id),
      projectId: project.id,
      recipientId: user.id,
      noteableType: 'Issue',
      noteableId: issue.id,
      inReplyToDiscussionId: 'd1',
    });
    return { user, project, issue, notification, key: notification.replyKey };
  });
}

export function replyMessage(options: { from: string; to: string; body: string; messageId?: string; headers?: string[] }): string {
  return [
    `From: ${options.from}`,
    `To: ${options.to}`,
    'Subject: Re: Squeaky widgets',
    `Message-ID: ${options.messageId ?? `<${Math.random().toString(36).slice(2)}@client.test>`}`,
    'Date: Wed, 25 Nov 2026 10:00:00 +0000',
    ...(options.headers ?? []),
    '',
    options.body,
    '',
  ].join('\n');
}
