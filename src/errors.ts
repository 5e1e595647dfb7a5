// errors: the one table of every outcome intake can give a message, with its SMTP reply and reason text.
// Pure data. Every SMTP code, enhanced status code and reason text is written here and nowhere else.
//
// If you add an outcome, you also need to:
//   * make a test produce it (test/meta/readme.test.ts checks that a test names each code);
//   * add its row to README.md's rejection table (the same meta-test compares them).

/** GitLab's reason texts (lib/gitlab/email/failure_handler.rb), kept word for word. */
export const GITLAB_TEXT = {
  unknownIncoming:
    "We couldn't figure out what the email is for. Please create your issue or comment through the web interface.",
  sentNotificationNotFound:
    "We couldn't figure out what the email is in reply to. Please create your comment through the web interface.",
  projectNotFound: "We couldn't find the project. Please check if there's any typo.",
  emptyEmail:
    "It appears that the email is blank. Make sure your reply is at the top of the email, we can't process inline replies.",
  userNotFound:
    "We couldn't figure out what user corresponds to the email. Please create your comment through the web interface.",
  userBlocked: 'Your account has been blocked. If you believe this is in error, contact a staff member.',
  userNotAuthorized: 'You are not allowed to perform this action. If you believe this is in error, contact a staff member.',
  noteableNotFound:
    'The thread you are replying to no longer exists, perhaps it was deleted? If you believe this is in error, contact a staff member.',
} as const;

export type Stage = 'rcpt' | 'data' | 'process';

export interface Outcome {
  /** The stage where it is decided: rcpt (RCPT TO), data (after the message is read), process (after it is stored). */
  stage: Stage | 'mail' | 'connect' | 'session';
  /** SMTP reply code; 250 means the message is accepted even though nothing was created. */
  smtp: number;
  /** RFC 3463 enhanced status code. */
  dsn: string;
  /** Reason given to the sender and stored in inbound_messages.reason. */
  text: string;
  /** The status stored in inbound_messages / deliveries; 'not stored' when no row can be written. */
  status: 'rejected' | 'ignored' | 'duplicate' | 'failed' | 'not stored';
  /** When it happens, for the README. */
  when: string;
}

