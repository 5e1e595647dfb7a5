// The world GitLab's incoming-email specs set up (test/fixtures/emails/gitlab/README.md, "What the specs
// set up"), seeded through the real repositories into a running intake, and the corpus fixtures with
// their placeholders filled in, sent over SMTP byte for byte (LF turned into the wire's CRLF).
import { readFileSync } from 'node:fs';
import { fullPathSlug } from '../../src/address/keys.js';
import { compileTemplate, type AddressTemplate } from '../../src/address/template.js';
import type { Issue, MergeRequest } from '../../src/db/repos/issuables.repo.js';
import type { SentNotification } from '../../src/db/repos/notifications.repo.js';
import type { Project } from '../../src/db/repos/projects.repo.js';
import type { User } from '../../src/db/repos/users.repo.js';
import { startServer, type RunningServer } from './server.js';
import { SmtpClient, type SmtpReply } from './smtp-client.js';

/** The address templates of the specs, one per intake server. */
export const ADDRESS = {
  /** Replies to notifications and unsubscribing (create_note / unsubscribe handler specs). */
  reply: 'reply+%{key}@appmail.adventuretime.ooo',
  /** New issue, new merge request, comment on an issue, Service Desk. */
  incoming: 'incoming+%{key}@appmail.adventuretime.ooo',
  /** The newest receiver spec's header-discovery tests. */
  receiver: 'incoming+%{key}@appmail.example.com',
  /** The Service Desk alias address of the custom-address tests. */
  alias: 'support+%{key}@example.com',
} as const;

/** GitLab's host: its own Message-IDs look like `reply-KEY@localhost`. */
export const GITLAB_HOST = 'localhost';
export const REPLY_KEY = '59d8df8370b7e95c5a49fbf86aeb2c93';
export const AUTO_REPLY_KEY = '636ca428858779856c226bb145ef4fad';
export const SERVICE_DESK_KEY = 'mykey';
export const JAKE = 'jake@adventuretime.ooo';
/** The thread of the note the notification was about; replies join it. */
export const DISCUSSION_ID = 'eviltrout-posted-in-adventure-time-sux';

const FIXTURES = new URL('../fixtures/emails/gitlab/', import.meta.url);

export interface WorldOptions {
  /** INTAKE_ADDRESS of the server. */
  address: string;
  /** Jake's access level on gitlabhq/gitlabhq (the merge-request specs make him a developer); null: no member. */
  jakeAccessLevel?: number | null;
  /** What the notification holding REPLY_KEY was about. */
  notificationOn?: 'Issue' | 'MergeRequest';
  /** Service Desk's "add external participants from Cc" on email/test. */
  serviceDeskCcParticipants?: boolean;
  /** A fixed id for email/test, to keep another id free for a fixture that names it. */
  serviceDeskProjectId?: number;
}

export interface Sent {
  rcpt: SmtpReply[];
  /** The reply at the end of DATA; null when every recipient was refused and no DATA was sent. */
  data: SmtpReply | null;
  /** The inbound_messages row the transaction left. */
  inboundMessageId: number;
}

export interface InboundRow {
  id: number;
  status: string;
  reason_code: string | null;
  handler: string | null;
  target_type: string | null;
  target_id: number | null;
  smtp_reply: string | null;
  mail_from: string | null;
  rcpt_to: string;
  message_id: string | null;
  from_address: string | null;
  subject: string | null;
  raw: Buffer | null;
}

export interface DeliveryRow {
  recipient: string;
  key: string | null;
  source: string | null;
  destination: string | null;
  stage: string;
  status: string;
  reason_code: string | null;
  handler: string | null;
  target_type: string | null;
  target_id: number | null;
}

export interface NoteRow {
  id: number;
  project_id: number;
  noteable_type: string;
  noteable_id: number;
  author_id: number | null;
  external_author: string | null;
  body: string;
  system: number;
  discussion_id: string | null;
  inbound_message_id: number | null;
}

export interface IssueRow {
  id: number;
  project_id: number;
  iid: number;
  title: string;
  description: string;
  author_id: number | null;
  external_author: string | null;
  confidential: number;
  state: string;
}

export interface MergeRequestRow {
  id: number;
  project_id: number;
  iid: number;
  title: string;
  description: string;
  source_branch: string;
  target_branch: string;
  author_id: number | null;
  state: string;
}

export interface AttachmentRow {
  id: number;
  inbound_message_id: number | null;
  owner_type: string;
  owner_id: number;
  filename: string;
  content_type: string;
  size: number;
}

