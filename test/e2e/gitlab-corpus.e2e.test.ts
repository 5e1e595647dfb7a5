// GitLab's incoming-email corpus end to end: every fixture of test/fixtures/emails/gitlab/ (README.md
// there: the setup and placeholders) is sent over SMTP to a running intake seeded as GitLab's specs set
// up, and must produce the outcome those specs expect (named in each test): the SMTP replies and the
// rows. Where GitLab's outcome needs what intake deliberately lacks (git, todos, outgoing mail, custom
// email verification), a comment says so and intake's documented behaviour is asserted instead.
// Each test gets its own server and database, because many fixtures share one Message-ID.
import { afterEach, describe, expect, it } from 'vitest';
import {
  ADDRESS,
  AUTO_REPLY_KEY,
  DISCUSSION_ID,
  JAKE,
  REPLY_KEY,
  SERVICE_DESK_KEY,
  startGitlabWorld,
  toWire,
  type GitlabWorld,
  type NoteRow,
  type Sent,
  type WorldOptions,
} from '../helpers/gitlab-world.js';

const worlds: GitlabWorld[] = [];
async function world(options: WorldOptions): Promise<GitlabWorld> {
  const started = await startGitlabWorld(options);
  worlds.push(started);
  return started;
}
afterEach(async () => {
  await Promise.all(worlds.splice(0).map((w) => w.stop()));
});

const ACCEPTED = '250 2.1.5 Accepted';
const NO_KEY = "550 5.1.1 We couldn't figure out what the email is for. Please create your issue or comment through the web interface.";
const USER_NOT_FOUND = "550 5.1.1 We couldn't figure out what user corresponds to the email. Please create your comment through the web interface.";
const PROJECT_NOT_FOUND = "550 5.7.1 We couldn't find the project. Please check if there's any typo.";
const NOT_PERMITTED = '550 5.7.1 You are not allowed to perform this action. If you believe this is in error, contact a staff member.';
const BLANK = "550 5.6.0 It appears that the email is blank. Make sure your reply is at the top of the email, we can't process inline replies.";
const INVALID_MERGE_REQUEST = "550 5.6.0 The merge request could not be created for the following reasons: Title can't be blank, Source branch can't be blank";
const RELAY_DENIED = '550 5.7.1 Relay access denied: this server only accepts mail for its own domain';

/**
 * The Discourse notification quoted under many replies, as it is cut off: like GitLab's email_reply_trimmer,
 * the "On … wrote:" header wrapped over two lines is joined into one, and trailing blanks are trimmed.
 */
const DISCOURSE_QUOTE = [
  `On Sun, Jun 9, 2013 at 1:39 PM, eviltrout via Discourse Meta <reply+${REPLY_KEY}@appmail.adventuretime.ooo> wrote:`,
  '>',
  '>',
  '>',
  "> eviltrout posted in 'Adventure Time Sux' on Discourse Meta:",
  '>',
  '> ---',
  '> hey guys everyone knows adventure time sucks!',
  '>',
  '> ---',
  '> Please visit this link to respond: http://localhost:3000/t/adventure-time-sux/1234/3',
  '>',
  '> To unsubscribe from these emails, visit your [user preferences](http://localhost:3000/user_preferences).',
  '>',
].join('\n');
const JAKE_REPLY =
  'I could not disagree more. I am obviously biased but adventure time is the\ngreatest show ever created. Everyone should watch it.\n\n- Jake out';

/** GitLab's message_with_appended_reply: a reply on an issue keeps the cut-off quote, collapsed. */
const collapsed = (body: string, quote = DISCOURSE_QUOTE) => `${body}\n\n<details><summary>...</summary>\n\n${quote}\n\n</details>`;

// S1, S2, S4 of the corpus README without GitLab's stubbed upload line `![image](uploads/image.png)`:
// intake stores real attachments only, and these fixtures carry none.
const S1 = 'Service desk stuff!\n\n```\na = b\n```\n\n`/label ~label1`\n`/assign @user1`\n`/close`';
const S2 = 'Service desk reply!\n\n`/label ~label2`';
const S3 = 'Jake out\n\n`/close`\n`/title test`';
const S4 = 'Service desk stuff!\n\n---------- Forwarded message ---------\nFrom: Jake the Dog <jake@adventuretime.ooo>\nTo: <jake@adventuretime.ooo>\n\n\nforwarded content';
const SD_SUBJECT = 'The message subject! @all';
const SD_MESSAGE_ID = 'CADkmRc+rNGAGGbV2iE5p918UVy4UyJqVcXRO2=otppgzduJSg@mail.gmail.com';

/** The 250 at the end of DATA names the inbound message the transaction stored. */
function acceptedId(sent: Sent): number {
  expect(sent.data?.line).toBe(`250 2.6.0 Message accepted as inbound message ${sent.inboundMessageId}`);
  return sent.inboundMessageId;
}

function processed(w: GitlabWorld, sent: Sent, fields: { handler: string; target_type: string; target_id: number }) {
  expect(w.inbound(sent.inboundMessageId)).toMatchObject({ status: 'processed', reason_code: null, smtp_reply: sent.data?.line, ...fields });
}

function delivery(fields: { recipient: string; key: string; source: string; destination: string; handler: string; target_type: string; target_id: number }) {
  return { stage: 'data', status: 'processed', reason_code: null, ...fields };
}

function refusedAtRcpt(recipient: string, code: string) {
  return { recipient, key: null, source: null, destination: null, stage: 'rcpt', status: 'rejected', reason_code: code, handler: null, target_type: null, target_id: null };
}

function userNotes(notes: NoteRow[]) {
  return notes.filter((n) => n.system === 0);
}

function systemNotes(notes: NoteRow[]) {
  return notes.filter((n) => n.system === 1).map((n) => ({ author_id: n.author_id, body: n.body }));
}

/** A reply to the notification by jake, on its issue (GitLab's create_note_handler spec). */
async function replyTo(name: string, options: { from?: string; to?: (w: GitlabWorld) => string; world?: Partial<WorldOptions> } = {}) {
  const w = await world({ address: ADDRESS.reply, ...options.world });
  const from = options.from ?? JAKE;
  if (from !== JAKE) w.addJakeAddress(from);
  const to = options.to ? options.to(w) : w.address(REPLY_KEY);
  const sent = await w.send(w.fixture(name), { from, to: [to] });
  return { w, to, sent };
}

/**
 * Reply-parser fixtures (spec P): the reply goes to a notification about a merge request, where intake
 * stores the parsed reply as the note body as it is (on an issue the cut-off quote would be appended).
 * Senders other than jake are made verified addresses of his, so the reply is his.
 */
async function parsedReply(name: string, from: string): Promise<string> {
  const { w, to, sent } = await replyTo(name, { from, world: { notificationOn: 'MergeRequest' } });
  expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
  const id = acceptedId(sent);
  const notes = w.notes('MergeRequest', w.mergeRequest.id);
  expect(notes).toHaveLength(1);
  const note = notes[0] as NoteRow;
  expect(note).toMatchObject({ author_id: w.jake.id, external_author: null, system: 0, discussion_id: DISCUSSION_ID, inbound_message_id: id });
  processed(w, sent, { handler: 'reply', target_type: 'Note', target_id: note.id });
  expect(w.deliveries(id)).toEqual([
    delivery({ recipient: to, key: REPLY_KEY, source: 'envelope', destination: `MergeRequest:${w.mergeRequest.id}`, handler: 'reply', target_type: 'Note', target_id: note.id }),
  ]);
  expect(w.attachments()).toEqual([]);
  return note.body;
}