/** Most severe first, as in Postfix's cleanup_strerror: when several apply, the earliest is reported. */
export const OUTCOMES = {
  'data.store_failed': {
    stage: 'data',
    smtp: 451,
    dsn: '4.3.0',
    text: 'Temporary failure storing the message, please try again later',
    status: 'not stored',
    when: 'the database could not be written (locked, full, missing); nothing is stored and the sender keeps its copy (a row of the same transaction\'s RCPT refusals gets this code and reply)',
  },
  'data.disk_full': {
    stage: 'data',
    smtp: 452,
    dsn: '4.3.1',
    text: 'Insufficient system storage, please try again later',
    status: 'not stored',
    when: 'the disk (or the database) is full; nothing is stored and the sender keeps its copy (a row of the same transaction\'s RCPT refusals gets this code and reply)',
  },
  'rcpt.lookup_failed': {
    stage: 'rcpt',
    smtp: 451,
    dsn: '4.3.0',
    text: 'Temporary failure looking up the recipient, please try again later',
    status: 'rejected',
    when: 'the database is not available at RCPT time',
  },
  'rcpt.too_many': {
    stage: 'rcpt',
    smtp: 452,
    dsn: '4.5.3',
    text: 'Too many recipients for one message, send the rest in another message',
    status: 'rejected',
    when: 'more recipients accepted than INTAKE_MAX_RECIPIENTS, a repeated one counted again; the client sends the rest in another message, so only the first past the cap is recorded (in the row and as a delivery), the others only answered',
  },
  'connect.too_many_connections': {
    stage: 'connect',
    smtp: 421,
    dsn: '4.7.0',
    text: 'Too many connections from your address, try again later',
    status: 'not stored',
    when: 'a client (its address, or its IPv6 network) already has INTAKE_MAX_CONNECTIONS_PER_IP sessions open; answered at connect, logged. On the implicit-TLS listener also a client with that many connections still in their TLS handshake, where nothing can be said yet: the connection is closed without a reply, and logged',
  },
  'connect.too_many_clients': {
    stage: 'connect',
    smtp: 421,
    dsn: '4.3.2',
    text: 'Too many connected clients, try again in a moment',
    status: 'not stored',
    when: 'the listener already has INTAKE_MAX_CLIENTS sessions open, from any addresses; answered at connect, logged. In a burst past twice that many, smtp-server refuses before the greeting\'s 100 ms wait, with this reply too (logged with `before: greeting`)',
  },
  'policy.cannot_judge': {
    stage: 'rcpt',
    smtp: 450,
    dsn: '4.3.5',
    text: 'Policy request cannot be judged:',
    status: 'not stored',
    when: 'a policy request intake cannot read (no recipient, a malformed line, too many attributes); answered `DEFER_IF_PERMIT`, which Postfix turns into this reply, followed by what was wrong',
  },
  'session.shutting_down': {
    stage: 'session',
    smtp: 421,
    dsn: '4.3.2',
    text: 'Service shutting down, please try again later',
    status: 'not stored',
    when: 'on SIGTERM, to every session not receiving a message, and to each that is once its message is answered (or to the command it pipelined behind it), or when it is cut, still sending, after INTAKE_SHUTDOWN_TIMEOUT_MS; the session is then closed',
  },
  'session.command_timeout': {
    stage: 'session',
    smtp: 421,
    dsn: '4.4.2',
    text: 'Timeout waiting for a complete command - closing connection',
    status: 'not stored',
    when: 'no complete command for INTAKE_SOCKET_TIMEOUT_MS (idle, or one byte at a time)',
  },
  'session.data_timeout': {
    stage: 'session',
    smtp: 421,
    dsn: '4.4.2',
    text: 'Timeout: the message took too long to arrive - closing connection',
    status: 'not stored',
    when: 'a message still arriving INTAKE_DATA_TIMEOUT_MS after DATA (a trickle), or of which nothing more came for INTAKE_SOCKET_TIMEOUT_MS (a stall; smtp-server\'s own timer would cut it 2 s later with its own reply); nothing is stored, the sender keeps its copy; logged',
  },
  'session.internal_error': {
    stage: 'session',
    smtp: 451,
    dsn: '4.3.0',
    text: 'Internal error, try again later',
    status: 'not stored',
    when: 'a command failed for a reason of intake\'s own (a bug); logged',
  },
  'connect.blocked': {
    stage: 'connect',
    smtp: 421,
    dsn: '4.7.0',
    text: 'Too many unknown recipients from your address, try again later',
    status: 'not stored',
    when: 'the client (its address, or its IPv6 network) was shut out for key guessing (rcpt.too_many_unknown) less than INTAKE_UNKNOWN_RECIPIENT_BLOCK_MS ago; answered at connect, logged',
  },
  'rcpt.too_many_unknown': {
    stage: 'rcpt',
    smtp: 421,
    dsn: '4.7.0',
    text: 'Too many unknown recipients from your address, try again later',
    status: 'rejected',
    when: 'the client (its address, or its IPv6 network) named INTAKE_UNKNOWN_RECIPIENT_LIMIT unknown recipients within INTAKE_UNKNOWN_RECIPIENT_WINDOW_MS (the later ones answered ever more slowly); a message with a recipient refused as data.no_key (mail to the mailbox address), or kept as data.postmaster, counts as one, whatever its other recipients came to, and is answered so after its DATA; the session is closed and the client shut out for a while; the message\'s row records this 421, each recipient\'s row the reason it was unknown; the log says the rest',
  },
  'rcpt.too_many_refused': {
    stage: 'rcpt',
    smtp: 421,
    dsn: '4.7.0',
    text: 'Too many refused recipients in this session, closing connection',
    status: 'rejected',
    when: 'a client (not a trusted relay, not over LMTP) named more than INTAKE_MAX_REFUSED_RECIPIENTS recipients that were refused (or more than 1,000 past INTAKE_MAX_RECIPIENTS) in one session; the session is closed, the message\'s row records this 421, each recipient\'s row why it was refused; logged',
  },
  'mail.tls_required': {
    stage: 'mail',
    smtp: 530,
    dsn: '5.7.0',
    text: 'Must issue a STARTTLS command first',
    status: 'not stored',
    when: 'INTAKE_REQUIRE_TLS is on and the client sends MAIL FROM on the SMTP listener without STARTTLS; logged, no row (no recipient was given yet)',
  },
  'mail.too_big': {
    stage: 'mail',
    smtp: 552,
    dsn: '5.3.4',
    text: 'Error: message exceeds fixed maximum message size',
    status: 'not stored',
    when: 'MAIL FROM declares SIZE= above INTAKE_MAX_MESSAGE_BYTES; smtp-server refuses it before a transaction starts, so no row is written (the limit is appended to the text)',
  },
  'mail.disk_full': {
    stage: 'mail',
    smtp: 452,
    dsn: '4.3.1',
    text: 'Insufficient system storage, please try again later',
    status: 'not stored',
    when: "the database's file system has less free space than INTAKE_MIN_FREE_BYTES (by default 1.5 × INTAKE_MAX_MESSAGE_BYTES, which Postfix's smtpd keeps too) plus the SIZE= MAIL FROM declares; logged with both numbers (one line per 10 s, counting the refusals since the last), no row (no recipient was given yet, and the disk is nearly full)",
  },
  'mail.unsupported_parameter': {
    stage: 'mail',
    smtp: 555,
    dsn: '5.5.4',
    text: 'Unsupported MAIL FROM parameter',
    status: 'not stored',
    when: 'MAIL FROM carries a parameter of an extension intake does not offer (it takes SIZE, BODY, SMTPUTF8 and, on an encrypted session, where it is offered, REQUIRETLS; RFC 5321 4.1.1.11); the name is appended to the text; logged, no row (no recipient was given yet)',
  },
  'mail.utf8_undeclared': {
    stage: 'mail',
    smtp: 553,
    dsn: '5.6.7',
    text: 'Must declare SMTPUTF8 to send unicode address',
    status: 'not stored',
    when: "MAIL FROM's local part is not ASCII and the command lacks SMTPUTF8 (RFC 6531 §3.4; Postfix's reply). A domain is not checked: smtp-server hands an xn-- domain over in Unicode. Logged, no row (no recipient was given yet)",
  },
  'mail.requiretls_without_tls': {
    stage: 'mail',
    smtp: 530,
    dsn: '5.7.0',
    text: 'REQUIRETLS not permitted on non-TLS connections',
    status: 'not stored',
    when: "MAIL FROM carries REQUIRETLS on a session without TLS, where it is not offered (smtp-server's own reply); no row",
  },
  'data.too_big': {
    stage: 'data',
    smtp: 552,
    dsn: '5.3.4',
    text: 'Error: message exceeds fixed maximum message size',
    status: 'rejected',
    when: 'the message is larger than INTAKE_MAX_MESSAGE_BYTES; it is read to the end and discarded, and the limit is appended to the text',
  },
  'rcpt.unsupported_parameter': {
    stage: 'rcpt',
    smtp: 555,
    dsn: '5.5.4',
    text: 'Unsupported RCPT TO parameter',
    status: 'rejected',
    when: 'RCPT TO carries a parameter (intake takes none: NOTIFY and ORCPT belong to DSN, which it does not offer); the name is appended to the text',
  },
  'rcpt.utf8_undeclared': {
    stage: 'rcpt',
    smtp: 553,
    dsn: '5.6.7',
    text: 'Must declare SMTPUTF8 to send unicode address',
    status: 'rejected',
    when: "the recipient's local part is not ASCII and MAIL FROM lacked SMTPUTF8 (RFC 6531 §3.4; Postfix's reply)",
  },
  'rcpt.no_domain': {
    stage: 'rcpt',
    smtp: 501,
    dsn: '5.1.3',
    text: 'Recipient address has no domain',
    status: 'rejected',
    when: 'a recipient with no domain given to `intake deliver --to`; over SMTP and LMTP smtp-server refuses one itself (501 5.1.3 Bad recipient address syntax, not recorded), except `<Postmaster>`, which is kept (data.postmaster)',
  },
  'rcpt.relay_denied': {
    stage: 'rcpt',
    smtp: 550,
    dsn: '5.7.1',
    text: 'Relay access denied: this server only accepts mail for its own domain',
    status: 'rejected',
    when: 'the recipient domain is not the template\'s domain',
  },
  'rcpt.no_such_address': {
    stage: 'rcpt',
    smtp: 550,
    dsn: '5.1.1',
    text: 'No such address here: addresses look like the configured template',
    status: 'rejected',
    when: 'the domain is ours but the local part does not match the template',
  },
  'rcpt.unknown_key': {
    stage: 'rcpt',
    smtp: 550,
    dsn: '5.1.1',
    text: GITLAB_TEXT.unknownIncoming,
    status: 'rejected',
    when: 'the address matches the template but the key is of no known form',
  },
  'rcpt.unknown_reply_key': {
    stage: 'rcpt',
    smtp: 550,
    dsn: '5.1.1',
    text: GITLAB_TEXT.sentNotificationNotFound,
    status: 'rejected',
    when: 'a reply or unsubscribe key that no sent notification holds',
  },
  'rcpt.user_not_found': {
    stage: 'rcpt',
    smtp: 550,
    dsn: '5.1.1',
    text: GITLAB_TEXT.userNotFound,
    status: 'rejected',
    when: 'a new-issue, comment or merge-request key whose token belongs to no user',
  },
  'rcpt.noteable_gone': {
    stage: 'rcpt',
    smtp: 550,
    dsn: '5.1.1',
    text: GITLAB_TEXT.noteableNotFound,
    status: 'rejected',
    when: 'the notification\'s issue or merge request no longer exists',
  },
  'rcpt.user_blocked': {
    stage: 'rcpt',
    smtp: 550,
    dsn: '5.7.1',
    text: GITLAB_TEXT.userBlocked,
    status: 'rejected',
    when: 'the user the key belongs to is blocked',
  },
  'rcpt.project_not_found': {
    stage: 'rcpt',
    smtp: 550,
    dsn: '5.7.1',
    text: GITLAB_TEXT.projectNotFound,
    status: 'rejected',
    when: 'no such project, the slug no longer matches it (renamed), Service Desk is off, or the user may not see it (its existence is not revealed); at the Service Desk alias address (INTAKE_SERVICE_DESK_ADDRESS), any key that names no project with Service Desk on, a reply key or the key of a user included',
  },
  'rcpt.project_archived': {
    stage: 'rcpt',
    smtp: 550,
    dsn: '5.7.1',
    text: GITLAB_TEXT.userNotAuthorized,
    status: 'rejected',
    when: 'the project is archived (`intake projects set --archived`): read-only, as in GitLab, for replies, new issues and merge requests, comments and Service Desk alike; unsubscribing still works',
  },
  'rcpt.not_permitted': {
    stage: 'rcpt',
    smtp: 550,
    dsn: '5.7.1',
    text: GITLAB_TEXT.userNotAuthorized,
    status: 'rejected',
    when: 'the user may see the project but not do this: comment on a confidential issue below reporter (other than its author or an assignee), comment on a merge request of a private project below reporter, open a merge request below developer',
  },
  'data.no_key': {
    stage: 'data',
    smtp: 550,
    dsn: '5.1.1',
    text: GITLAB_TEXT.unknownIncoming,
    status: 'rejected',
    when: 'mail to the mailbox address (no key in the envelope) where no header names a live key',
  },
  'data.invalid_issue': {
    stage: 'data',
    smtp: 550,
    dsn: '5.6.0',
    text: "The issue could not be created for the following reasons: Title can't be blank",
    status: 'rejected',
    when: 'a new issue or Service Desk mail without a subject',
  },
  'data.invalid_merge_request': {
    stage: 'data',
    smtp: 550,
    dsn: '5.6.0',
    text: "The merge request could not be created for the following reasons: Title can't be blank, Source branch can't be blank",
    status: 'rejected',
    when: 'a new merge request mail without a subject (the subject is the source branch)',
  },
  'data.invalid_branch': {
    stage: 'data',
    smtp: 550,
    dsn: '5.6.0',
    text: 'The merge request could not be created: its source branch (the subject) or target branch is not a name git takes',
    status: 'rejected',
    when: 'a new merge request mail whose subject, or `/target_branch`, is no git branch name (a blank, `..`, `~^:?*[\\`, a leading `-`...); the row\'s reason names it',
  },
  'data.branch_conflict': {
    stage: 'data',
    smtp: 550,
    dsn: '5.6.0',
    text: "The merge request could not be created for the following reasons: Branch conflict You can't use same project/branch for source and target",
    status: 'rejected',
    when: "a new merge request mail whose source branch (the subject) is its target branch (`/target_branch`, or the project's default branch)",
  },
  'data.merge_request_exists': {
    stage: 'data',
    smtp: 550,
    dsn: '5.6.0',
    text: 'The merge request could not be created for the following reasons: Validate branches Another open merge request already exists for this source branch',
    status: 'rejected',
    when: "a new merge request mail whose source and target branches are those of an open merge request of the project; the row's reason names it (`!3`)",
  },
  'data.dmarc_reject': {
    stage: 'data',
    smtp: 550,
    dsn: '5.7.26',
    text: 'Unauthenticated mail from this domain is not accepted due to its DMARC policy',
    status: 'rejected',
    when: "INTAKE_AUTHENTICATION=enforce, and a From domain (named in the reason) publishes DMARC `p=reject` (for all of its mail: `pct` 100) while neither SPF nor a DKIM signature of that domain passed: someone else's mail in its name, which its owner asked receivers to refuse. Not when SPF or a signature of the From domain's own organization could not be looked up (`temperror`; failed lookups of other domains, which their owners control, do not count), nor when SPF could not be asked (the client behind a relay is not known). The message is stored with the SPF, DKIM and DMARC results; mail to postmaster is still kept. Behind a relay it is `data.unauthenticated` instead",
  },
  'data.header_too_long': {
    stage: 'data',
    smtp: 552,
    dsn: '5.3.4',
    text: 'Message header too long to check who sent it',
    status: 'rejected',
    when: 'INTAKE_AUTHENTICATION=enforce, an author\'s domain publishes DMARC `p=reject` (or the author cannot be read: a From or Sender field past 8 KiB, over 10 author domains), and the header is past a limit of what is read to check DKIM and DMARC (the reason says which): 4,000 lines, 256 KiB, 10 DKIM or ARC signatures, 32 KiB of such fields, 500 colons in them (names signed). mailauth\'s parser slows with the square of a folded header\'s lines, each signature may hash the whole body again and has its `h=` list matched against every field, and addresses are parsed in more than linear time. Without this a forger could get by the DMARC check with a large enough header; real mail has tens to a few hundred lines, a few signatures and one author. Otherwise (`record`, or no such policy) such a header is recorded as `permerror` and the message goes on. Behind a relay it is `data.unauthenticated` instead',
  },
  'data.multiple_from': {
    stage: 'data',
    smtp: 550,
    dsn: '5.7.1',
    text: 'Message with more than one From field not accepted',
    status: 'rejected',
    when: "INTAKE_AUTHENTICATION=enforce, and the header has more than one From field (RFC 5322 allows one; opendmarc's RejectMultiValueFrom): intake reads the first, while a reader of the stored message may be shown another, which a forger could name without its DMARC being asked in time. Behind a relay it is `data.unauthenticated` instead",
  },
  'data.authentication_unfinished': {
    stage: 'data',
    smtp: 451,
    dsn: '4.7.0',
    text: 'Could not check who sent the message in time, please try again later',
    status: 'rejected',
    when: "INTAKE_AUTHENTICATION=enforce, the check of SPF, DKIM and DMARC did not finish within INTAKE_DNS_TIMEOUT_MS (or failed), and an author's domain (named in the reason) is known to publish `p=reject`: taken, the message could be a forgery that slowed the check down on purpose (through its own domains' DNS); refused, it could be real mail. So the sender (or the relay) tries again later. When no such policy is known by then (DNS down), the message is taken, its results `temperror`",
  },
  'data.unauthenticated': {
    stage: 'data',
    smtp: 250,
    dsn: '2.6.0',
    text: 'Unauthenticated mail accepted and ignored',
    status: 'ignored',
    when: 'what `data.dmarc_reject`, `data.header_too_long` and `data.multiple_from` become for mail a relay has queued already (LMTP, `intake deliver`, XFORWARD, a trusted relay that named no client; not a proxy naming the client with XCLIENT, which passes the refusal on): a refusal would make the relay send a bounce to the sender, whose address is most likely forged. Stored, nothing created; the reason says which check it failed',
  },
  'data.unparsable': {
    stage: 'data',
    smtp: 550,
    dsn: '5.6.0',
    text: 'The message could not be parsed as an email',
    status: 'rejected',
    when: 'mailparser cannot read the message',
  },
  'data.text_too_long': {
    stage: 'data',
    smtp: 552,
    dsn: '5.3.4',
    text: 'Message text too long for an issue or a note; send the text as an attachment',
    status: 'rejected',
    when: 'the text (or the Markdown of the HTML) is over 1,000,000 characters, GitLab\'s limit for a note, or a text part is over 4,000,000 bytes as sent (10 MiB for HTML), refused before it is decoded; the message is kept',
  },
  'data.sender_not_verified': {
    stage: 'data',
    smtp: 550,
    dsn: '5.7.1',
    text: GITLAB_TEXT.userNotFound,
    status: 'rejected',
    when: 'From (or Reply-To) is not a verified address of the user the notification was sent to',
  },
  'data.blank': {
    stage: 'data',
    smtp: 550,
    dsn: '5.6.0',
    text: GITLAB_TEXT.emptyEmail,
    status: 'rejected',
    when: 'nothing is left of the body after quotes and signature are trimmed',
  },
  'data.auto_generated': {
    stage: 'data',
    smtp: 250,
    dsn: '2.6.0',
    text: 'Auto-generated message accepted and ignored',
    status: 'ignored',
    when: 'null sender, `Auto-Submitted` other than `no`, `X-Autoreply: yes`, `X-Autorespond`, `Precedence: junk|auto_reply`, a `multipart/report` (bounce, read receipt) or `From: MAILER-DAEMON`; `Precedence: bulk|list` too, except to a Service Desk (a list in front of it adds one); list mail that leads nowhere, or that a Service Desk refuses, is ignored too rather than bounced (the reason says why)',
  },
  'data.sender_rate': {
    stage: 'data',
    smtp: 451,
    dsn: '4.7.1',
    text: 'Too many messages from you to this address lately, please try again later',
    status: 'rejected',
    when: 'the sender (Reply-To, else From, else Sender) has used up its allowance for the destination (an issue, a merge request, or a project address): INTAKE_SENDER_RATE_LIMIT messages processed in a row, then one more each INTAKE_SENDER_RATE_WINDOW_MS / INTAKE_SENDER_RATE_LIMIT; a loop, or a flood. The sender keeps the message and tries again later, and it goes through once the allowance has grown back. Beside recipients that were processed the whole message is answered so (a 250 would lose this one; sent again, theirs come back as duplicates). The row is kept, and the bytes of the message only when a recipient of it was taken or told it is kept (over LMTP, where each recipient has its own reply, the others may have been answered 250); otherwise the sender has them. Logged at the first of a run of such refusals',
  },
  'data.own_address': {
    stage: 'data',
    smtp: 250,
    dsn: '2.6.0',
    text: "Mail from one of this server's own addresses accepted and ignored",
    status: 'ignored',
    when: "From or Reply-To is one of intake's own addresses (a key address or the mailbox address, at the template's domain, or an address of the Service Desk alias; not postmaster, whom a person reads): a tracker's notification (Reply-To carries its reply key) forwarded into a Service Desk, or two of them writing to each other. A Service Desk would make that address a participant and mail it, and each mail would come back as another note: a loop. Ignored rather than refused, as auto-generated mail is: a bounce sent into a loop only feeds it (the reason names the header)",
  },
  'data.custom_email_verification': {
    stage: 'data',
    smtp: 250,
    dsn: '2.6.0',
    text: 'Service Desk custom email verification accepted and ignored',
    status: 'ignored',
    when: "sent to a project's Service Desk with To `<local>+verify@<domain>` of the project's custom email `<local>@<domain>` (`projects.service_desk_custom_email`): GitLab's verification mail, which opens no ticket. intake sends no mail, so it verifies nothing: the row shows that the customer's forwarding reaches the Service Desk (the reason names the address)",
  },
  'data.postmaster': {
    stage: 'data',
    smtp: 250,
    dsn: '2.6.0',
    text: 'Message for the postmaster accepted and kept',
    status: 'ignored',
    when: 'sent to postmaster (`<Postmaster>`, or postmaster at the template\'s domain, in any case), which RFC 5321 (4.5.1) requires every mail server to accept; whatever it holds (a bounce, a complaint, garbage), it is stored for the operator (`intake show ID`, `intake messages --status ignored`) and creates nothing; the SMTP and LMTP listeners log it as a warning. Each such message (not the RCPT) counts as one unknown recipient towards INTAKE_UNKNOWN_RECIPIENT_LIMIT, since it is stored whole with no key to answer for it',
  },
  'data.duplicate': {
    stage: 'data',
    smtp: 250,
    dsn: '2.6.0',
    text: 'Already received, nothing new created',
    status: 'duplicate',
    when: 'the same Message-ID from the same From address (or, without a Message-ID, the same bytes) was already processed for the same destination (the same issue or merge request, whichever key or key form named it)',
  },
  'process.internal': {
    stage: 'process',
    smtp: 250,
    dsn: '2.6.0',
    text: 'Stored; processing failed and is kept for `intake reprocess`',
    status: 'failed',
    when: 'a bug while processing: the raw message is kept with status `failed`',
  },
} as const satisfies Record<string, Outcome>;