export interface GitlabWorld {
  server: RunningServer;
  template: AddressTemplate;
  /** The template with `+%{key}` removed: where mail whose key is only in its headers is delivered. */
  mailbox: string;
  jake: User;
  eviltrout: User;
  /** gitlabhq/gitlabhq, public, default branch `master`. */
  gitlabhq: Project;
  /** email/test, private, Service Desk on with key `mykey`. */
  serviceDesk: Project;
  /** Issue #1 of gitlabhq/gitlabhq, by eviltrout. */
  issue: Issue;
  /** Merge request !1 of gitlabhq/gitlabhq, by eviltrout. */
  mergeRequest: MergeRequest;
  /** The notification holding REPLY_KEY, sent to jake. */
  notification: SentNotification;
  address(key: string): string;
  /** The fixture's bytes with the specs' placeholders (and any `extra` strings) replaced. */
  fixture(name: string, extra?: Record<string, string>): Buffer;
  /** One SMTP transaction: EHLO, MAIL FROM, RCPT TO each, DATA if any recipient was accepted. */
  send(message: Buffer, envelope: { from: string; to: string[] }): Promise<Sent>;
  /** RCPT TO only (then QUIT): the reply line. */
  rcptOnly(to: string, from?: string): Promise<string>;
  /** Adds a verified address to jake, so that mail From it counts as his. */
  addJakeAddress(email: string): void;
  inbound(id: number): InboundRow;
  deliveries(inboundMessageId: number): DeliveryRow[];
  notes(noteableType: 'Issue' | 'MergeRequest', noteableId: number): NoteRow[];
  issues(projectId: number): IssueRow[];
  issue_(id: number): IssueRow;
  mergeRequests(projectId: number): MergeRequestRow[];
  attachments(): AttachmentRow[];
  participants(issueId: number): string[];
  issueEmails(issueId: number): string[];
  labels(issueId: number): string[];
  assignees(issueId: number): number[];
  subscriptions(): { user_id: number; noteable_type: string; noteable_id: number; subscribed: number }[];
  count(table: string): number;
  stop(): Promise<void>;
}

/**
 * The message as SMTP carries it: LF line ends become CRLF, every other byte stays, and it ends with the
 * CRLF before the final "." (part of the message; fixtures without a final newline gain it).
 */
export function toWire(bytes: Buffer): Buffer {
  const text = bytes.toString('latin1').replace(/\r?\n/g, '\r\n');
  return Buffer.from(text.endsWith('\r\n') ? text : `${text}\r\n`, 'latin1');
}

/** The fixture exactly as stored in test/fixtures/emails/gitlab/. */
export function readFixture(name: string): Buffer {
  return readFileSync(new URL(name, FIXTURES));
}