describe('replies to notifications (create_note / unsubscribe handlers, reply parser)', () => {
  it('valid_reply.eml: a note by the notification recipient in its discussion, the quote collapsed; with -unsubscribe the user is unsubscribed', async () => {
    const { w, to, sent } = await replyTo('valid_reply.eml');
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const id = acceptedId(sent);
    const notes = w.notes('Issue', w.issue.id);
    expect(notes).toEqual([
      {
        id: expect.any(Number),
        project_id: w.gitlabhq.id,
        noteable_type: 'Issue',
        noteable_id: w.issue.id,
        author_id: w.jake.id,
        external_author: null,
        body: collapsed(JAKE_REPLY),
        system: 0,
        discussion_id: DISCUSSION_ID,
        inbound_message_id: id,
      },
    ]);
    const note = notes[0] as NoteRow;
    processed(w, sent, { handler: 'reply', target_type: 'Note', target_id: note.id });
    expect(w.deliveries(id)).toEqual([
      delivery({ recipient: to, key: REPLY_KEY, source: 'envelope', destination: `Issue:${w.issue.id}`, handler: 'reply', target_type: 'Note', target_id: note.id }),
    ]);
    // GitLab's "attachment line appended" is its stubbed upload; this mail has no attachment, so none is stored.
    expect(w.attachments()).toEqual([]);

    // U: the same mail to the key with -unsubscribe unsubscribes the recipient and adds no note.
    const unsubscribe = w.address(`${REPLY_KEY}-unsubscribe`);
    const again = await w.send(w.fixture('valid_reply.eml'), { from: JAKE, to: [unsubscribe] });
    expect(again.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const unsubscribeId = acceptedId(again);
    expect(w.subscriptions()).toEqual([{ user_id: w.jake.id, noteable_type: 'Issue', noteable_id: w.issue.id, subscribed: 0 }]);
    expect(w.notes('Issue', w.issue.id)).toHaveLength(1);
    expect(w.deliveries(unsubscribeId)).toEqual([
      delivery({
        recipient: unsubscribe,
        key: `${REPLY_KEY}-unsubscribe`,
        source: 'envelope',
        destination: `unsubscribe:${w.jake.id}:Issue:${w.issue.id}`,
        handler: 'unsubscribe',
        target_type: 'Issue',
        target_id: w.issue.id,
      }),
    ]);
  });

  it('auto_reply.eml: X-Autoreply: yes is accepted and ignored as auto-generated, creating nothing', async () => {
    const w = await world({ address: ADDRESS.reply });
    const to = w.address(AUTO_REPLY_KEY);
    const sent = await w.send(w.fixture('auto_reply.eml'), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    expect(sent.data?.line).toBe(`250 2.6.0 Auto-generated message accepted and ignored (inbound message ${sent.inboundMessageId})`);
    expect(w.inbound(sent.inboundMessageId)).toMatchObject({ status: 'ignored', reason_code: 'data.auto_generated', smtp_reply: sent.data?.line, target_id: null });
    expect(w.deliveries(sent.inboundMessageId)).toEqual([
      { recipient: to, key: null, source: null, destination: null, stage: 'data', status: 'ignored', reason_code: 'data.auto_generated', handler: null, target_type: null, target_id: null },
    ]);
    expect(w.count('notes')).toBe(0);
  });

  it('commands_in_reply.eml: one note by jake with the quote collapsed, /close run (jake is a developer), /todo left in the text', async () => {
    const { w, to, sent } = await replyTo('commands_in_reply.eml');
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const id = acceptedId(sent);
    const notes = w.notes('Issue', w.issue.id);
    // intake keeps no todos, so `/todo` stays in the note as written (GitLab would add a todo instead).
    expect(userNotes(notes).map((n) => ({ author_id: n.author_id, body: n.body, discussion_id: n.discussion_id }))).toEqual([
      { author_id: w.jake.id, body: collapsed('Cool!\n\n/todo'), discussion_id: DISCUSSION_ID },
    ]);
    expect(systemNotes(notes)).toEqual([{ author_id: w.jake.id, body: 'closed' }]);
    expect(w.issue_(w.issue.id).state).toBe('closed');
    const note = userNotes(notes)[0] as NoteRow;
    processed(w, sent, { handler: 'reply', target_type: 'Note', target_id: note.id });
    expect(w.deliveries(id)).toEqual([
      delivery({ recipient: to, key: REPLY_KEY, source: 'envelope', destination: `Issue:${w.issue.id}`, handler: 'reply', target_type: 'Note', target_id: note.id }),
    ]);
  });

  it('commands_in_reply.eml from a Service Desk thread (a notification the Support Bot sent): a note with external author jake, its commands shown, not run', async () => {
    const w = await world({ address: ADDRESS.reply });
    const botKey = 'b'.repeat(32);
    const desk = w.server.repos.transaction(() => {
      const issue = w.server.repos.issuables.createIssue({ projectId: w.serviceDesk.id, authorId: null, externalAuthor: 'finn@adventuretime.ooo', title: 'service desk issue', description: 'Help!', confidential: true });
      w.server.repos.notifications.create({ replyKey: botKey, projectId: w.serviceDesk.id, recipientId: w.server.repos.users.supportBot().id, noteableType: 'Issue', noteableId: issue.id, inReplyToDiscussionId: DISCUSSION_ID });
      return issue;
    });
    const to = w.address(botKey);
    const sent = await w.send(w.fixture('commands_in_reply.eml'), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    acceptedId(sent);
    const notes = w.notes('Issue', desk.id);
    expect(notes.map((n) => ({ author_id: n.author_id, external_author: n.external_author, body: n.body, system: n.system }))).toEqual([
      { author_id: null, external_author: JAKE, body: collapsed('Cool!\n\n`/close`\n`/todo`'), system: 0 },
    ]);
    expect(w.issue_(desk.id).state).toBe('opened');
    expect(w.participants(desk.id)).toEqual([JAKE]);
    processed(w, sent, { handler: 'reply', target_type: 'Note', target_id: (notes[0] as NoteRow).id });
  });

  it('commands_only_reply.eml: /close is run and no note of the commands is made; only the unsupported /todo remains as text', async () => {
    const { w, to, sent } = await replyTo('commands_only_reply.eml');
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const id = acceptedId(sent);
    const notes = w.notes('Issue', w.issue.id);
    // GitLab makes no note here because it also consumes /todo; intake keeps no todos, so `/todo` is text and becomes the note.
    expect(userNotes(notes).map((n) => n.body)).toEqual([collapsed('/todo')]);
    expect(systemNotes(notes)).toEqual([{ author_id: w.jake.id, body: 'closed' }]);
    expect(w.issue_(w.issue.id).state).toBe('closed');
    const note = userNotes(notes)[0] as NoteRow;
    processed(w, sent, { handler: 'reply', target_type: 'Note', target_id: note.id });
    expect(w.deliveries(id)).toEqual([
      delivery({ recipient: to, key: REPLY_KEY, source: 'envelope', destination: `Issue:${w.issue.id}`, handler: 'reply', target_type: 'Note', target_id: note.id }),
    ]);
  });

  it('update_commands_only_reply.eml: /close above a quote closes the issue, no note saved, no error', async () => {
    const { w, to, sent } = await replyTo('update_commands_only_reply.eml');
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const id = acceptedId(sent);
    const notes = w.notes('Issue', w.issue.id);
    expect(userNotes(notes)).toEqual([]);
    expect(systemNotes(notes)).toEqual([{ author_id: w.jake.id, body: 'closed' }]);
    expect(w.issue_(w.issue.id).state).toBe('closed');
    processed(w, sent, { handler: 'reply', target_type: 'Issue', target_id: w.issue.id });
    expect(w.deliveries(id)).toEqual([
      delivery({ recipient: to, key: REPLY_KEY, source: 'envelope', destination: `Issue:${w.issue.id}`, handler: 'reply', target_type: 'Issue', target_id: w.issue.id }),
    ]);
  });

  it('no_content_with_quote.eml: only a signature dash and quotes is refused as blank (EmptyEmailError)', async () => {
    const { w, to, sent } = await replyTo('no_content_with_quote.eml');
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    expect(sent.data?.line).toBe(BLANK);
    expect(w.inbound(sent.inboundMessageId)).toMatchObject({ status: 'rejected', reason_code: 'data.blank', smtp_reply: BLANK });
    expect(w.deliveries(sent.inboundMessageId)).toEqual([
      { recipient: to, key: REPLY_KEY, source: null, destination: null, stage: 'data', status: 'rejected', reason_code: 'data.blank', handler: null, target_type: null, target_id: null },
    ]);
    expect(w.count('notes')).toBe(0);
  });

  it.each([
    ['reply_without_subaddressing_and_key_inside_references.eml', 'the key is read from References'],
    ['reply_without_subaddressing_and_key_inside_references_with_a_comma.eml', 'References with mixed space and comma separators still yield the key'],
  ])('%s: to the bare mailbox, %s and jake\'s note is made', async (fixture) => {
    const { w, sent } = await replyTo(fixture, { to: (w) => w.mailbox });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const id = acceptedId(sent);
    const notes = w.notes('Issue', w.issue.id);
    expect(notes.map((n) => ({ author_id: n.author_id, body: n.body }))).toEqual([{ author_id: w.jake.id, body: collapsed(JAKE_REPLY) }]);
    const note = notes[0] as NoteRow;
    processed(w, sent, { handler: 'reply', target_type: 'Note', target_id: note.id });
    expect(w.deliveries(id)).toEqual([
      delivery({ recipient: 'reply@appmail.adventuretime.ooo', key: REPLY_KEY, source: 'References', destination: `Issue:${w.issue.id}`, handler: 'reply', target_type: 'Note', target_id: note.id }),
    ]);
  });

  it('key_in_headers_reply.eml: to the bare mailbox, the key is found in the headers (To has none) and jake\'s note is made', async () => {
    const { w, sent } = await replyTo('key_in_headers_reply.eml', { to: (w) => w.mailbox });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const id = acceptedId(sent);
    const notes = w.notes('Issue', w.issue.id);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({ author_id: w.jake.id });
    expect(notes[0]?.body).toContain('I could not disagree more.');
    processed(w, sent, { handler: 'reply', target_type: 'Note', target_id: (notes[0] as NoteRow).id });
    // GitLab's 2015 receiver read it from References (reply+KEY@appmail…); a Received "for <reply+KEY@…>" line carries it too.
    expect(w.deliveries(id)).toMatchObject([{ recipient: 'reply@appmail.adventuretime.ooo', key: REPLY_KEY, status: 'processed', handler: 'reply' }]);
    expect(w.deliveries(id)[0]?.source).toMatch(/^(In-Reply-To|References|Received)$/);
  });

  it('attachment.eml: the PNG is stored with the note and linked as an image with alt "bricks"', async () => {
    const w = await world({ address: ADDRESS.reply });
    const to = w.address(REPLY_KEY);
    // The fixture's From and To are the literal placeholders FROM and TO.
    const sent = await w.send(w.fixture('attachment.eml', { '<FROM>': `<${JAKE}>`, '<TO>': `<${to}>` }), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const id = acceptedId(sent);
    const notes = w.notes('Issue', w.issue.id);
    expect(notes).toHaveLength(1);
    const note = notes[0] as NoteRow;
    const files = w.attachments();
    expect(files).toEqual([
      { id: expect.any(Number), inbound_message_id: id, owner_type: 'Note', owner_id: note.id, filename: 'bricks.png', content_type: 'image/png', size: expect.any(Number) },
    ]);
    expect(note.body.startsWith('here is an image attachment')).toBe(true);
    // GitLab's upload markdown: alt `bricks`, URL naming bricks.png; intake's URL is the attachment row holding bricks.png.
    expect(note.body).toContain(`![bricks](attachment:${files[0]?.id})`);
    processed(w, sent, { handler: 'reply', target_type: 'Note', target_id: note.id });
  });

  it.each([
    ['valid_reply_signed_smime.eml', 'application/pkcs7-signature'],
    ['valid_reply_signed_smime_mixed_protocol_prefix.eml', 'application/x-pkcs7-signature'],
  ])('%s (outer protocol %s): every part but smime.p7s is stored; the PNG is linked with alt "gitlab_logo"', async (name) => {
    const { w, to, sent } = await replyTo(name, { from: 'diego.louzan.ext@siemens.com' });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const id = acceptedId(sent);
    const notes = w.notes('Issue', w.issue.id);
    expect(notes).toHaveLength(1);
    const note = notes[0] as NoteRow;
    const files = w.attachments();
    expect(files).toEqual([
      { id: expect.any(Number), inbound_message_id: id, owner_type: 'Note', owner_id: note.id, filename: 'gitlab_logo.png', content_type: 'image/png', size: expect.any(Number) },
    ]);
    expect(note.body.startsWith('Me too, with an attachment')).toBe(true);
    expect(note.body).toContain(`![gitlab_logo](attachment:${files[0]?.id})`);
    processed(w, sent, { handler: 'reply', target_type: 'Note', target_id: note.id });
    expect(w.deliveries(id)).toEqual([
      delivery({ recipient: to, key: REPLY_KEY, source: 'envelope', destination: `Issue:${w.issue.id}`, handler: 'reply', target_type: 'Note', target_id: note.id }),
    ]);
  });

  describe('reply parser (P): the note body on a merge request is the parsed reply', () => {
    it('bullet_list_reply.eml: the whole body is kept; lone - and * bullet lines are not delimiters', async () => {
      expect(await parsedReply('bullet_list_reply.eml', JAKE)).toBe(
        'I looked at the proposal and would like the following changes:\n\n   -\n\n   Rename the first field on the form.\n   *\n\n   Add a short description below it.',
      );
    });

    it('bullet_list_reply_quoted_printable.eml: the German quoted-printable body is decoded and kept past its lone bullets', async () => {
      const body = await parsedReply('bullet_list_reply_quoted_printable.eml', JAKE);
      for (const part of ['würde ich', 'ändern, dass sie kürzer ist', 'Eine weitere Anpassung.']) expect(body).toContain(part);
    });

    it('dutch.eml: exactly "Dit is een antwoord in het Nederlands."', async () => {
      expect(await parsedReply('dutch.eml', 'walter.white@googlemail.com')).toBe('Dit is een antwoord in het Nederlands.');
    });

    it('html_empty_link.eml: exactly "no brackets!"', async () => {
      expect(await parsedReply('html_empty_link.eml', 'arpit@techapj.com')).toBe('no brackets!');
    });

    it('html_only.eml: Gmail HTML becomes Markdown, details kept as a details block, table cells as paragraphs', async () => {
      const body = await parsedReply('html_only.eml', 'walter.white@googlemail.com');
      expect(body.startsWith('### This is a reply from standard GMail in Google Chrome.')).toBe(true);
      expect(body).toContain("Here's some **bold** text, **strong** text and *italic* in Markdown.");
      expect(body).toContain('![Miro](http://img.png)');
      expect(body).toMatch(/<details>\s*<summary>\s*One<\/summary>\s*Some details\s*<\/details>/);
      expect(body).toMatch(/<details>\s*<summary>\s*Two<\/summary>\s*Some details\s*<\/details>/);
      expect(body.endsWith('Test reply.\n\nFirst paragraph.\n\nSecond paragraph.')).toBe(true);
    });

    it('html_table_and_blockquote.eml: each table row is one line of tab-separated cells, then the quote as plain text', async () => {
      const body = await parsedReply('html_table_and_blockquote.eml', 'arpit@techapj.com');
      const lines = body.split('\n');
      expect(lines.slice(0, 3)).toEqual(['Company\tContact\tCountry', 'Alfreds Futterkiste\tMaria Anders\tGermany', 'Centro comercial Moctezuma\tFrancisco Chang\tMexico']);
      expect(lines.slice(3).join('\n').trim()).toBe('Words can be like X-rays, if you use them properly—they’ll go through anything. You read and you’re pierced.');
    });

    it('ios_default.eml: from "### this is a reply from iOS default mail" to the link; the quote is dropped', async () => {
      const body = await parsedReply('ios_default.eml', 'walter.white@googlemail.com');
      expect(body.startsWith('### this is a reply from iOS default mail')).toBe(true);
      expect(body.endsWith("Here's a link http://example.com")).toBe(true);
      expect(body).toContain("Here's some **bold** markdown text.");
    });

    it('on_wrote.eml: "On … wrote:" wrapped over two lines is cut; exactly the one-line answer', async () => {
      expect(await parsedReply('on_wrote.eml', JAKE)).toBe("Sure, all you need to do is frobnicate the foobar and you'll be all set!");
    });

    it('outlook_html.eml: exactly "Microsoft Outlook 2010"', async () => {
      expect(await parsedReply('outlook_html.eml', 'arpit@techapj.com')).toBe('Microsoft Outlook 2010');
    });

    it('paragraphs.eml: the three paragraphs with their line breaks', async () => {
      expect(await parsedReply('paragraphs.eml', JAKE)).toBe(
        "Is there any reason the *old* candy can't be kept in silos while the new candy\nis imported into *new* silos?\n\nThe thing about candy is it stays delicious for a long time -- we can just keep\nit there without worrying about it too much, imo.\n\nThanks for listening.",
      );
    });

    it('plaintext_only.eml: from "### reply from default mail client in Windows 8.1 Metro" to the link; the From:/Sent: block is cut', async () => {
      const body = await parsedReply('plaintext_only.eml', 'walter.white@googlemail.com');
      expect(body.startsWith('### reply from default mail client in Windows 8.1 Metro')).toBe(true);
      expect(body.endsWith('This is a link http://example.com')).toBe(true);
      expect(body).toContain('This is a **bold** word in Markdown');
    });

    it('signature_delimiter_reply.eml: exactly "This is the actual reply body."', async () => {
      expect(await parsedReply('signature_delimiter_reply.eml', JAKE)).toBe('This is the actual reply body.');
    });
  });
});

describe('the receiver finds the key in the headers of mail to the bare mailbox', () => {
  async function receiverFinds(name: string, from: string) {
    const w = await world({ address: ADDRESS.receiver });
    const sent = await w.send(w.fixture(name), { from, to: [w.mailbox] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    acceptedId(sent);
    return { w, sent };
  }

  /** The legacy new-issue key `gitlabhq/gitlabhq+auth_token` dispatches a new issue by jake. */
  function expectNewIssueFrom(w: GitlabWorld, sent: Sent, source: string, title: string) {
    const created = w.issues(w.gitlabhq.id).filter((i) => i.id !== w.issue.id);
    expect(created).toMatchObject([{ iid: 2, title, author_id: w.jake.id, external_author: null, confidential: 0, state: 'opened' }]);
    const issue = created[0] as { id: number };
    processed(w, sent, { handler: 'new_issue', target_type: 'Issue', target_id: issue.id });
    expect(w.deliveries(sent.inboundMessageId)).toEqual([
      delivery({
        recipient: 'incoming@appmail.example.com',
        key: 'gitlabhq/gitlabhq+auth_token',
        source,
        destination: `new_issue:${w.gitlabhq.id}`,
        handler: 'new_issue',
        target_type: 'Issue',
        target_id: issue.id,
      }),
    ]);
    return created[0];
  }

  it('envelope_to_header.eml: key gitlabhq/gitlabhq+auth_token found in Envelope-To and dispatched', async () => {
    const { w, sent } = await receiverFinds('envelope_to_header.eml', 'jake@example.com');
    expectNewIssueFrom(w, sent, 'Envelope-To', 'Insert hilarious subject line here');
  });

  it('envelope_to_header_with_angle_brackets.eml: the same key found in an Envelope-To wrapped in <…>', async () => {
    const { w, sent } = await receiverFinds('envelope_to_header_with_angle_brackets.eml', 'jake@example.com');
    expectNewIssueFrom(w, sent, 'Envelope-To', 'Insert hilarious subject line here');
  });

  it('x_envelope_to_header.eml: the key found in X-Envelope-To', async () => {
    const { w, sent } = await receiverFinds('x_envelope_to_header.eml', 'jake@example.com');
    expectNewIssueFrom(w, sent, 'X-Envelope-To', 'Insert hilarious subject line here');
  });

  it('forwarded_new_issue.eml: the key found in the first of two Delivered-To headers; the issue is created', async () => {
    const { w, sent } = await receiverFinds('forwarded_new_issue.eml', 'jake@example.com');
    const issue = expectNewIssueFrom(w, sent, 'Delivered-To', 'New Issue by email');
    expect(issue?.description).toContain('reply by email');
  });

  it('missing_delivered_to_header.eml: the key found in a folded "Received: … for <…>" line', async () => {
    const { w, sent } = await receiverFinds('missing_delivered_to_header.eml', 'jake@example.com');
    expectNewIssueFrom(w, sent, 'Received', 'Insert hilarious subject line here');
    // GitLab logs the Received recipients; intake keeps the raw message, where both are, and records the one it used.
    const raw = w.inbound(sent.inboundMessageId).raw?.toString('latin1') ?? '';
    expect(raw).toContain('for <incoming+gitlabhq/gitlabhq+auth_token@appmail.example.com>');
    expect(raw).toContain('for <incoming+gitlabhq/gitlabhq@example.com>');
  });

  it('valid_reply_with_references_in_comma.eml: key 59d8df8370b7e95c5a49fbf86aeb2c93 found in a quoted, comma-separated References', async () => {
    const w = await world({ address: ADDRESS.receiver });
    // The fixture's sender, jake@example.com, is made one of jake's addresses so that the reply is his.
    w.addJakeAddress('jake@example.com');
    const sent = await w.send(w.fixture('valid_reply_with_references_in_comma.eml'), { from: 'jake@example.com', to: [w.mailbox] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const id = acceptedId(sent);
    const notes = w.notes('Issue', w.issue.id);
    expect(notes.map((n) => ({ author_id: n.author_id, body: n.body }))).toEqual([{ author_id: w.jake.id, body: collapsed(JAKE_REPLY) }]);
    processed(w, sent, { handler: 'reply', target_type: 'Note', target_id: (notes[0] as NoteRow).id });
    expect(w.deliveries(id)).toEqual([
      delivery({
        recipient: 'incoming@appmail.example.com',
        key: REPLY_KEY,
        source: 'References',
        destination: `Issue:${w.issue.id}`,
        handler: 'reply',
        target_type: 'Note',
        target_id: (notes[0] as NoteRow).id,
      }),
    ]);
  });

  it('service_desk_reference_headers.eml: no key in To, Received or References is refused as unknown (UnknownIncomingEmail)', async () => {
    const w = await world({ address: ADDRESS.receiver });
    const sent = await w.send(w.fixture('service_desk_reference_headers.eml'), { from: 'jake@example.com', to: [w.mailbox] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    expect(sent.data?.line).toBe(NO_KEY);
    expect(w.inbound(sent.inboundMessageId)).toMatchObject({ status: 'rejected', reason_code: 'data.no_key', smtp_reply: NO_KEY, target_id: null });
    expect(w.deliveries(sent.inboundMessageId)).toEqual([
      { recipient: 'incoming@appmail.example.com', key: null, source: null, destination: null, stage: 'data', status: 'rejected', reason_code: 'data.no_key', handler: null, target_type: null, target_id: null },
    ]);
    expect(w.count('issues')).toBe(1);
    expect(w.count('notes')).toBe(0);
  });
});

describe('new issue and comment on an issue by email (create_issue / create_note_on_issuable handlers)', () => {
  const newIssueKey = (w: GitlabWorld, token = 'auth_token') => `gitlabhq-gitlabhq-${w.gitlabhq.id}-${token}-issue`;

  async function newIssue(options: Partial<WorldOptions> = {}) {
    const w = await world({ address: ADDRESS.incoming, ...options });
    const to = w.address(newIssueKey(w));
    return { w, to };
  }

  function expectIssueCreated(w: GitlabWorld, sent: Sent, to: string, description: string) {
    const id = acceptedId(sent);
    const created = w.issues(w.gitlabhq.id).filter((i) => i.id !== w.issue.id);
    expect(created).toEqual([
      { id: expect.any(Number), project_id: w.gitlabhq.id, iid: 2, title: 'New Issue by email', description, author_id: w.jake.id, external_author: null, confidential: 0, state: 'opened' },
    ]);
    const issue = created[0] as { id: number };
    processed(w, sent, { handler: 'new_issue', target_type: 'Issue', target_id: issue.id });
    expect(w.deliveries(id)).toEqual([
      delivery({ recipient: to, key: newIssueKey(w), source: 'envelope', destination: `new_issue:${w.gitlabhq.id}`, handler: 'new_issue', target_type: 'Issue', target_id: issue.id }),
    ]);
  }

  it('valid_new_issue.eml: an issue by jake titled "New Issue by email" with the body as description; refused while the project is private to him (ProjectNotFound)', async () => {
    const { w, to } = await newIssue({ jakeAccessLevel: null });
    // A private project jake is no member of is not revealed.
    w.server.store.sqlite.prepare("update projects set visibility = 'private' where id = ?").run(w.gitlabhq.id);
    expect(await w.rcptOnly(to)).toBe(PROJECT_NOT_FOUND);
    w.server.store.sqlite.prepare("update projects set visibility = 'public' where id = ?").run(w.gitlabhq.id);

    const sent = await w.send(w.fixture('valid_new_issue.eml'), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    // GitLab's "attachment line" is its stubbed upload; this mail carries no attachment.
    expectIssueCreated(
      w,
      sent,
      to,
      'The reply by email functionality should be extended to allow creating a new issue by email.\n\n* Allow an admin to specify which project the issue should be created under by checking the sender domain.\n* Possibly allow the use of regular expression matches within the subject/body to specify which project the issue should be created under.',
    );
    expect(w.attachments()).toEqual([]);
  });

  it('valid_new_issue_empty.eml: the issue is created with an empty description', async () => {
    const { w, to } = await newIssue();
    const sent = await w.send(w.fixture('valid_new_issue_empty.eml'), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    expectIssueCreated(w, sent, to, '');
  });

  it('valid_new_issue_with_only_quotes.eml: a forward of nothing but quotes keeps them as the description', async () => {
    const { w, to } = await newIssue();
    const sent = await w.send(w.fixture('valid_new_issue_with_only_quotes.eml'), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    expectIssueCreated(w, sent, to, '> This email has been forwarded without new content.\n> There are only quotes.\n> Quote 1\n> Quote 2');
  });

  it('valid_new_issue_with_quote.eml: the untrimmed body, quote included, is the description', async () => {
    const { w, to } = await newIssue();
    const sent = await w.send(w.fixture('valid_new_issue_with_quote.eml'), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    expectIssueCreated(
      w,
      sent,
      to,
      'The reply by email functionality should be extended to allow creating a new issue by email.\neven when the email is forwarded to the project which may include lines that begin with ">"\n\nthere should be a quote below this line:\n\n> this is a quote',
    );
  });

  it.each([
    ['wrong_issue_incoming_email_token.eml', (w: GitlabWorld) => `gitlabhq-gitlabhq-${w.gitlabhq.id}-bad_token-issue`],
    ['wrong_authentication_token.eml', () => 'gitlabhq/gitlabhq+bad_token'],
    ['wrong_merge_request_incoming_email_token.eml', (w: GitlabWorld) => `gitlabhq-gitlabhq-${w.gitlabhq.id}-bad_token-merge-request`],
  ])('%s: the token belongs to no user: refused at RCPT TO (UserNotFoundError), nothing created', async (name, key) => {
    const w = await world({ address: ADDRESS.incoming });
    const to = w.address(key(w));
    const sent = await w.send(w.fixture(name), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([USER_NOT_FOUND]);
    expect(sent.data).toBeNull();
    expect(w.inbound(sent.inboundMessageId)).toMatchObject({ status: 'rejected', reason_code: 'rcpt.user_not_found', smtp_reply: USER_NOT_FOUND, raw: null });
    expect(w.deliveries(sent.inboundMessageId)).toEqual([refusedAtRcpt(to, 'rcpt.user_not_found')]);
    expect(w.count('issues')).toBe(1);
    expect(w.count('merge_requests')).toBe(1);
  });

  it('valid_note_on_issuable.eml: a note by jake on issue #1 with the quote kept; a confidential issue takes reporters only', async () => {
    const w = await world({ address: ADDRESS.incoming });
    const key = `gitlabhq-gitlabhq-${w.gitlabhq.id}-auth_token-issue-${w.issue.iid}`;
    const to = w.address(key);
    const sent = await w.send(w.fixture('valid_note_on_issuable.eml'), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const id = acceptedId(sent);
    const notes = w.notes('Issue', w.issue.id);
    expect(notes.map((n) => ({ author_id: n.author_id, external_author: n.external_author, body: n.body, system: n.system }))).toEqual([
      {
        author_id: w.jake.id,
        external_author: null,
        body: 'This should create a new comment on the issue.\n\n- Jake out\n\n> This quoted content will be included in the comment.',
        system: 0,
      },
    ]);
    const note = notes[0] as NoteRow;
    processed(w, sent, { handler: 'issue_note', target_type: 'Note', target_id: note.id });
    expect(w.deliveries(id)).toEqual([
      delivery({ recipient: to, key, source: 'envelope', destination: `Issue:${w.issue.id}`, handler: 'issue_note', target_type: 'Note', target_id: note.id }),
    ]);

    // Confidential issue: a guest is not authorized (UserNotAuthorizedError), a reporter may comment.
    const secret = w.server.repos.transaction(() =>
      w.server.repos.issuables.createIssue({ projectId: w.gitlabhq.id, authorId: w.eviltrout.id, title: 'Secret', description: '', confidential: true }),
    );
    const secretAddress = w.address(`gitlabhq-gitlabhq-${w.gitlabhq.id}-auth_token-issue-${secret.iid}`);
    w.server.repos.transaction(() => w.server.repos.projects.setMember({ projectId: w.gitlabhq.id, userId: w.jake.id, accessLevel: 10 }));
    expect(await w.rcptOnly(secretAddress)).toBe(NOT_PERMITTED);
    w.server.repos.transaction(() => w.server.repos.projects.setMember({ projectId: w.gitlabhq.id, userId: w.jake.id, accessLevel: 20 }));
    expect(await w.rcptOnly(secretAddress)).toBe(ACCEPTED);
  });

  it('update_commands_only.eml: a comment of only /close saves no note and closes the issue (one state change), no error', async () => {
    const w = await world({ address: ADDRESS.incoming });
    const key = `gitlabhq-gitlabhq-${w.gitlabhq.id}-auth_token-issue-${w.issue.iid}`;
    const to = w.address(key);
    const sent = await w.send(w.fixture('update_commands_only.eml'), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const id = acceptedId(sent);
    const notes = w.notes('Issue', w.issue.id);
    expect(userNotes(notes)).toEqual([]);
    expect(systemNotes(notes)).toEqual([{ author_id: w.jake.id, body: 'closed' }]);
    expect(w.issue_(w.issue.id).state).toBe('closed');
    processed(w, sent, { handler: 'issue_note', target_type: 'Issue', target_id: w.issue.id });
    expect(w.deliveries(id)).toEqual([
      delivery({ recipient: to, key, source: 'envelope', destination: `Issue:${w.issue.id}`, handler: 'issue_note', target_type: 'Issue', target_id: w.issue.id }),
    ]);
  });

  it('valid_reply_with_quick_actions.eml: on a Service Desk issue the note shows the commands inert (S3) and nothing changes; from a member they run', async () => {
    const w = await world({ address: ADDRESS.incoming });
    // Sent to the Service Desk address, the thread is the issue whose stored Message-ID the reply's
    // In-Reply-To names (here <issue_1@localhost>), and the sender is the external author. (A reply to
    // a Support Bot notification's key: commands_in_reply.eml above.)
    const desk = w.server.repos.transaction(() => {
      const issue = w.server.repos.issuables.createIssue({
        projectId: w.serviceDesk.id,
        authorId: null,
        externalAuthor: 'finn@adventuretime.ooo',
        title: 'service desk issue',
        description: 'Help!',
        confidential: true,
      });
      w.server.repos.issuables.addIssueEmail(issue.id, 'issue_1@localhost');
      return issue;
    });
    const deskKey = `email-test-${w.serviceDesk.id}-issue-`;
    const toDesk = w.address(deskKey);
    const sent = await w.send(w.fixture('valid_reply_with_quick_actions.eml'), { from: JAKE, to: [toDesk] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const id = acceptedId(sent);
    const deskNotes = w.notes('Issue', desk.id);
    expect(deskNotes).toHaveLength(1);
    expect(deskNotes[0]).toMatchObject({ author_id: null, external_author: JAKE, system: 0 });
    expect(deskNotes[0]?.body).toContain(S3);
    expect(w.issue_(desk.id)).toMatchObject({ title: 'service desk issue', state: 'opened' });
    processed(w, sent, { handler: 'service_desk', target_type: 'Note', target_id: (deskNotes[0] as NoteRow).id });
    expect(w.deliveries(id)).toEqual([
      delivery({ recipient: toDesk, key: deskKey, source: 'envelope', destination: `service_desk:${w.serviceDesk.id}`, handler: 'service_desk', target_type: 'Note', target_id: (deskNotes[0] as NoteRow).id }),
    ]);

    // A normal author (jake, developer, replying to his notification): /close and /title run and leave the note.
    const toReply = w.address(REPLY_KEY);
    const reply = await w.send(w.fixture('valid_reply_with_quick_actions.eml'), { from: JAKE, to: [toReply] });
    expect(reply.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    acceptedId(reply);
    const notes = w.notes('Issue', w.issue.id);
    expect(userNotes(notes).map((n) => n.body)).toEqual([collapsed(JAKE_REPLY)]);
    expect(systemNotes(notes)).toEqual([
      { author_id: w.jake.id, body: 'closed' },
      { author_id: w.jake.id, body: 'changed title from **Adventure Time Sux** to **test**' },
    ]);
    expect(w.issue_(w.issue.id)).toMatchObject({ title: 'test', state: 'closed' });
  });
});

describe('new merge request by email (create_merge_request handler)', () => {
  const mergeRequestKey = (w: GitlabWorld) => `gitlabhq-gitlabhq-${w.gitlabhq.id}-auth_token-merge-request`;

  async function newMergeRequest(name: string, key: (w: GitlabWorld) => string = mergeRequestKey) {
    const w = await world({ address: ADDRESS.incoming });
    const to = w.address(key(w));
    const sent = await w.send(w.fixture(name), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    return { w, to, sent };
  }

  function expectMergeRequest(w: GitlabWorld, sent: Sent, to: string, key: string, fields: { title: string; source_branch: string; target_branch: string; description?: string }) {
    const id = acceptedId(sent);
    const created = w.mergeRequests(w.gitlabhq.id).filter((m) => m.id !== w.mergeRequest.id);
    expect(created).toMatchObject([{ project_id: w.gitlabhq.id, iid: 2, author_id: w.jake.id, state: 'opened', ...fields }]);
    const mergeRequest = created[0] as { id: number; description: string };
    processed(w, sent, { handler: 'new_merge_request', target_type: 'MergeRequest', target_id: mergeRequest.id });
    expect(w.deliveries(id)).toEqual([
      delivery({ recipient: to, key, source: 'envelope', destination: `new_merge_request:${w.gitlabhq.id}`, handler: 'new_merge_request', target_type: 'MergeRequest', target_id: mergeRequest.id }),
    ]);
    return { id, mergeRequest };
  }

  const patchesOf = (w: GitlabWorld, mergeRequestId: number) =>
    w.attachments().filter((a) => a.owner_type === 'MergeRequest' && a.owner_id === mergeRequestId && a.filename.endsWith('.patch')).map((a) => a.filename);

  it('valid_merge_request_with_patch.eml: a merge request from new-branch-with-a-patch; the patch is stored with it and not named in the description', async () => {
    const { w, to, sent } = await newMergeRequest('valid_merge_request_with_patch.eml');
    // No git here: the branch and its commit "A commit from a patch" cannot be made; the patch is kept with the merge request.
    const { mergeRequest } = expectMergeRequest(w, sent, to, mergeRequestKey(w), { title: 'new-branch-with-a-patch', source_branch: 'new-branch-with-a-patch', target_branch: 'master' });
    expect(patchesOf(w, mergeRequest.id)).toEqual(['0001-A-commit-from-a-patch.patch']);
    expect(mergeRequest.description.startsWith('This applies nicely to a branch freshly created from the root-ref')).toBe(true);
    expect(mergeRequest.description).not.toContain('0001-A-commit-from-a-patch.patch');
  });

  it('merge_request_multiple_patches.eml: the patches are stored in file-name order, 0001 then 0002', async () => {
    const { w, to, sent } = await newMergeRequest('merge_request_multiple_patches.eml');
    const { mergeRequest } = expectMergeRequest(w, sent, to, mergeRequestKey(w), { title: 'new-branch-with-a-patch', source_branch: 'new-branch-with-a-patch', target_branch: 'master' });
    expect(patchesOf(w, mergeRequest.id)).toEqual(['0001-A-commit-from-a-patch.patch', '0002-This-does-not-apply-to-the-feature-branch.patch']);
    expect(mergeRequest.description).not.toContain('.patch');
  });

  it('merge_request_with_conflicting_patch.eml: the patch is stored (intake has no git, so the conflict GitLab reports as InvalidAttachment cannot be seen)', async () => {
    const { w, to, sent } = await newMergeRequest('merge_request_with_conflicting_patch.eml');
    const { mergeRequest } = expectMergeRequest(w, sent, to, mergeRequestKey(w), { title: 'feature', source_branch: 'feature', target_branch: 'master', description: 'This does not apply' });
    expect(patchesOf(w, mergeRequest.id)).toEqual(['0002-This-does-not-apply-to-the-feature-branch.patch']);
  });

  it('merge_request_with_patch_and_target_branch.eml: /target_branch with-codeowners sets the target; the command leaves the description', async () => {
    const { w, to, sent } = await newMergeRequest('merge_request_with_patch_and_target_branch.eml');
    const { mergeRequest } = expectMergeRequest(w, sent, to, mergeRequestKey(w), {
      title: 'new-branch-with-a-patch',
      source_branch: 'new-branch-with-a-patch',
      target_branch: 'with-codeowners',
      description: 'This applies nicely to a branch freshly created from the root-ref\n\nThe other attachments in this email are ignored',
    });
    expect(patchesOf(w, mergeRequest.id)).toEqual(['0001-A-commit-from-a-patch.patch']);
  });

  it('valid_new_merge_request.eml: the stored legacy copy opens a merge request from branch feature into the default branch; a guest is not authorized', async () => {
    const w = await world({ address: ADDRESS.incoming });
    const key = 'gitlabhq/gitlabhq+merge-request+auth_token';
    const to = w.address(key);
    w.server.repos.transaction(() => w.server.repos.projects.setMember({ projectId: w.gitlabhq.id, userId: w.jake.id, accessLevel: 10 }));
    expect(await w.rcptOnly(to)).toBe(NOT_PERMITTED);
    w.server.repos.transaction(() => w.server.repos.projects.setMember({ projectId: w.gitlabhq.id, userId: w.jake.id, accessLevel: 30 }));

    const sent = await w.send(w.fixture('valid_new_merge_request.eml'), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    // The kept copy has no body, and GitLab's title "Feature added" is the branch's commit: without git the subject is the title.
    expectMergeRequest(w, sent, to, key, { title: 'feature', source_branch: 'feature', target_branch: 'master', description: '' });
  });

  it('valid_new_merge_request_legacy.eml: the +merge-request+ address opens the merge request from feature with description "Merge request description"', async () => {
    const { w, to, sent } = await newMergeRequest('valid_new_merge_request_legacy.eml', () => 'gitlabhq/gitlabhq+merge-request+auth_token');
    // GitLab titles it "Feature added" from the branch's commit; without git intake titles it with the subject.
    expectMergeRequest(w, sent, to, 'gitlabhq/gitlabhq+merge-request+auth_token', {
      title: 'feature',
      source_branch: 'feature',
      target_branch: 'master',
      description: 'Merge request description',
    });
  });

  it('valid_new_merge_request_no_description.eml: opened with an empty description (GitLab takes the last commit message; intake has no git)', async () => {
    const { w, to, sent } = await newMergeRequest('valid_new_merge_request_no_description.eml');
    expectMergeRequest(w, sent, to, mergeRequestKey(w), { title: 'feature', source_branch: 'feature', target_branch: 'master', description: '' });
  });

  it('valid_new_merge_request_no_subject.eml: an empty subject is refused (InvalidMergeRequestError), no merge request', async () => {
    const { w, to, sent } = await newMergeRequest('valid_new_merge_request_no_subject.eml');
    expect(sent.data?.line).toBe(INVALID_MERGE_REQUEST);
    expect(w.inbound(sent.inboundMessageId)).toMatchObject({ status: 'rejected', reason_code: 'data.invalid_merge_request', smtp_reply: INVALID_MERGE_REQUEST });
    expect(w.deliveries(sent.inboundMessageId)).toEqual([
      {
        recipient: to,
        key: mergeRequestKey(w),
        source: null,
        destination: null,
        stage: 'data',
        status: 'rejected',
        reason_code: 'data.invalid_merge_request',
        handler: null,
        target_type: null,
        target_id: null,
      },
    ]);
    expect(w.count('merge_requests')).toBe(1);
  });
});

describe('Service Desk (service_desk handler and receiver)', () => {
  const deskKey = (w: GitlabWorld) => `email-test-${w.serviceDesk.id}-issue-`;

  /** A new confidential Service Desk issue in email/test, authored by its external sender. */
  function expectDeskIssue(w: GitlabWorld, sent: Sent, fields: { title?: string; description: string; external_author: string; participants: string[] }) {
    acceptedId(sent);
    const issues = w.issues(w.serviceDesk.id);
    expect(issues).toEqual([
      {
        id: expect.any(Number),
        project_id: w.serviceDesk.id,
        iid: 1,
        title: fields.title ?? SD_SUBJECT,
        description: fields.description,
        author_id: null,
        external_author: fields.external_author,
        confidential: 1,
        state: 'opened',
      },
    ]);
    const issue = issues[0] as { id: number };
    // Quick actions from outside are shown, never run.
    expect(w.labels(issue.id)).toEqual([]);
    expect(w.assignees(issue.id)).toEqual([]);
    expect(w.participants(issue.id)).toEqual(fields.participants);
    processed(w, sent, { handler: 'service_desk', target_type: 'Issue', target_id: issue.id });
    return issue;
  }

  function deskDelivery(w: GitlabWorld, recipient: string, key: string, source: string, targetId: number) {
    return delivery({ recipient, key, source, destination: `service_desk:${w.serviceDesk.id}`, handler: 'service_desk', target_type: 'Issue', target_id: targetId });
  }

  it('service_desk.eml: a confidential issue by the sender, description S1 with commands inert, Message-ID kept; with Cc participants on, 3 participants', async () => {
    const w = await world({ address: ADDRESS.incoming, serviceDeskCcParticipants: true });
    const to = w.address(deskKey(w));
    const sent = await w.send(w.fixture('service_desk.eml'), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    // No thank-you mail: intake sends no mail.
    const issue = expectDeskIssue(w, sent, { description: S1, external_author: JAKE, participants: [JAKE, 'cc@example.com', 'kk@example.org'] });
    expect(w.issueEmails(issue.id)).toEqual([SD_MESSAGE_ID]);
    expect(w.deliveries(sent.inboundMessageId)).toEqual([deskDelivery(w, to, deskKey(w), 'envelope', issue.id)]);
  });

  it('service_desk_legacy.eml: the legacy key email/test opens the same issue; one participant', async () => {
    const w = await world({ address: ADDRESS.incoming });
    const to = w.address('email/test');
    const sent = await w.send(w.fixture('service_desk_legacy.eml'), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const issue = expectDeskIssue(w, sent, { description: S1, external_author: JAKE, participants: [JAKE] });
    expect(w.deliveries(sent.inboundMessageId)).toEqual([deskDelivery(w, to, 'email/test', 'envelope', issue.id)]);
  });

  it('service_desk_all_quoted.eml: a body of only a quote is kept as the description', async () => {
    const w = await world({ address: ADDRESS.incoming });
    const to = w.address(deskKey(w));
    const sent = await w.send(w.fixture('service_desk_all_quoted.eml'), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const issue = expectDeskIssue(w, sent, {
      description: '> This is an empty quote\n> someone did forward this email without\n> adding any new content.',
      external_author: JAKE,
      participants: [JAKE],
    });
    expect(w.issue_(issue.id).description).toContain('> This is an empty quote');
  });

  it('service_desk_encoding.eml: the ISO-8859-2 subject and body are decoded: "Testing encoding iso-8859-2 ťžščľžťťč"', async () => {
    const w = await world({ address: ADDRESS.incoming });
    const to = w.address(deskKey(w));
    const sent = await w.send(w.fixture('service_desk_encoding.eml'), { from: JAKE, to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    expectDeskIssue(w, sent, {
      title: 'Testing encoding iso-8859-2 ťžščľžťťč',
      description: 'Body of encoding iso-8859-2 test: ťžščľžťťč',
      external_author: JAKE,
      participants: [JAKE],
    });
  });

  it('service_desk_reply.eml: a reply whose In-Reply-To names the issue is one note (S2) on it by the sender, no new issue; participants jake and alan', async () => {
    const w = await world({ address: ADDRESS.incoming });
    const to = w.address(deskKey(w));
    const first = await w.send(w.fixture('service_desk.eml'), { from: JAKE, to: [to] });
    const issue = expectDeskIssue(w, first, { description: S1, external_author: JAKE, participants: [JAKE] });

    const sent = await w.send(w.fixture('service_desk_reply.eml'), { from: 'alan@adventuretime.ooo', to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const id = acceptedId(sent);
    expect(w.issues(w.serviceDesk.id)).toHaveLength(1);
    const notes = w.notes('Issue', issue.id);
    expect(notes.map((n) => ({ author_id: n.author_id, external_author: n.external_author, body: n.body, system: n.system }))).toEqual([
      { author_id: null, external_author: 'alan@adventuretime.ooo', body: S2, system: 0 },
    ]);
    expect(w.participants(issue.id)).toEqual([JAKE, 'alan@adventuretime.ooo']);
    expect(w.labels(issue.id)).toEqual([]);
    processed(w, sent, { handler: 'service_desk', target_type: 'Note', target_id: (notes[0] as NoteRow).id });
    expect(w.deliveries(id)).toEqual([
      delivery({ recipient: to, key: deskKey(w), source: 'envelope', destination: `service_desk:${w.serviceDesk.id}`, handler: 'service_desk', target_type: 'Note', target_id: (notes[0] as NoteRow).id }),
    ]);
  });

  it('service_desk_reply_illegal_utf8.eml (UTF-8 copy): accepted, and with no such thread a new issue holding the reply', async () => {
    const w = await world({ address: ADDRESS.incoming });
    const to = w.address(deskKey(w));
    const message = w.fixture('service_desk_reply_illegal_utf8.eml');
    const sent = await w.send(message, { from: 'alan@adventuretime.ooo', to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    acceptedId(sent);
    const issues = w.issues(w.serviceDesk.id);
    expect(issues).toMatchObject([{ title: SD_SUBJECT, author_id: null, external_author: 'alan@adventuretime.ooo', confidential: 1 }]);
    // This copy is UTF-8 under a Shift_JIS label, so only its ASCII lines are certain; the derived fixture checks the Japanese.
    const description = (issues[0] as { description: string }).description;
    expect(description.startsWith('Service desk reply!\n')).toBe(true);
    expect(description).toContain('\n`/label ~label2`\n');
    expect(description.endsWith('\n(encoded with `Shift_JIS` not UTF-8 for the purposes of testing)')).toBe(true);
    expect(w.inbound(sent.inboundMessageId).raw).toEqual(toWire(message));
  });

  it('derived/service_desk_reply_illegal_utf8.shift_jis.eml: the Shift_JIS bytes are stored as sent and the text is converted to UTF-8', async () => {
    const w = await world({ address: ADDRESS.incoming });
    const to = w.address(deskKey(w));
    const message = w.fixture('derived/service_desk_reply_illegal_utf8.shift_jis.eml');
    const sent = await w.send(message, { from: 'alan@adventuretime.ooo', to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    expectDeskIssue(w, sent, {
      description:
        'Service desk reply!\nピーター・ジョーンズ\n\n`/label ~label2`\nピーター・ジョーンズ\n(encoded with `Shift_JIS` not UTF-8 for the purposes of testing)',
      external_author: 'alan@adventuretime.ooo',
      participants: ['alan@adventuretime.ooo'],
    });
    expect(w.inbound(sent.inboundMessageId).raw).toEqual(toWire(message));
  });

  it('service_desk_forwarded.eml: forwarded through an alias, the key is in Delivered-To; a new issue with participant jake.g', async () => {
    const w = await world({ address: ADDRESS.incoming });
    const sent = await w.send(w.fixture('service_desk_forwarded.eml'), { from: 'jake.g@adventuretime.ooo', to: [w.mailbox] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const issue = expectDeskIssue(w, sent, { description: S1, external_author: 'jake.g@adventuretime.ooo', participants: ['jake.g@adventuretime.ooo'] });
    expect(w.issueEmails(issue.id)).toEqual(['CADkmRc+rNGAGGbV2iE5p918UVy4UyJqVcXRO2=fdskbsf@mail.gmail.com']);
    expect(w.deliveries(sent.inboundMessageId)).toEqual([deskDelivery(w, w.mailbox, deskKey(w), 'Delivered-To', issue.id)]);
  });

  it('service_desk_forwarded_new_issue.eml: the forwarded block is kept verbatim in the description (S4)', async () => {
    const w = await world({ address: ADDRESS.incoming });
    const sent = await w.send(w.fixture('service_desk_forwarded_new_issue.eml'), { from: JAKE, to: [w.mailbox] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const issue = expectDeskIssue(w, sent, { description: S4, external_author: JAKE, participants: [JAKE] });
    expect(w.deliveries(sent.inboundMessageId)).toEqual([deskDelivery(w, w.mailbox, deskKey(w), 'Delivered-To', issue.id)]);
  });

  it('service_desk_sender_and_from.eml: From wins over Sender: external author finn@adventuretime.ooo', async () => {
    const w = await world({ address: ADDRESS.incoming });
    const sent = await w.send(w.fixture('service_desk_sender_and_from.eml'), { from: JAKE, to: [w.mailbox] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    expectDeskIssue(w, sent, { description: 'Service desk stuff!\n\n```\na = b\n```', external_author: 'finn@adventuretime.ooo', participants: ['finn@adventuretime.ooo'] });
  });

  it('service_desk_reply_to_and_from.eml: Reply-To, From and Sender differ: the author is Reply-To, marceline@adventuretime.ooo', async () => {
    const w = await world({ address: ADDRESS.incoming });
    const sent = await w.send(w.fixture('service_desk_reply_to_and_from.eml'), { from: JAKE, to: [w.mailbox] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    // Only the old (2021) specs assert this fixture. GitLab's current BaseHandler#from_address, and
    // intake (issue 3: "external_author = Reply-To or From"), take Reply-To first: answers go there.
    expectDeskIssue(w, sent, { description: 'Service desk stuff!\n\n```\na = b\n```', external_author: 'marceline@adventuretime.ooo', participants: ['marceline@adventuretime.ooo'] });
  });

  it('service_desk_reply_to_sender_and_from.eml: Reply-To, Sender and From differ: the author is Reply-To, hooman@adventuretime.ooo', async () => {
    const w = await world({ address: ADDRESS.incoming });
    const sent = await w.send(w.fixture('service_desk_reply_to_sender_and_from.eml'), { from: JAKE, to: [w.mailbox] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    // As above: only an old spec ignored Reply-To; current GitLab code and intake take it first.
    expectDeskIssue(w, sent, { description: 'Service desk stuff!\n\n```\na = b\n```', external_author: 'hooman@adventuretime.ooo', participants: ['hooman@adventuretime.ooo'] });
  });

  it('no_content_type.eml: an Exim delivery without Content-Type opens an issue with no attachments and no error', async () => {
    // The fixture names project id 2 under its own alias domain; email/test moves out of the way.
    const w = await world({ address: 'gitlab+%{key}@qyber.black', serviceDeskProjectId: 7 });
    const project = w.server.repos.transaction(() =>
      w.server.repos.projects.create({ id: 2, path: 'gitlab-instance-administrators-9a72b788/code-hello-world-php', name: 'code-hello-world-php', visibility: 'private', serviceDeskEnabled: true }),
    );
    const key = 'gitlab-instance-administrators-9a72b788-code-hello-world-php-2-issue-';
    const to = w.address(key);
    const sent = await w.send(w.fixture('no_content_type.eml'), { from: 'frank@example.org', to: [to] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    const id = acceptedId(sent);
    const issues = w.issues(project.id);
    expect(issues).toMatchObject([{ title: 'Testing Service Desk E-Mail', description: 'Test.', author_id: null, external_author: 'frank@example.org', confidential: 1 }]);
    expect(w.attachments()).toEqual([]);
    processed(w, sent, { handler: 'service_desk', target_type: 'Issue', target_id: (issues[0] as { id: number }).id });
    expect(w.deliveries(id)).toEqual([
      delivery({ recipient: to, key, source: 'envelope', destination: `service_desk:${project.id}`, handler: 'service_desk', target_type: 'Issue', target_id: (issues[0] as { id: number }).id }),
    ]);
  });

  describe('on the alias address support+%{key}@example.com', () => {
    const aliasKey = `email-test-${SERVICE_DESK_KEY}`;

    it('service_desk_custom_address.eml: key <slug>-mykey opens the issue in the project whose slug matches; unknown key or wrong slug → ProjectNotFound', async () => {
      const w = await world({ address: ADDRESS.alias });
      // Another project with the same Service Desk key: the slug decides.
      w.server.repos.transaction(() =>
        w.server.repos.projects.create({ path: 'email/other', name: 'other', visibility: 'private', serviceDeskEnabled: true, serviceDeskKey: SERVICE_DESK_KEY }),
      );
      expect(await w.rcptOnly(w.address('email-test-some_key'))).toBe(PROJECT_NOT_FOUND);
      expect(await w.rcptOnly(w.address(`some-slug-${SERVICE_DESK_KEY}`))).toBe(PROJECT_NOT_FOUND);

      const to = w.address(aliasKey);
      const sent = await w.send(w.fixture('service_desk_custom_address.eml'), { from: JAKE, to: [to] });
      expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
      const issue = expectDeskIssue(w, sent, { description: S1, external_author: JAKE, participants: [JAKE] });
      expect(w.deliveries(sent.inboundMessageId)).toEqual([deskDelivery(w, to, aliasKey, 'envelope', issue.id)]);
    });

    it('service_desk_custom_address_no_key.eml: the incoming-style key on the alias domain opens a new issue', async () => {
      const w = await world({ address: ADDRESS.alias });
      const to = w.address(deskKey(w));
      const sent = await w.send(w.fixture('service_desk_custom_address_no_key.eml'), { from: JAKE, to: [to] });
      expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
      const issue = expectDeskIssue(w, sent, { description: S1, external_author: JAKE, participants: [JAKE] });
      expect(w.deliveries(sent.inboundMessageId)).toEqual([deskDelivery(w, to, deskKey(w), 'envelope', issue.id)]);
    });

    it.each([
      ['service_desk_custom_address_envelope_to.eml', 'Envelope-To'],
      ['service_desk_custom_address_reply.eml', 'Delivered-To'],
      ['service_desk_custom_address_x_envelope_to.eml', 'X-Envelope-To'],
    ])('%s: key project_slug-project_key found in %s; with no such thread, a new issue holding S2', async (name, source) => {
      const w = await world({ address: ADDRESS.alias });
      const sent = await w.send(w.fixture(name), { from: 'alan@adventuretime.ooo', to: [w.mailbox] });
      expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
      const issue = expectDeskIssue(w, sent, { description: S2, external_author: 'alan@adventuretime.ooo', participants: ['alan@adventuretime.ooo'] });
      expect(w.deliveries(sent.inboundMessageId)).toEqual([deskDelivery(w, 'support@example.com', aliasKey, source, issue.id)]);
    });

    it('service_desk_custom_email_address_verification.eml, with that custom email set: stored and ignored, no issue, as GitLab takes the verification', async () => {
      const w = await world({ address: ADDRESS.alias });
      w.server.repos.projects.update(w.serviceDesk.id, { serviceDeskCustomEmail: 'custom-support-email@example.com' });
      const sent = await w.send(w.fixture('service_desk_custom_email_address_verification.eml'), { from: 'custom-support-email@example.com', to: [w.mailbox] });
      expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
      expect(sent.data?.line).toMatch(/^250 2\.6\.0 Service Desk custom email verification accepted and ignored/);
      expect(w.inbound(sent.inboundMessageId).status).toBe('ignored');
      expect(w.deliveries(sent.inboundMessageId)).toMatchObject([{ reason_code: 'data.custom_email_verification', source: 'To' }]);
      expect(w.issues(w.serviceDesk.id)).toEqual([]);
    });

    it('service_desk_custom_email_address_verification.eml, with no custom email set: an ordinary Service Desk issue (Delivered-To names the Service Desk)', async () => {
      const w = await world({ address: ADDRESS.alias });
      const sent = await w.send(w.fixture('service_desk_custom_email_address_verification.eml'), { from: 'custom-support-email@example.com', to: [w.mailbox] });
      expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
      // GitLab records the verification (token ZROT4ZZXA-Y6) and creates no issue; intake routes the Delivered-To key like any Service Desk mail.
      const issue = expectDeskIssue(w, sent, {
        title: 'Verify custom email address custom-support-email@example.com for Flight',
        description:
          'This email is auto-generated. It verifies the ownership of the entered Service Desk custom email address and\ncorrect functionality of email forwarding.\n\nVerification token: ZROT4ZZXA-Y6\n--\n\nYou\'re receiving this email because of your account on 127.0.0.1.',
        // Reply-To (GitLab <noreply@example.com>) comes first, as for every Service Desk mail.
        external_author: 'noreply@example.com',
        participants: ['noreply@example.com'],
      });
      expect(w.deliveries(sent.inboundMessageId)).toEqual([deskDelivery(w, 'support@example.com', deskKey(w), 'Delivered-To', issue.id)]);
    });
  });
});

describe('mail with no key', () => {
  it('valid_incoming.eml: addressed to to@example.com with no key anywhere: refused (relay denied at RCPT; unknown at the mailbox)', async () => {
    const w = await world({ address: ADDRESS.incoming });
    expect(await w.rcptOnly('to@example.com', 'from@example.com')).toBe(RELAY_DENIED);
    const sent = await w.send(w.fixture('valid_incoming.eml'), { from: 'from@example.com', to: [w.mailbox] });
    expect(sent.rcpt.map((r) => r.line)).toEqual([ACCEPTED]);
    expect(sent.data?.line).toBe(NO_KEY);
    expect(w.inbound(sent.inboundMessageId)).toMatchObject({ status: 'rejected', reason_code: 'data.no_key', smtp_reply: NO_KEY });
    expect(w.deliveries(sent.inboundMessageId)).toEqual([
      { recipient: w.mailbox, key: null, source: null, destination: null, stage: 'data', status: 'rejected', reason_code: 'data.no_key', handler: null, target_type: null, target_id: null },
    ]);
    expect(w.count('issues')).toBe(1);
  });
});