export type OutcomeCode = keyof typeof OUTCOMES;

export interface WireRejection {
  code: OutcomeCode;
  message: string;
}

/**
 * A decision not to (fully) accept a message, carrying its table row. smtp-server sends
 * `responseCode` and `message`; the message starts with the enhanced status code.
 */
export class MailRejection extends Error {
  readonly responseCode: number;
  readonly outcome: Outcome;
  constructor(
    readonly code: OutcomeCode,
    detail?: string,
  ) {
    const outcome: Outcome = OUTCOMES[code];
    // A decision, not a bug: where it was made is in its code, and a stack costs more than the rest of
    // a refusal (one is made for every unknown recipient).
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${outcome.dsn} ${outcome.text}${detail ? ` ${detail}` : ''}`);
    Error.stackTraceLimit = stackTraceLimit;
    this.name = 'MailRejection';
    this.outcome = outcome;
    this.responseCode = outcome.smtp;
  }

  /** What crosses a thread: the class does not (structured clone keeps only an Error's message). */
  toWire(): WireRejection {
    return { code: this.code, message: this.message };
  }

  static fromWire({ code, message }: WireRejection): MailRejection {
    const outcome: Outcome = OUTCOMES[code];
    const bare = `${outcome.dsn} ${outcome.text}`;
    return new MailRejection(code, message.startsWith(`${bare} `) ? message.slice(bare.length + 1) : undefined);
  }

  /** The reason text without the enhanced status code, as stored in the database. */
  get reason(): string {
    return this.message.slice(this.outcome.dsn.length + 1);
  }

  get isTemporary(): boolean {
    return this.responseCode >= 400 && this.responseCode < 500;
  }
}