export async function startGitlabWorld(options: WorldOptions): Promise<GitlabWorld> {
  const server = await startServer({ INTAKE_ADDRESS: options.address, INTAKE_HOSTNAME: GITLAB_HOST });
  const { repos } = server;
  const template = compileTemplate(options.address);
  const seeded = repos.transaction(() => {
    const jake = repos.users.create({ username: 'jake', name: 'Jake the Dog', email: JAKE, incomingEmailToken: 'auth_token' });
    const eviltrout = repos.users.create({ username: 'eviltrout', name: 'Evil Trout', email: 'eviltrout@adventuretime.ooo', incomingEmailToken: 'eviltrout_token' });
    const gitlabhq = repos.projects.create({ path: 'gitlabhq/gitlabhq', name: 'gitlabhq', visibility: 'public', defaultBranch: 'master' });
    const serviceDesk = repos.projects.create({
      ...(options.serviceDeskProjectId === undefined ? {} : { id: options.serviceDeskProjectId }),
      path: 'email/test',
      name: 'test',
      visibility: 'private',
      serviceDeskEnabled: true,
      serviceDeskKey: SERVICE_DESK_KEY,
      serviceDeskCcParticipants: options.serviceDeskCcParticipants ?? false,
    });
    const level = options.jakeAccessLevel === undefined ? 30 : options.jakeAccessLevel;
    if (level !== null) repos.projects.setMember({ projectId: gitlabhq.id, userId: jake.id, accessLevel: level });
    const issue = repos.issuables.createIssue({ projectId: gitlabhq.id, authorId: eviltrout.id, title: 'Adventure Time Sux', description: 'hey guys everyone knows adventure time sucks!' });
    const mergeRequest = repos.issuables.createMergeRequest({
      projectId: gitlabhq.id,
      authorId: eviltrout.id,
      title: 'Keep the old candy in silos',
      description: '',
      sourceBranch: 'candy-silos',
      targetBranch: 'master',
    });
    const on = options.notificationOn ?? 'Issue';
    const notification = repos.notifications.create({
      replyKey: REPLY_KEY,
      projectId: gitlabhq.id,
      recipientId: jake.id,
      noteableType: on,
      noteableId: on === 'Issue' ? issue.id : mergeRequest.id,
      inReplyToDiscussionId: DISCUSSION_ID,
    });
    repos.notifications.create({ replyKey: AUTO_REPLY_KEY, projectId: gitlabhq.id, recipientId: jake.id, noteableType: 'Issue', noteableId: issue.id });
    return { jake, eviltrout, gitlabhq, serviceDesk, issue, mergeRequest, notification };
  });
  const sqlite = server.store.sqlite;
  const all = <T>(sql: string, ...params: unknown[]) => sqlite.prepare(sql).all(...params) as T[];

  const placeholders = (): [string, string][] => [
    ['gitlabhq-gitlabhq-project_id', `${fullPathSlug(seeded.gitlabhq.path)}-${seeded.gitlabhq.id}`],
    ['email-test-project_id', `${fullPathSlug(seeded.serviceDesk.path)}-${seeded.serviceDesk.id}`],
    ['project_slug-project_id', `${fullPathSlug(seeded.serviceDesk.path)}-${seeded.serviceDesk.id}`],
    ['project_slug', fullPathSlug(seeded.serviceDesk.path)],
    ['project_key', SERVICE_DESK_KEY],
    ['issue_iid', String(seeded.issue.iid)],
  ];

  const world: GitlabWorld = {
    server,
    template,
    mailbox: template.mailbox as string,
    ...seeded,
    address: (key) => template.format(key),
    fixture(name, extra = {}) {
      // Placeholders are ASCII; latin1 keeps every other byte (Shift_JIS, 8bit) as it is.
      let text = readFixture(name).toString('latin1');
      for (const [from, to] of [...placeholders(), ...Object.entries(extra)]) text = text.split(from).join(to);
      const left = /project_id|issue_iid|project_slug|project_key/.exec(text);
      if (left) throw new Error(`${name}: placeholder ${left[0]} left unreplaced`);
      return Buffer.from(text, 'latin1');
    },
    async send(message, envelope) {
      const { client } = await SmtpClient.connect(server.port);
      try {
        await client.command('EHLO client.test');
        const mail = await client.command(`MAIL FROM:<${envelope.from}>`);
        if (mail.code !== 250) throw new Error(`MAIL FROM refused: ${mail.line}`);
        const rcpt: SmtpReply[] = [];
        for (const to of envelope.to) rcpt.push(await client.command(`RCPT TO:<${to}>`));
        let data: SmtpReply | null = null;
        if (rcpt.some((r) => r.code === 250)) [, data] = await client.data(toWire(message));
        else await client.command('RSET');
        const last = sqlite.prepare('select max(id) as id from inbound_messages').get() as { id: number | null };
        if (last.id === null) throw new Error('the transaction left no inbound_messages row');
        return { rcpt, data, inboundMessageId: last.id };
      } finally {
        await client.quit();
      }
    },
    async rcptOnly(to, from = JAKE) {
      const { client } = await SmtpClient.connect(server.port);
      try {
        await client.command('EHLO client.test');
        await client.command(`MAIL FROM:<${from}>`);
        return (await client.command(`RCPT TO:<${to}>`)).line;
      } finally {
        await client.quit();
      }
    },
    addJakeAddress(email) {
      repos.transaction(() => repos.users.addEmail({ userId: seeded.jake.id, email, verified: true }));
    },
    inbound(id) {
      const row = sqlite
        .prepare(
          'select id, status, reason_code, handler, target_type, target_id, smtp_reply, mail_from, rcpt_to, message_id, from_address, subject, raw from inbound_messages where id = ?',
        )
        .get(id) as InboundRow | undefined;
      if (!row) throw new Error(`no inbound message ${id}`);
      return row;
    },
    deliveries: (id) =>
      all<DeliveryRow>(
        'select recipient, key, source, destination, stage, status, reason_code, handler, target_type, target_id from deliveries where inbound_message_id = ? order by id',
        id,
      ),
    notes: (type, id) =>
      all<NoteRow>(
        'select id, project_id, noteable_type, noteable_id, author_id, external_author, body, system, discussion_id, inbound_message_id from notes where noteable_type = ? and noteable_id = ? order by id',
        type,
        id,
      ),
    issues: (projectId) =>
      all<IssueRow>('select id, project_id, iid, title, description, author_id, external_author, confidential, state from issues where project_id = ? order by id', projectId),
    issue_(id) {
      const row = all<IssueRow>('select id, project_id, iid, title, description, author_id, external_author, confidential, state from issues where id = ?', id)[0];
      if (!row) throw new Error(`no issue ${id}`);
      return row;
    },
    mergeRequests: (projectId) =>
      all<MergeRequestRow>(
        'select id, project_id, iid, title, description, source_branch, target_branch, author_id, state from merge_requests where project_id = ? order by id',
        projectId,
      ),
    attachments: () => all<AttachmentRow>('select id, inbound_message_id, owner_type, owner_id, filename, content_type, size from attachments order by id'),
    participants: (issueId) => all<{ email: string }>('select email from issue_email_participants where issue_id = ? order by id', issueId).map((r) => r.email),
    issueEmails: (issueId) => all<{ m: string }>('select email_message_id as m from issue_emails where issue_id = ? order by id', issueId).map((r) => r.m),
    labels: (issueId) => all<{ label: string }>('select label from issue_labels where issue_id = ? order by id', issueId).map((r) => r.label),
    assignees: (issueId) => all<{ user_id: number }>('select user_id from issue_assignees where issue_id = ? order by id', issueId).map((r) => r.user_id),
    subscriptions: () => all('select user_id, noteable_type, noteable_id, subscribed from subscriptions order by id'),
    count: (table) => (sqlite.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n,
    stop: async () => {
      await server.stop();
    },
  };
  return world;
}
