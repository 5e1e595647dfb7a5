// schema: every table, as drizzle definitions. This is a public interface: people read these tables
// with sqlite3, so names are plain and stable, and README.md documents each column.
// Change it, then run `npm run db:generate -- --name <what-changed>` and commit migrations/.
import { sql } from 'drizzle-orm';
import { blob, check, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

const createdAt = () =>
  text('created_at')
    .notNull()
    .default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`);

export const users = sqliteTable(
  'users',
  {
    id: integer('id').primaryKey(),
    username: text('username').notNull().unique(),
    name: text('name').notNull(),
    email: text('email').notNull(),
    incomingEmailToken: text('incoming_email_token').notNull().unique(),
    state: text('state', { enum: ['active', 'blocked'] }).notNull().default('active'),
    /** 'support_bot': GitLab's Support Bot, the recipient of the notifications Service Desk sends to external participants. */
    userType: text('user_type', { enum: ['human', 'support_bot'] }).notNull().default('human'),
    createdAt: createdAt(),
  },
  (t) => [check('users_state', sql`${t.state} in ('active', 'blocked')`)],
);

export const userEmails = sqliteTable(
  'user_emails',
  {
    id: integer('id').primaryKey(),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    email: text('email').notNull(),
    verified: integer('verified', { mode: 'boolean' }).notNull().default(true),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('user_emails_user_email').on(t.userId, sql`lower(${t.email})`), index('user_emails_email').on(sql`lower(${t.email})`)],
);

export const projects = sqliteTable(
  'projects',
  {
    id: integer('id').primaryKey(),
    path: text('path').notNull().unique(),
    name: text('name').notNull(),
    visibility: text('visibility', { enum: ['private', 'internal', 'public'] })
      .notNull()
      .default('private'),
    serviceDeskEnabled: integer('service_desk_enabled', { mode: 'boolean' }).notNull().default(false),
    serviceDeskKey: text('service_desk_key'),
    serviceDeskReopen: integer('service_desk_reopen', { mode: 'boolean' }).notNull().default(false),
    serviceDeskCcParticipants: integer('service_desk_cc_participants', { mode: 'boolean' }).notNull().default(false),
    serviceDeskConfidential: integer('service_desk_confidential', { mode: 'boolean' }).notNull().default(true),
    defaultBranch: text('default_branch').notNull().default('main'),
    archived: integer('archived', { mode: 'boolean' }).notNull().default(false),
    serviceDeskCustomEmail: text('service_desk_custom_email'),
    createdAt: createdAt(),
  },
  (t) => [
    check('projects_visibility', sql`${t.visibility} in ('private', 'internal', 'public')`),
    index('projects_service_desk_key').on(t.serviceDeskKey),
    uniqueIndex('projects_service_desk_custom_email').on(t.serviceDeskCustomEmail),
  ],
);

export const projectMembers = sqliteTable(
  'project_members',
  {
    id: integer('id').primaryKey(),
    projectId: integer('project_id')
      .notNull()
      .references(() => projects.id, { onDelete: 'cascade' }),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    accessLevel: integer('access_level').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('project_members_project_user').on(t.projectId, t.userId),
    check('project_members_access_level', sql`${t.accessLevel} in (10, 20, 30, 40, 50)`),
  ],
);

export const issues = sqliteTable(
  'issues',
  {
    id: integer('id').primaryKey(),
    projectId: integer('project_id')
      .notNull()
      .references(() => projects.id, { onDelete: 'cascade' }),
    iid: integer('iid').notNull(),
    title: text('title').notNull(),
    description: text('description').notNull().default(''),
    authorId: integer('author_id').references(() => users.id, { onDelete: 'set null' }),
    externalAuthor: text('external_author'),
    confidential: integer('confidential', { mode: 'boolean' }).notNull().default(false),
    state: text('state', { enum: ['opened', 'closed'] }).notNull().default('opened'),
    createdAt: createdAt(),
    updatedAt: text('updated_at')
      .notNull()
      .default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`),
  },
  (t) => [uniqueIndex('issues_project_iid').on(t.projectId, t.iid), check('issues_state', sql`${t.state} in ('opened', 'closed')`)],
);

export const mergeRequests = sqliteTable(
  'merge_requests',
  {
    id: integer('id').primaryKey(),
    projectId: integer('project_id')
      .notNull()
      .references(() => projects.id, { onDelete: 'cascade' }),
    iid: integer('iid').notNull(),
    title: text('title').notNull(),
    description: text('description').notNull().default(''),
    sourceBranch: text('source_branch').notNull(),
    targetBranch: text('target_branch').notNull(),
    authorId: integer('author_id').references(() => users.id, { onDelete: 'set null' }),
    state: text('state', { enum: ['opened', 'closed', 'merged'] }).notNull().default('opened'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('merge_requests_project_iid').on(t.projectId, t.iid),
    check('merge_requests_state', sql`${t.state} in ('opened', 'closed', 'merged')`),
  ],
);

export const inboundMessages = sqliteTable(
  'inbound_messages',
  {
    id: integer('id').primaryKey(),
    receivedAt: text('received_at')
      .notNull()
      .default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`),
    ingress: text('ingress', { enum: ['smtp', 'lmtp', 'pipe', 'policy', 'imap', 'graph'] }).notNull(),
    remoteAddress: text('remote_address'),
    helo: text('helo'),
    relayAddress: text('relay_address'),
    tls: text('tls'),
    mailFrom: text('mail_from'),
    rcptTo: text('rcpt_to', { mode: 'json' }).$type<string[]>().notNull(),
    messageId: text('message_id'),
    fromAddress: text('from_address'),
    subject: text('subject'),
    size: integer('size').notNull(),
    sha256: text('sha256'),
    /** NULL when refused before DATA, or when larger than 1 MiB: then it is in inbound_message_chunks. */
    raw: blob('raw', { mode: 'buffer' }),
    status: text('status', { enum: ['processed', 'rejected', 'ignored', 'duplicate', 'failed'] }).notNull(),
    reasonCode: text('reason_code'),
    reason: text('reason'),
    handler: text('handler'),
    targetType: text('target_type'),
    targetId: integer('target_id'),
    smtpReply: text('smtp_reply'),
    processedAt: text('processed_at'),
    /** When its raw message (raw, or its chunks) was dropped for INTAKE_KEEP_RAW_DAYS or `intake prune`; NULL while kept, or when none was received. */
    rawPrunedAt: text('raw_pruned_at'),
    /**
     * INTAKE_AUTHENTICATION's findings (NULL when off, or refused before DATA): SPF of the client (NULL
     * when it was a relay), DKIM, DMARC of the From domain, and the Authentication-Results that says them.
     */
    spf: text('spf'),
    dkim: text('dkim'),
    dmarc: text('dmarc'),
    authenticationResults: text('authentication_results'),
    /**
     * Where an IMAP fetcher found it, as an IMAP URL (RFC 5092) with the mailbox's UIDVALIDITY and the
     * message's UID; NULL for mail received over SMTP, LMTP or a pipe. A message is fetched once.
     */
    fetchedFrom: text('fetched_from'),
  },
  (t) => [
    index('inbound_messages_message_id').on(t.messageId),
    // Where the last pruning stopped, so the next one starts there rather than reading every row again.
    // New rows have no entry (their raw_pruned_at is NULL): storing a message does not pay for it.
    index('inbound_messages_raw_pruned').on(t.id).where(sql`${t.rawPrunedAt} is not null`),
    // Only mail without a Message-ID is recognised by its bytes: the rest need not pay for the index.
    index('inbound_messages_sha256').on(t.sha256).where(sql`${t.messageId} is null`),
    index('inbound_messages_status').on(t.status),
    index('inbound_messages_fetched_from').on(t.fetchedFrom).where(sql`${t.fetchedFrom} is not null`),
    check('inbound_messages_status', sql`${t.status} in ('processed', 'rejected', 'ignored', 'duplicate', 'failed')`),
  ],
);

/** The raw message when it is larger than 1 MiB (inbound_messages.raw is then NULL); see attachmentChunks. */
export const inboundMessageChunks = sqliteTable(
  'inbound_message_chunks',
  {
    inboundMessageId: integer('inbound_message_id')
      .notNull()
      .references(() => inboundMessages.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    data: blob('data', { mode: 'buffer' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.inboundMessageId, t.seq] })],
);

export const deliveries = sqliteTable(
  'deliveries',
  {
    id: integer('id').primaryKey(),
    inboundMessageId: integer('inbound_message_id')
      .notNull()
      .references(() => inboundMessages.id, { onDelete: 'cascade' }),
    recipient: text('recipient').notNull(),
    key: text('key'),
    source: text('source'),
    destination: text('destination'),
    stage: text('stage', { enum: ['rcpt', 'data', 'process'] }).notNull(),
    status: text('status', { enum: ['processed', 'rejected', 'ignored', 'duplicate', 'failed'] }).notNull(),
    reasonCode: text('reason_code'),
    reason: text('reason'),
    handler: text('handler'),
    targetType: text('target_type'),
    targetId: integer('target_id'),
    createdAt: createdAt(),
  },
  (t) => [
    // No index on key or destination: no query reads by them (a copy is found from the message's side,
    // see inbound.repo.ts), and each cost every delivery a write in a random leaf (dropped: +2 to +21 %
    // in six paired runs).
    index('deliveries_inbound_message').on(t.inboundMessageId),
    check('deliveries_status', sql`${t.status} in ('processed', 'rejected', 'ignored', 'duplicate', 'failed')`),
  ],
);

export const notes = sqliteTable(
  'notes',
  {
    id: integer('id').primaryKey(),
    projectId: integer('project_id')
      .notNull()
      .references(() => projects.id, { onDelete: 'cascade' }),
    noteableType: text('noteable_type', { enum: ['Issue', 'MergeRequest'] }).notNull(),
    noteableId: integer('noteable_id').notNull(),
    authorId: integer('author_id').references(() => users.id, { onDelete: 'set null' }),
    externalAuthor: text('external_author'),
    body: text('body').notNull(),
    system: integer('system', { mode: 'boolean' }).notNull().default(false),
    discussionId: text('discussion_id'),
    inboundMessageId: integer('inbound_message_id').references(() => inboundMessages.id, { onDelete: 'set null' }),
    createdAt: createdAt(),
  },
  (t) => [
    index('notes_noteable').on(t.noteableType, t.noteableId),
    check('notes_noteable_type', sql`${t.noteableType} in ('Issue', 'MergeRequest')`),
  ],
);

export const sentNotifications = sqliteTable(
  'sent_notifications',
  {
    id: integer('id').primaryKey(),
    replyKey: text('reply_key').notNull().unique(),
    projectId: integer('project_id')
      .notNull()
      .references(() => projects.id, { onDelete: 'cascade' }),
    recipientId: integer('recipient_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    noteableType: text('noteable_type', { enum: ['Issue', 'MergeRequest'] }).notNull(),
    noteableId: integer('noteable_id').notNull(),
    inReplyToDiscussionId: text('in_reply_to_discussion_id'),
    createdAt: createdAt(),
  },
  (t) => [check('sent_notifications_noteable_type', sql`${t.noteableType} in ('Issue', 'MergeRequest')`)],
);

export const attachments = sqliteTable(
  'attachments',
  {
    id: integer('id').primaryKey(),
    inboundMessageId: integer('inbound_message_id').references(() => inboundMessages.id, { onDelete: 'set null' }),
    ownerType: text('owner_type').notNull(),
    ownerId: integer('owner_id').notNull(),
    filename: text('filename').notNull(),
    contentType: text('content_type').notNull(),
    size: integer('size').notNull(),
    sha256: text('sha256').notNull(),
    /** NULL when the file is larger than 1 MiB: it is in attachment_chunks. */
    content: blob('content', { mode: 'buffer' }),
    createdAt: createdAt(),
  },
  (t) => [index('attachments_owner').on(t.ownerType, t.ownerId)],
);

/**
 * Content larger than 1 MiB, in 1 MiB pieces in `seq` order: one large blob cannot be written without
 * SQLite and the driver each holding a copy of it, so a 25 MB message would cost 3 times its size.
 */
export const attachmentChunks = sqliteTable(
  'attachment_chunks',
  {
    attachmentId: integer('attachment_id')
      .notNull()
      .references(() => attachments.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    data: blob('data', { mode: 'buffer' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.attachmentId, t.seq] })],
);

export const issueLabels = sqliteTable(
  'issue_labels',
  {
    id: integer('id').primaryKey(),
    issueId: integer('issue_id')
      .notNull()
      .references(() => issues.id, { onDelete: 'cascade' }),
    label: text('label').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('issue_labels_issue_label').on(t.issueId, t.label)],
);

export const issueAssignees = sqliteTable(
  'issue_assignees',
  {
    id: integer('id').primaryKey(),
    issueId: integer('issue_id')
      .notNull()
      .references(() => issues.id, { onDelete: 'cascade' }),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('issue_assignees_issue_user').on(t.issueId, t.userId)],
);

export const issueEmailParticipants = sqliteTable(
  'issue_email_participants',
  {
    id: integer('id').primaryKey(),
    issueId: integer('issue_id')
      .notNull()
      .references(() => issues.id, { onDelete: 'cascade' }),
    email: text('email').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('issue_email_participants_issue_email').on(t.issueId, sql`lower(${t.email})`)],
);

export const issueEmails = sqliteTable(
  'issue_emails',
  {
    id: integer('id').primaryKey(),
    issueId: integer('issue_id')
      .notNull()
      .references(() => issues.id, { onDelete: 'cascade' }),
    emailMessageId: text('email_message_id').notNull(),
  },
  (t) => [index('issue_emails_message_id').on(t.emailMessageId)],
);

export const subscriptions = sqliteTable(
  'subscriptions',
  {
    id: integer('id').primaryKey(),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    noteableType: text('noteable_type', { enum: ['Issue', 'MergeRequest'] }).notNull(),
    noteableId: integer('noteable_id').notNull(),
    subscribed: integer('subscribed', { mode: 'boolean' }).notNull(),
    updatedAt: text('updated_at')
      .notNull()
      .default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`),
  },
  (t) => [uniqueIndex('subscriptions_user_noteable').on(t.userId, t.noteableType, t.noteableId)],
);
