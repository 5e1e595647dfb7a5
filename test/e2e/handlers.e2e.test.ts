// Every handler over real SMTP: new issue, comment on issue, new merge request, Service Desk,
// unsubscribe, quick actions, and mail to the mailbox address routed by its headers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueNoteKey, newIssueKey, newMergeRequestKey, serviceDeskAliasKey, serviceDeskKey, unsubscribeKey } from '../../src/address/keys.js';
import { compileTemplate } from '../../src/address/template.js';
import { sendMail } from '../helpers/smtp-client.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const template = compileTemplate('incoming+%{key}@example.com');
const serviceDeskAlias = compileTemplate('contact+%{key}@help.example.com');
let server: RunningServer;
let n = 0;

beforeAll(async () => {
  server = await startServer({ INTAKE_HOSTNAME: 'tracker.example.com', INTAKE_SERVICE_DESK_ADDRESS: 'contact+%{key}@help.example.com' });
});
afterAll(async () => {
  await server?.stop();
});

function world(options: { visibility?: 'private' | 'internal' | 'public'; level?: number | null; serviceDesk?: Partial<{ key: string; reopen: boolean; cc: boolean; confidential: boolean }> } = {}) {
  n++;
  return server.repos.transaction(() => {
    const user = server.repos.users.create({ username: `dev${n}`, name: `Dev ${n}`, email: `dev${n}@example.org`, incomingEmailToken: `glimt-tok${n}` });
    const other = server.repos.users.create({ username: `other${n}`, name: `Other ${n}`, email: `other${n}@example.org`, incomingEmailToken: `glimt-oth${n}` });
    const project = server.repos.projects.create({
      path: `Group${n}/My.Project`,
      name: 'My Project',
      visibility: options.visibility ?? 'private',
      serviceDeskEnabled: options.serviceDesk !== undefined,
      serviceDeskKey: options.serviceDesk?.key ?? null,
      serviceDeskReopen: options.serviceDesk?.reopen ?? false,
      serviceDeskCcParticipants: options.serviceDesk?.cc ?? false,
      serviceDeskConfidential: options.serviceDesk?.confidential ?? true,
      defaultBranch: 'trunk',
    });
    if (options.level !== null) server.repos.projects.setMember({ projectId: project.id, userId: user.id, accessLevel: options.level ?? 30 });
    const issue = server.repos.issuables.createIssue({ projectId: project.id, authorId: other.id, title: 'Squeaks', description: '' });
    return { user, other, project, issue };
  });
}

const db = () => server.store.sqlite;
const mail = (headers: Record<string, string>, body: string) =>
  `${Object.entries({ 'Message-ID': `<m${Math.random().toString(36).slice(2)}@client.test>`, ...headers })
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n')}\n\n${body}\n`;

describe('new issue by email', () => {
  it('creates an issue by the token\'s user with the subject and the whole body, and runs its quick actions', async () => {
    const w = world();
    const to = template.format(newIssueKey(w.project.path, w.project.id, w.user.incomingEmailToken));
    expect(to).toBe(`incoming+group${n}-my-project-${w.project.id}-glimt-tok${n}-issue@example.com`);
    const { rcpt, data } = await sendMail(server.port, { from: 'anyone@example.net', to: [to], message: mail({ From: 'anyone@example.net', To: to, Subject: 'Widgets squeak' }, 'They squeak.\n\n> quoted context stays\n/label ~bug ~"needs info"') });
    expect(rcpt[0]?.line).toBe('250 2.1.5 Accepted');
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted/);
    const issue = db().prepare('select id, iid, title, description, author_id from issues where project_id = ? and iid = 2').get(w.project.id) as { id: number; title: string; description: string; author_id: number };
    expect(issue).toMatchObject({ title: 'Widgets squeak', description: 'They squeak.\n\n> quoted context stays', author_id: w.user.id });
    expect(db().prepare('select label from issue_labels where issue_id = ? order by id').all(issue.id)).toEqual([{ label: 'bug' }, { label: 'needs info' }]);
    expect(db().prepare('select body, system from notes where noteable_id = ?').all(issue.id)).toEqual([{ body: 'added ~bug ~needs info labels', system: 1 }]);
  });

  it('makes the subject one line of at most 255 characters, whatever its encoded words hold', async () => {
    const w = world();
    const to = template.format(newIssueKey(w.project.path, w.project.id, w.user.incomingEmailToken));
    const subject = `=?utf-8?Q?Order_123=0D=0AX-Injected:_yes=00?= ${'long '.repeat(60)}`;
    const { data } = await sendMail(server.port, { from: 'anyone@example.net', to: [to], message: mail({ From: 'anyone@example.net', To: to, Subject: subject }, 'Body.') });
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted/);
    const { title } = db().prepare('select title from issues where project_id = ? and iid = 2').get(w.project.id) as { title: string };
    expect(title.startsWith('Order 123 X-Injected: yes long long')).toBe(true);
    expect(title.endsWith('long…')).toBe(true);
    expect([...title].length).toBeLessThanOrEqual(255);
  });

  it('stores a text file Apple Mail marks inline as a file, and never runs the commands in it', async () => {
    const w = world();
    const to = template.format(newIssueKey(w.project.path, w.project.id, w.user.incomingEmailToken));
    const body = [
      '--m', 'Content-Type: text/plain; charset=us-ascii', '', 'The app crashes on startup, log attached.', '',
      '--m', 'Content-Type: text/plain; name="crash.log.txt"', 'Content-Disposition: inline; filename="crash.log.txt"', '', 'FATAL widget', '/close', '',
      '--m--',
    ].join('\n');
    const { data } = await sendMail(server.port, { from: 'anyone@example.net', to: [to], message: mail({ From: 'anyone@example.net', To: to, Subject: 'Crash', 'MIME-Version': '1.0', 'Content-Type': 'multipart/mixed; boundary="m"' }, body) });
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted/);
    const issue = db().prepare('select id, description, state from issues where project_id = ? and iid = 2').get(w.project.id) as { id: number; description: string; state: string };
    const files = db().prepare("select id, filename from attachments where owner_type = 'Issue' and owner_id = ?").all(issue.id) as { id: number; filename: string }[];
    expect(files.map((f) => f.filename)).toEqual(['crash.log.txt']);
    expect(issue).toMatchObject({ description: `The app crashes on startup, log attached.\n\n[crash.log.txt](attachment:${files[0]?.id})`, state: 'opened' });
  });

  it('refuses a wrong token at RCPT, and a non-member of a private project; takes a non-member of an internal one; refuses a missing subject at DATA', async () => {
    const w = world({ visibility: 'internal', level: null });
    const bad = template.format(newIssueKey(w.project.path, w.project.id, 'glimt-wrong'));
    const notMember = template.format(newIssueKey(w.project.path, w.project.id, w.user.incomingEmailToken));
    const hidden = world({ visibility: 'private', level: null });
    const notMemberPrivate = template.format(newIssueKey(hidden.project.path, hidden.project.id, hidden.user.incomingEmailToken));
    const { rcpt } = await sendMail(server.port, { from: 'a@example.net', to: [bad, notMember, notMemberPrivate], message: 'Subject: x\n\nx' });
    // An internal project is open to every user of the instance, as a guest, and a guest may open issues.
    expect(rcpt.map((r) => r.line)).toEqual([
      "550 5.1.1 We couldn't figure out what user corresponds to the email. Please create your comment through the web interface.",
      '250 2.1.5 Accepted',
      "550 5.7.1 We couldn't find the project. Please check if there's any typo.",
    ]);
    const { data } = await sendMail(server.port, { from: 'a@example.net', to: [notMember], message: mail({ From: 'a@example.net' }, 'No subject here.') });
    expect(data.line).toBe("550 5.6.0 The issue could not be created for the following reasons: Title can't be blank");
  });

  it('finds the project of a legacy key in any case, as GitLab does (a relay may lower-case the address)', async () => {
    const w = world();
    const lowered = template.format(`${w.project.path.toLowerCase()}+${w.user.incomingEmailToken}`);
    const { rcpt, data } = await sendMail(server.port, { from: 'a@example.net', to: [lowered], message: mail({ From: 'a@example.net', Subject: 'Lower case' }, 'Found anyway.') });
    expect(rcpt[0]?.line).toBe('250 2.1.5 Accepted');
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted/);
    expect(db().prepare("select author_id from issues where project_id = ? and title = 'Lower case'").get(w.project.id)).toEqual({ author_id: w.user.id });
  });

  it('refuses an address whose project was renamed since (the slug no longer matches)', async () => {
    const w = world();
    const to = template.format(newIssueKey(w.project.path, w.project.id, w.user.incomingEmailToken));
    db().prepare('update projects set path = ? where id = ?').run(`renamed${n}/project`, w.project.id);
    const { rcpt } = await sendMail(server.port, { from: 'a@example.net', to: [to], message: 'Subject: x\n\nx' });
    expect(rcpt[0]?.line).toBe("550 5.7.1 We couldn't find the project. Please check if there's any typo.");
  });
});

describe('comment on an issue by email', () => {
  it('adds the whole body as a note, quotes included, and closes the issue with /close', async () => {
    const w = world({ level: 20 });
    const to = template.format(issueNoteKey(w.project.path, w.project.id, w.user.incomingEmailToken, w.issue.iid));
    const { data } = await sendMail(server.port, { from: 'a@example.net', to: [to], message: mail({ From: 'a@example.net', Subject: 'Fwd: logs' }, 'See below.\n/close\n\n> forwarded mail\n> keeps its quotes') });
    expect(data.code).toBe(250);
    expect(db().prepare('select body, system, author_id from notes where noteable_id = ? order by id').all(w.issue.id)).toEqual([
      { body: 'closed', system: 1, author_id: w.user.id },
      { body: 'See below.\n\n> forwarded mail\n> keeps its quotes', system: 0, author_id: w.user.id },
    ]);
    expect(db().prepare('select state from issues where id = ?').get(w.issue.id)).toEqual({ state: 'closed' });
  });

  it('keeps an HTML forward whose text is all quotation: forwarding into an issue is what the address is for', async () => {
    const w = world({ level: 20 });
    const to = template.format(issueNoteKey(w.project.path, w.project.id, w.user.incomingEmailToken, w.issue.iid));
    const html = '<hr><div id="divRplyFwdMsg"><b>From:</b> Customer<br><b>Sent:</b> Monday</div><div>It squeaks.</div>';
    const { data } = await sendMail(server.port, { from: 'a@example.net', to: [to], message: mail({ From: 'a@example.net', Subject: 'FW: squeak', 'Content-Type': 'text/html; charset=utf-8' }, html) });
    expect(data.code).toBe(250);
    expect(db().prepare('select body from notes where noteable_id = ?').all(w.issue.id)).toEqual([{ body: '> **From:** Customer\n> **Sent:** Monday\n>\n> It squeaks.' }]);
  });

  it('refuses an issue that does not exist', async () => {
    const w = world();
    const to = template.format(issueNoteKey(w.project.path, w.project.id, w.user.incomingEmailToken, 99));
    const { rcpt } = await sendMail(server.port, { from: 'a@example.net', to: [to], message: 'x' });
    expect(rcpt[0]?.line).toMatch(/^550 5\.1\.1 The thread you are replying to no longer exists/);
  });
});

describe('new merge request by email', () => {
  it('takes title and source branch from the subject, the target from /target_branch or the default, and stores patches in name order', async () => {
    const w = world();
    const to = template.format(newMergeRequestKey(w.project.path, w.project.id, w.user.incomingEmailToken));
    const part = (name: string, type: string, content: string) => [`--b`, `Content-Type: ${type}; name="${name}"`, `Content-Disposition: attachment; filename="${name}"`, '', content].join('\n');
    const body = ['MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', 'Subject: feature-oil', 'From: a@example.net', '', '--b', 'Content-Type: text/plain', '', 'Adds oil.\n/target_branch release', part('0002-second.patch', 'text/x-diff', 'two'), part('0001-first.patch', 'text/x-diff', 'one'), '--b--', ''].join('\n');
    const { data } = await sendMail(server.port, { from: 'a@example.net', to: [to], message: body });
    expect(data.code).toBe(250);
    const mr = db().prepare('select id, title, source_branch, target_branch, description, author_id from merge_requests where project_id = ?').get(w.project.id) as { id: number };
    expect(mr).toMatchObject({ title: 'feature-oil', source_branch: 'feature-oil', target_branch: 'release', description: 'Adds oil.', author_id: w.user.id });
    expect(db().prepare("select filename from attachments where owner_type = 'MergeRequest' and owner_id = ? order by id").all(mr.id)).toEqual([{ filename: '0001-first.patch' }, { filename: '0002-second.patch' }]);
    const plain = await sendMail(server.port, { from: 'a@example.net', to: [to], message: mail({ From: 'a@example.net', Subject: 'other-branch' }, 'No target given.') });
    expect(plain.data.code).toBe(250);
    expect(db().prepare("select target_branch from merge_requests where source_branch = 'other-branch' and project_id = ?").get(w.project.id)).toEqual({ target_branch: 'trunk' });
  });

  it('refuses a source or target branch git would not take, naming it', async () => {
    const w = world();
    const to = template.format(newMergeRequestKey(w.project.path, w.project.id, w.user.incomingEmailToken));
    const bad = await sendMail(server.port, { from: 'a@example.net', to: [to], message: mail({ From: 'a@example.net', Subject: '../../refs/heads/main' }, 'Sneaky.') });
    expect(bad.data.line).toBe('550 5.6.0 The merge request could not be created: its source branch (the subject) or target branch is not a name git takes');
    const reason = () => (db().prepare("select reason from deliveries where reason_code = 'data.invalid_branch' order by id desc limit 1").get() as { reason: string }).reason;
    expect(reason()).toMatch(/ \("\.\.\/\.\.\/refs\/heads\/main"\)$/);
    const target = await sendMail(server.port, { from: 'a@example.net', to: [to], message: mail({ From: 'a@example.net', Subject: 'fine-branch' }, 'Into where?\n/target_branch $(touch x)') });
    expect(target.data.code).toBe(550);
    expect(reason()).toMatch(/ \("\$\(touch x\)"\)$/);
    expect(db().prepare('select count(*) as n from merge_requests where project_id = ?').get(w.project.id)).toEqual({ n: 0 });
  });

  it('refuses, in GitLab\'s words, a source branch that is the target, and a second open merge request between the same branches', async () => {
    const w = world();
    const to = template.format(newMergeRequestKey(w.project.path, w.project.id, w.user.incomingEmailToken));
    const send = (subject: string, body: string, messageId: string) =>
      sendMail(server.port, { from: 'a@example.net', to: [to], message: mail({ From: 'a@example.net', Subject: subject, 'Message-ID': `<mr-${w.project.id}-${messageId}@example.net>` }, body) });
    const count = () => (db().prepare('select count(*) as n from merge_requests where project_id = ?').get(w.project.id) as { n: number }).n;
    // The project's default branch is trunk (see world()).
    const same = await send('trunk', 'Into itself.', 'same-1');
    expect(same.data.line).toBe("550 5.6.0 The merge request could not be created for the following reasons: Branch conflict You can't use same project/branch for source and target");
    const sameExplicit = await send('release', 'Into itself too.\n/target_branch release', 'same-2');
    expect(sameExplicit.data.line).toBe(same.data.line);
    expect(count()).toBe(0);
    expect((await send('feature-x', 'First.', 'first')).data.code).toBe(250);
    const iid = (db().prepare("select iid from merge_requests where project_id = ? and source_branch = 'feature-x'").get(w.project.id) as { iid: number }).iid;
    const again = await send('feature-x', 'Second.', 'second');
    expect(again.data.line).toBe('550 5.6.0 The merge request could not be created for the following reasons: Validate branches Another open merge request already exists for this source branch');
    const reason = db().prepare("select reason from deliveries where reason_code = 'data.merge_request_exists' order by id desc limit 1").get() as { reason: string };
    expect(reason.reason).toMatch(new RegExp(` \\(!${iid}\\)$`));
    // The same source into another target is another merge request, as is one after the first is closed.
    expect((await send('feature-x', 'Elsewhere.\n/target_branch release', 'third')).data.code).toBe(250);
    db().prepare("update merge_requests set state = 'closed' where project_id = ? and iid = ?").run(w.project.id, iid);
    expect((await send('feature-x', 'After closing.', 'fourth')).data.code).toBe(250);
    // The first message delivered again is still the one merge request it made, not a refusal.
    expect((await send('feature-x', 'First.', 'first')).data.code).toBe(250);
    expect(count()).toBe(3);
  });

  it('refuses a subject that is nothing but control characters, as a missing one', async () => {
    const w = world();
    const to = template.format(newMergeRequestKey(w.project.path, w.project.id, w.user.incomingEmailToken));
    const { data } = await sendMail(server.port, { from: 'a@example.net', to: [to], message: mail({ From: 'a@example.net', Subject: '=?utf-8?q?=01=1B?=' }, 'Body.') });
    expect(data.line).toBe("550 5.6.0 The merge request could not be created for the following reasons: Title can't be blank, Source branch can't be blank");
  });

  it('needs developer access, and a subject', async () => {
    const reporter = world({ level: 20 });
    const to = template.format(newMergeRequestKey(reporter.project.path, reporter.project.id, reporter.user.incomingEmailToken));
    expect((await sendMail(server.port, { from: 'a@example.net', to: [to], message: 'x' })).rcpt[0]?.code).toBe(550);
    const dev = world();
    const devTo = template.format(newMergeRequestKey(dev.project.path, dev.project.id, dev.user.incomingEmailToken));
    const { data } = await sendMail(server.port, { from: 'a@example.net', to: [devTo], message: mail({ From: 'a@example.net', Subject: '' }, 'No subject.') });
    expect(data.line).toBe("550 5.6.0 The merge request could not be created for the following reasons: Title can't be blank, Source branch can't be blank");
  });
});

describe('Service Desk', () => {
  it('opens issues that are not confidential where the project says so, except in a public project, as GitLab\'s tickets_confidential_by_default', async () => {
    const confidentialOf = async (visibility: 'private' | 'public', confidential: boolean) => {
      const w = world({ visibility, serviceDesk: { confidential } });
      const to = template.format(serviceDeskKey(w.project.path, w.project.id));
      expect((await sendMail(server.port, { from: 'customer@corp.example', to: [to], message: mail({ From: 'customer@corp.example', Subject: 'Door stuck' }, 'It sticks.') })).data.code).toBe(250);
      return (db().prepare("select confidential from issues where project_id = ? and title = 'Door stuck'").get(w.project.id) as { confidential: number }).confidential;
    };
    expect(await confidentialOf('private', false)).toBe(0);
    expect(await confidentialOf('private', true)).toBe(1);
    expect(await confidentialOf('public', false)).toBe(1);
  });

  it('opens a confidential issue by an external author, shows quick actions without running them, and threads the replies', async () => {
    const w = world({ serviceDesk: { key: 'help', reopen: true, cc: true } });
    const to = template.format(serviceDeskKey(w.project.path, w.project.id));
    // Of the Cc, intake's own addresses (the template's) are left out; a person at its domain is not.
    const first = mail({ From: 'Customer <customer@corp.example>', Cc: `boss@corp.example, incoming@example.com, ${to}, colleague@example.com, "Bob" <bob>`, Subject: 'Broken', 'Message-ID': `<sd${n}@corp.example>` }, 'It broke.\n/close\n/label ~urgent');
    expect((await sendMail(server.port, { from: 'customer@corp.example', to: [to], message: first })).data.code).toBe(250);
    const issue = db().prepare("select id, title, description, author_id, external_author, confidential, state from issues where project_id = ? and title = 'Broken'").get(w.project.id) as { id: number };
    expect(issue).toMatchObject({ description: 'It broke.\n`/close`\n`/label ~urgent`', author_id: null, external_author: 'customer@corp.example', confidential: 1, state: 'opened' });
    expect(db().prepare('select email from issue_email_participants where issue_id = ? order by id').all(issue.id)).toEqual([{ email: 'customer@corp.example' }, { email: 'boss@corp.example' }, { email: 'colleague@example.com' }]);
    expect(db().prepare('select email_message_id from issue_emails where issue_id = ?').all(issue.id)).toEqual([{ email_message_id: `sd${n}@corp.example` }]);

    db().prepare("update issues set state = 'closed' where id = ?").run(issue.id);
    const alias = template.format(serviceDeskAliasKey(w.project.path, 'help'));
    const reply = mail({ From: 'other@corp.example', Cc: 'auditor@corp.example', Subject: 'Re: Broken', 'In-Reply-To': `<sd${n}@corp.example>` }, 'Still broken.\n\n> It broke.');
    expect((await sendMail(server.port, { from: 'other@corp.example', to: [alias], message: reply })).data.code).toBe(250);
    expect(db().prepare('select body, author_id, external_author, system from notes where noteable_id = ? order by id').all(issue.id)).toEqual([
      { body: 'Still broken.\n\n> It broke.', author_id: null, external_author: 'other@corp.example', system: 0 },
      { body: 'reopened', author_id: null, external_author: null, system: 1 },
    ]);
    expect(db().prepare('select state from issues where id = ?').get(issue.id)).toEqual({ state: 'opened' });
    // A reply's sender and Cc join the issue too.
    expect(db().prepare('select email from issue_email_participants where issue_id = ? order by id').all(issue.id)).toEqual(
      ['customer@corp.example', 'boss@corp.example', 'colleague@example.com', 'other@corp.example', 'auditor@corp.example'].map((email) => ({ email })),
    );
    expect(db().prepare("select count(*) as n from issues where project_id = ? and title like 'Re:%'").get(w.project.id)).toEqual({ n: 0 });
  });

  it('takes a request that came through a mailing list (Precedence: list), where a reply by key is ignored', async () => {
    const w = world({ serviceDesk: {}, level: 30 });
    const to = template.format(serviceDeskKey(w.project.path, w.project.id));
    const viaGroup = mail({ From: 'customer@corp.example', Subject: 'Through the support group', Precedence: 'list', 'List-ID': '<support.corp.example>' }, 'Help, please.');
    const { data } = await sendMail(server.port, { from: 'support+bounces@corp.example', to: [to], message: viaGroup });
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted as inbound message \d+$/);
    expect(db().prepare("select external_author from issues where project_id = ? and title = 'Through the support group'").get(w.project.id)).toEqual({ external_author: 'customer@corp.example' });
    // A bounce through the same list is still a bounce.
    const bounce = mail({ From: 'customer@corp.example', Subject: 'Undelivered', Precedence: 'list', 'Auto-Submitted': 'auto-replied' }, 'Out of office.');
    expect((await sendMail(server.port, { from: 'customer@corp.example', to: [to], message: bounce })).data.line).toMatch(/^250 2\.6\.0 Auto-generated message accepted and ignored/);
    const key = `${(n + 500).toString(16).padStart(32, 'b')}`;
    server.repos.transaction(() => server.repos.notifications.create({ replyKey: key, projectId: w.project.id, recipientId: w.user.id, noteableType: 'Issue', noteableId: w.issue.id }));
    const listReply = mail({ From: w.user.email, Subject: 'Re: Squeaks', Precedence: 'bulk' }, 'A digest.');
    const ignored = await sendMail(server.port, { from: w.user.email, to: [template.format(key)], message: listReply });
    expect(ignored.data.line).toMatch(/^250 2\.6\.0 Auto-generated message accepted and ignored \(inbound message \d+\)$/);
    expect(db().prepare('select reason, key from deliveries where inbound_message_id = ?').get(Number(/(\d+)\)$/.exec(ignored.data.line)![1]))).toEqual({ reason: 'Auto-generated message accepted and ignored (Precedence: bulk)', key });
    // List mail the Service Desk refuses (no subject) is ignored, not bounced: a list drops a member whose mail bounces.
    const untitled = await sendMail(server.port, { from: 'support+bounces@corp.example', to: [to], message: mail({ From: 'customer@corp.example', Precedence: 'list' }, 'No subject.') });
    expect(untitled.data.line).toMatch(/^250 2\.6\.0 Auto-generated message accepted and ignored \(inbound message \d+\)$/);
    expect(db().prepare('select reason from deliveries where inbound_message_id = ?').get(Number(/(\d+)\)$/.exec(untitled.data.line)![1]))).toEqual({
      reason: "Auto-generated message accepted and ignored (Precedence: list; The issue could not be created for the following reasons: Title can't be blank)",
    });
    // List mail that leads nowhere (the mailbox address, no key in its headers) is ignored too, not bounced to the list.
    const nowhere = await sendMail(server.port, { from: 'list-bounces@corp.example', to: ['incoming@example.com'], message: mail({ From: 'news@corp.example', Subject: 'Newsletter', Precedence: 'bulk' }, 'News.') });
    expect(nowhere.data.line).toMatch(/^250 2\.6\.0 Auto-generated message accepted and ignored \(inbound message \d+\)$/);
  });

  it("ignores mail whose From or Reply-To is one of intake's own addresses, which would loop through the participants", async () => {
    const w = world({ serviceDesk: {}, level: 30 });
    const to = template.format(serviceDeskKey(w.project.path, w.project.id));
    const key = `${(n + 700).toString(16).padStart(32, 'c')}`;
    server.repos.transaction(() => server.repos.notifications.create({ replyKey: key, projectId: w.project.id, recipientId: w.user.id, noteableType: 'Issue', noteableId: w.issue.id }));
    const notification = template.format(key);
    const before = db().prepare('select (select count(*) from issues where project_id = ?) as issues, (select count(*) from notes) as notes').get(w.project.id);
    // A notification (its Reply-To is a reply key of ours, no Auto-Submitted) forwarded into the Service Desk,
    // another project's Service Desk writing to this one, and the mailbox address as sender.
    const cases: [Record<string, string>, string][] = [
      [{ From: 'Tracker <tracker@example.net>', 'Reply-To': notification, Subject: 'Squeaks (#1)' }, 'Reply-To'],
      [{ From: template.format(serviceDeskKey('other/project', w.project.id + 1)), Subject: 'Re: Broken' }, 'From'],
      [{ From: 'INCOMING@EXAMPLE.COM', Subject: 'Hello' }, 'From'],
    ];
    for (const [headers, header] of cases) {
      const { data } = await sendMail(server.port, { from: 'forwarder@corp.example', to: [to], message: mail(headers, 'Forwarded.') });
      expect(data.line, JSON.stringify(headers)).toMatch(/^250 2\.6\.0 Mail from one of this server's own addresses accepted and ignored \(inbound message \d+\)$/);
      const id = Number(/(\d+)\)$/.exec(data.line)![1]);
      expect(server.repos.inbound.findById(id)).toMatchObject({ status: 'ignored', reasonCode: 'data.own_address' });
      expect(db().prepare('select reason from deliveries where inbound_message_id = ?').get(id)).toEqual({ reason: `Mail from one of this server's own addresses accepted and ignored (${header})` });
    }
    // A reply by key from such an address is ignored the same way.
    const reply = await sendMail(server.port, { from: 'x@corp.example', to: [notification], message: mail({ From: to, Subject: 'Re: Squeaks' }, 'Me again.') });
    expect(reply.data.line).toMatch(/^250 2\.6\.0 Mail from one of this server's own addresses accepted and ignored/);
    expect(db().prepare('select (select count(*) from issues where project_id = ?) as issues, (select count(*) from notes) as notes').get(w.project.id)).toEqual(before);
    // A customer whose address is merely at intake's domain, not of its template, is a customer; so is
    // the postmaster at it, whom a person reads.
    for (const [from, title, author] of [['"Colleague" <colleague@example.com>', 'Real request', 'incoming-not@example.com'], ['Postmaster <postmaster@example.com>', 'From the postmaster', 'postmaster@example.com']] as const) {
      const headers: Record<string, string> = { From: from, Subject: title, ...(title === 'Real request' ? { 'Reply-To': 'incoming-not@example.com' } : {}) };
      const { data } = await sendMail(server.port, { from: 'someone@example.com', to: [to], message: mail(headers, 'Help.') });
      expect(data.line, title).toMatch(/^250 2\.6\.0 Message accepted/);
      expect(db().prepare('select external_author from issues where project_id = ? and title = ?').get(w.project.id, title)).toEqual({ external_author: author });
    }
  });

  it('takes the external author from Sender when there is neither Reply-To nor From, as GitLab does', async () => {
    const w = world({ serviceDesk: {} });
    const to = template.format(serviceDeskKey(w.project.path, w.project.id));
    const { data } = await sendMail(server.port, { from: 'robot@corp.example', to: [to], message: mail({ Sender: 'Form Robot <robot@corp.example>', Subject: 'Web form' }, 'Sent by a form.') });
    expect(data.code).toBe(250);
    expect(db().prepare("select external_author from issues where project_id = ? and title = 'Web form'").get(w.project.id)).toEqual({ external_author: 'robot@corp.example' });
  });

  it('takes a customer\'s reply to a notification Service Desk sent (its recipient the Support Bot): a note by the sender, commands shown, not run', async () => {
    const w = world({ serviceDesk: { reopen: true, cc: true } });
    const key = `${(n + 900).toString(16).padStart(32, 'c')}`;
    const desk = server.repos.transaction(() => {
      const issue = server.repos.issuables.createIssue({ projectId: w.project.id, authorId: null, externalAuthor: 'customer@corp.example', title: 'Printer on fire', description: 'Help', confidential: true });
      server.repos.issuables.addParticipant(issue.id, 'customer@corp.example');
      server.repos.issuables.updateIssue(issue.id, { state: 'closed' });
      server.repos.notifications.create({ replyKey: key, projectId: w.project.id, recipientId: server.repos.users.supportBot().id, noteableType: 'Issue', noteableId: issue.id, inReplyToDiscussionId: 'd9' });
      return issue;
    });
    const to = template.format(key);
    // Any participant may answer: the address is not checked against a user's, as GitLab skips it for the Support Bot.
    const reply = mail({ From: 'Colleague <colleague@corp.example>', Cc: 'manager@corp.example', Subject: 'Re: Printer on fire' }, 'Still burning.\n/close\n\nOn Mon, Support wrote:\n> We are on it.');
    const { rcpt, data } = await sendMail(server.port, { from: 'colleague@corp.example', to: [to], message: reply });
    expect(rcpt[0]?.line).toBe('250 2.1.5 Accepted');
    expect(data.line).toMatch(/^250 2\.6\.0 Message accepted as inbound message \d+$/);
    const notes = db().prepare('select body, author_id, external_author, discussion_id, system from notes where noteable_id = ? order by id').all(desk.id) as { body: string }[];
    expect(notes).toMatchObject([
      { author_id: null, external_author: 'colleague@corp.example', discussion_id: 'd9', system: 0 },
      { body: 'reopened', system: 1 },
    ]);
    expect(notes[0]?.body).toMatch(/^Still burning\.\n`\/close`\n\n<details><summary>/);
    expect(db().prepare('select state from issues where id = ?').get(desk.id)).toEqual({ state: 'opened' });
    expect(db().prepare('select email from issue_email_participants where issue_id = ? order by id').all(desk.id)).toEqual(
      ['customer@corp.example', 'colleague@corp.example', 'manager@corp.example'].map((email) => ({ email })),
    );
    // The same key with -unsubscribe takes the one who writes off the issue's participants.
    const unsubscribed = await sendMail(server.port, { from: 'manager@corp.example', to: [template.format(`${key}-unsubscribe`)], message: mail({ From: 'manager@corp.example', Subject: 'Unsubscribe' }, 'Stop.') });
    expect(unsubscribed.data.code).toBe(250);
    expect(db().prepare('select email from issue_email_participants where issue_id = ? order by id').all(desk.id)).toEqual(['customer@corp.example', 'colleague@corp.example'].map((email) => ({ email })));
    // With Service Desk turned off, its notifications are answered no more; the Support Bot's token is no address.
    db().prepare('update projects set service_desk_enabled = 0 where id = ?').run(w.project.id);
    expect((await sendMail(server.port, { from: 'colleague@corp.example', to: [to], message: reply })).rcpt[0]?.line).toBe("550 5.7.1 We couldn't find the project. Please check if there's any typo.");
    const bot = server.repos.users.findByUsername('support-bot')!;
    expect(bot.userType).toBe('support_bot');
    const botAddress = template.format(newIssueKey(w.project.path, w.project.id, bot.incomingEmailToken));
    expect((await sendMail(server.port, { from: 'x@corp.example', to: [botAddress], message: 'Subject: x\n\nx' })).rcpt[0]?.line).toBe(
      "550 5.1.1 We couldn't figure out what user corresponds to the email. Please create your comment through the web interface.",
    );
  });

  it("reads a custom email's reply address and its verification sub-address in To, as GitLab does with a forwarded custom email", async () => {
    const w = world({ serviceDesk: {} });
    server.repos.projects.update(w.project.id, { serviceDeskCustomEmail: 'support@customer.example' });
    const key = `${(n + 700).toString(16).padStart(32, 'd')}`;
    const desk = server.repos.transaction(() => {
      const issue = server.repos.issuables.createIssue({ projectId: w.project.id, authorId: null, externalAuthor: 'customer@corp.example', title: 'Printer jammed', description: 'Help', confidential: true });
      server.repos.notifications.create({ replyKey: key, projectId: w.project.id, recipientId: server.repos.users.supportBot().id, noteableType: 'Issue', noteableId: issue.id, inReplyToDiscussionId: 'd7' });
      return issue;
    });
    // The customer's mail server forwards support@ (and support+anything@) to the Service Desk address.
    const forwardedTo = template.format(serviceDeskKey(w.project.path, w.project.id));
    const send = (to: string, subject: string, headers: Record<string, string> = {}, envelopeTo = forwardedTo) =>
      sendMail(server.port, { from: 'customer@corp.example', to: [envelopeTo], message: mail({ From: 'customer@corp.example', To: to, Subject: subject, ...headers }, 'Still jammed.') });
    const rowOf = (line: string) =>
      db().prepare('select m.status, d.handler, d.source, d.reason_code from inbound_messages m join deliveries d on d.inbound_message_id = m.id where m.id = ?').get(Number(/(\d+)\)?$/.exec(line)?.[1]));
    const issues = () => (db().prepare('select count(*) as n from issues where project_id = ?').get(w.project.id) as { n: number }).n;
    const before = issues();

    // A reply to the notification whose Reply-To was support+KEY@: a note in its thread, no new ticket,
    // wherever in To; list mail too, as a Service Desk takes it; the custom email in Cc joins no one.
    const reply = await send(`Support <support+${key}@Customer.Example>`, 'Re: Printer jammed');
    expect(rowOf(reply.data.line)).toEqual({ status: 'processed', handler: 'reply', source: 'To', reason_code: null });
    const second = await send(`colleague@corp.example, support+${key}@customer.example`, 'Re: Printer jammed', { Precedence: 'list', Cc: 'support@customer.example, support+x@customer.example' });
    expect(rowOf(second.data.line)).toEqual({ status: 'processed', handler: 'reply', source: 'To', reason_code: null });
    expect(db().prepare('select body, external_author, discussion_id from notes where noteable_id = ? and system = 0').all(desk.id)).toEqual([
      { body: 'Still jammed.', external_author: 'customer@corp.example', discussion_id: 'd7' },
      { body: 'Still jammed.', external_author: 'customer@corp.example', discussion_id: 'd7' },
    ]);
    expect(db().prepare('select email from issue_email_participants where issue_id = ?').all(desk.id)).toEqual([{ email: 'customer@corp.example' }]);
    // The verification mail opens nothing.
    const verification = await send('support+verify@customer.example', 'Verify');
    expect(verification.data.line).toMatch(/^250 2\.6\.0 Service Desk custom email verification accepted and ignored \(inbound message \d+\)$/);
    expect(rowOf(verification.data.line)).toEqual({ status: 'ignored', handler: null, source: 'To', reason_code: 'data.custom_email_verification' });
    expect(issues()).toBe(before);
    // The custom email itself, a key that names nothing, another project's, or one of a notification to
    // a member (never sent through the custom email): the Service Desk's, a new ticket each.
    const other = world({ serviceDesk: {} });
    const [otherKey, memberKey] = ['e'.repeat(32), 'b'.repeat(32)];
    server.repos.transaction(() => {
      server.repos.notifications.create({ replyKey: otherKey, projectId: other.project.id, recipientId: server.repos.users.supportBot().id, noteableType: 'Issue', noteableId: other.issue.id });
      server.repos.notifications.create({ replyKey: memberKey, projectId: w.project.id, recipientId: w.user.id, noteableType: 'Issue', noteableId: w.issue.id });
    });
    for (const to of ['support@customer.example', `support+${'0'.repeat(32)}@customer.example`, `support+${otherKey}@customer.example`, `support+${memberKey}@customer.example`]) {
      expect(rowOf((await send(to, `New: ${to}`)).data.line)).toEqual({ status: 'processed', handler: 'service_desk', source: 'envelope', reason_code: null });
    }
    expect(issues()).toBe(before + 4);
    // At the mailbox address (a fetcher's mail too), the custom email in To names the Service Desk.
    expect(rowOf((await send('support@customer.example', 'By the mailbox', {}, 'incoming@example.com')).data.line)).toEqual({ status: 'processed', handler: 'service_desk', source: 'To', reason_code: null });
    expect(rowOf((await send(`support+${key}@customer.example`, 'Re: Printer jammed', {}, 'incoming@example.com')).data.line)).toEqual({ status: 'processed', handler: 'reply', source: 'To', reason_code: null });
    expect(issues()).toBe(before + 5);
    // Without the custom email set, its reply address is any other To.
    server.repos.projects.update(w.project.id, { serviceDeskCustomEmail: null });
    expect(rowOf((await send(`support+${key}@customer.example`, 'Re: Printer jammed')).data.line)).toMatchObject({ handler: 'service_desk' });
    expect(issues()).toBe(before + 6);
  });

  it('opens issues at the alias address (INTAKE_SERVICE_DESK_ADDRESS), whose keys name Service Desks alone', async () => {
    const w = world({ serviceDesk: { key: 'desk_1' } });
    const byDefault = serviceDeskAlias.format(serviceDeskKey(w.project.path, w.project.id));
    const bySuffix = serviceDeskAlias.format(serviceDeskAliasKey(w.project.path, 'desk_1'));
    expect(bySuffix).toBe(`contact+group${n}-my-project-desk_1@help.example.com`);
    const send = (to: string, subject: string, headers: Record<string, string> = {}) =>
      sendMail(server.port, { from: 'customer@corp.example', to: [to], message: mail({ From: 'customer@corp.example', To: to, Subject: subject, ...headers }, 'It sticks.') });
    expect((await send(byDefault, 'Door stuck')).data.code).toBe(250);
    // The alias's addresses are intake's own: one in Cc is no participant.
    expect((await send(bySuffix, 'Window stuck', { Cc: `${byDefault}, partner@corp.example` })).data.code).toBe(250);
    const opened = db().prepare("select id, title, author_id, external_author, confidential from issues where project_id = ? and title like '% stuck' order by id").all(w.project.id) as { id: number }[];
    expect(opened).toMatchObject([
      { title: 'Door stuck', author_id: null, external_author: 'customer@corp.example', confidential: 1 },
      { title: 'Window stuck', author_id: null, external_author: 'customer@corp.example', confidential: 1 },
    ]);
    expect(db().prepare('select email from issue_email_participants where issue_id = ? order by id').all(opened[1]!.id)).toEqual([{ email: 'customer@corp.example' }]);

    // A user's new-issue key and a reply key live at the address template reach nothing at the alias.
    const key = 'f'.repeat(32);
    server.repos.transaction(() => server.repos.notifications.create({ replyKey: key, projectId: w.project.id, recipientId: w.user.id, noteableType: 'Issue', noteableId: w.issue.id }));
    const notProject = "550 5.7.1 We couldn't find the project. Please check if there's any typo.";
    for (const wrong of [serviceDeskAlias.format(key), serviceDeskAlias.format(newIssueKey(w.project.path, w.project.id, w.user.incomingEmailToken))]) {
      const { rcpt } = await sendMail(server.port, { from: 'customer@corp.example', to: [wrong, byDefault], message: mail({ From: 'customer@corp.example', Subject: 'Hinge stuck' }, 'x') });
      expect(rcpt.map((r) => r.line)).toEqual([notProject, '250 2.1.5 Accepted']);
      expect(db().prepare('select reason_code from deliveries where recipient = ? order by id desc limit 1').get(wrong)).toEqual({ reason_code: 'rcpt.project_not_found' });
    }
    expect((await sendMail(server.port, { from: w.user.email, to: [template.format(key)], message: mail({ From: w.user.email, Subject: 'Re: Squeaks' }, 'A reply.') })).data.code).toBe(250);
    // Its bare mailbox names no project; its domain's postmaster is kept, as every domain's.
    const { rcpt } = await sendMail(server.port, { from: 'c@corp.example', to: ['contact@help.example.com', 'someone@help.example.com', 'postmaster@help.example.com'], message: 'Subject: x\n\nx' });
    expect(rcpt.map((r) => r.line)).toEqual(['550 5.1.1 No such address here: addresses look like the configured template', '550 5.1.1 No such address here: addresses look like the configured template', '250 2.1.5 Accepted']);
    db().prepare('update projects set service_desk_enabled = 0 where id = ?').run(w.project.id);
    expect((await sendMail(server.port, { from: 'c@corp.example', to: [byDefault], message: 'x' })).rcpt[0]?.line).toBe(notProject);
  });

  it("adds at most 6 of a mail's Cc as participants, and 10 participants to an issue, as GitLab", async () => {
    const w = world({ serviceDesk: { cc: true } });
    const to = template.format(serviceDeskKey(w.project.path, w.project.id));
    const cc = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${i}@corp.example`);
    // A Cc already a participant (in another case) is no new one, and does not count.
    const first = mail({ From: 'lead@corp.example', Cc: ['LEAD@corp.example', ...cc('a', 8)].join(', '), Subject: 'Crowded', 'Message-ID': `<crowd${n}@corp.example>` }, 'Everyone look.');
    expect((await sendMail(server.port, { from: 'lead@corp.example', to: [to], message: first })).data.code).toBe(250);
    const { id } = db().prepare("select id from issues where project_id = ? and title = 'Crowded'").get(w.project.id) as { id: number };
    const participants = () => (db().prepare('select email from issue_email_participants where issue_id = ? order by id').all(id) as { email: string }[]).map((r) => r.email);
    expect(participants()).toEqual(['lead@corp.example', ...cc('a', 6)]);
    const reply = mail({ From: 'b@corp.example', Cc: cc('c', 8).join(', '), Subject: 'Re: Crowded', 'In-Reply-To': `<crowd${n}@corp.example>` }, 'Me too.');
    expect((await sendMail(server.port, { from: 'b@corp.example', to: [to], message: reply })).data.code).toBe(250);
    expect(participants()).toEqual(['lead@corp.example', ...cc('a', 6), 'b@corp.example', ...cc('c', 2)]);
  });

  it('is refused when Service Desk is off', async () => {
    const w = world();
    const { rcpt } = await sendMail(server.port, { from: 'c@corp.example', to: [template.format(serviceDeskKey(w.project.path, w.project.id))], message: 'x' });
    expect(rcpt[0]?.line).toBe("550 5.7.1 We couldn't find the project. Please check if there's any typo.");
  });
});

describe('reply quick actions and unsubscribe', () => {
  function notification(w: ReturnType<typeof world>) {
    const key = `${n.toString(16).padStart(32, 'a')}`;
    server.repos.transaction(() => server.repos.notifications.create({ replyKey: key, projectId: w.project.id, recipientId: w.user.id, noteableType: 'Issue', noteableId: w.issue.id }));
    return key;
  }

  it('runs commands as the recipient; a reply of only commands leaves no note, only system notes', async () => {
    const w = world({ level: 30 });
    server.repos.transaction(() => server.repos.projects.setMember({ projectId: w.project.id, userId: w.other.id, accessLevel: 20 }));
    const key = notification(w);
    const to = template.format(key);
    const { data } = await sendMail(server.port, { from: w.user.email, to: [to], message: mail({ From: w.user.email, Subject: 'Re: Squeaks' }, `/title Squeaky widgets\n/assign @${w.other.username}\n/confidential\n/close\n\nOn Mon, GitLab wrote:\n> Squeaks`) });
    expect(data.code).toBe(250);
    // Assignments run last, on the issue the other commands made.
    expect(db().prepare('select body, system from notes where noteable_id = ? order by id').all(w.issue.id)).toEqual([
      { body: 'changed title from **Squeaks** to **Squeaky widgets**', system: 1 },
      { body: 'made the issue confidential', system: 1 },
      { body: 'closed', system: 1 },
      { body: `assigned to @${w.other.username}`, system: 1 },
    ]);
    expect(db().prepare('select title, state, confidential from issues where id = ?').get(w.issue.id)).toEqual({ title: 'Squeaky widgets', state: 'closed', confidential: 1 });
  });

  it('subscribes and unsubscribes the recipient with /subscribe and /unsubscribe, with no note of it', async () => {
    const w = world({ level: 30 });
    const key = notification(w);
    const subscription = () => db().prepare("select subscribed from subscriptions where user_id = ? and noteable_type = 'Issue' and noteable_id = ?").all(w.user.id, w.issue.id);
    await sendMail(server.port, { from: w.user.email, to: [template.format(key)], message: mail({ From: w.user.email }, 'Not for me any more.\n/Unsubscribe') });
    expect(subscription()).toEqual([{ subscribed: 0 }]);
    expect(db().prepare('select body, system from notes where noteable_id = ? order by id').all(w.issue.id)).toEqual([{ body: 'Not for me any more.', system: 0 }]);
    const { data } = await sendMail(server.port, { from: w.user.email, to: [template.format(key)], message: mail({ From: w.user.email }, '/subscribe') });
    expect(data.code).toBe(250);
    expect(subscription()).toEqual([{ subscribed: 1 }]);
    expect(db().prepare('select count(*) as n from notes where noteable_id = ?').get(w.issue.id)).toEqual({ n: 1 });
  });

  it('does not assign a guest to an issue the same mail makes confidential, whatever the order', async () => {
    const w = world({ level: 30 });
    const guest = server.repos.transaction(() => {
      const user = server.repos.users.create({ username: `guest${n}`, name: 'Guest', email: `guest${n}@example.org`, incomingEmailToken: `glimt-guest${n}` });
      server.repos.projects.setMember({ projectId: w.project.id, userId: user.id, accessLevel: 10 });
      return user;
    });
    const key = notification(w);
    await sendMail(server.port, { from: w.user.email, to: [template.format(key)], message: mail({ From: w.user.email }, `/assign @${guest.username}\n/confidential`) });
    expect(db().prepare('select confidential from issues where id = ?').get(w.issue.id)).toEqual({ confidential: 1 });
    expect(db().prepare('select user_id from issue_assignees where issue_id = ?').all(w.issue.id)).toEqual([]);
  });

  it('takes commands in any case and by GitLab\'s other names, and assigns only people who can see the issue', async () => {
    const w = world({ level: 30 });
    const key = notification(w);
    await sendMail(server.port, { from: w.user.email, to: [template.format(key)], message: mail({ From: w.user.email }, `Done.\n/Labels ~Fixed\n/assign @${w.other.username} @${w.user.username}\n/CLOSE`) });
    // other wrote the issue but is no member of this private project: GitLab would not assign them either.
    expect(db().prepare('select body, system from notes where noteable_id = ? order by id').all(w.issue.id)).toEqual([
      { body: 'added ~Fixed label', system: 1 },
      { body: 'closed', system: 1 },
      { body: `assigned to @${w.user.username}`, system: 1 },
      { body: 'Done.', system: 0 },
    ]);
    expect(db().prepare('select user_id from issue_assignees where issue_id = ?').all(w.issue.id)).toEqual([{ user_id: w.user.id }]);
  });

  it('on a merge request, runs what it can and leaves label and assign commands in the note as written', async () => {
    const w = world({ level: 30 });
    const mr = server.repos.transaction(() => server.repos.issuables.createMergeRequest({ projectId: w.project.id, authorId: w.user.id, title: 'Fix', description: '', sourceBranch: 'fix', targetBranch: 'trunk' }));
    const key = `${n.toString(16).padStart(32, 'b')}`;
    server.repos.transaction(() => server.repos.notifications.create({ replyKey: key, projectId: w.project.id, recipientId: w.user.id, noteableType: 'MergeRequest', noteableId: mr.id }));
    await sendMail(server.port, { from: w.user.email, to: [template.format(key)], message: mail({ From: w.user.email }, 'Looks good.\n/label ~ready\n/assign @me\n/title Fix the squeak\n/unsubscribe') });
    expect(db().prepare("select body, system from notes where noteable_type = 'MergeRequest' and noteable_id = ? order by id").all(mr.id)).toEqual([
      { body: 'changed title from **Fix** to **Fix the squeak**', system: 1 },
      { body: 'Looks good.\n/label ~ready\n/assign @me', system: 0 },
    ]);
    expect(db().prepare("select noteable_type, subscribed from subscriptions where user_id = ? and noteable_id = ?").all(w.user.id, mr.id)).toEqual([{ noteable_type: 'MergeRequest', subscribed: 0 }]);
  });

  it('places inline images referred to with a title or a percent-encoded Content-ID where they were', async () => {
    const w = world({ level: 30 });
    const key = notification(w);
    const png = 'iVBORw0KGgo=';
    const body = [
      '--r', 'Content-Type: text/html; charset=utf-8', '', '<p>Before:</p><img src="cid:before@x" alt="before" title="Before oiling"><p>After:</p><img src="cid:after%40x" alt="after">',
      '--r', 'Content-Type: image/png; name="before.png"', 'Content-ID: <before@x>', 'Content-Disposition: inline; filename="before.png"', 'Content-Transfer-Encoding: base64', '', png,
      '--r', 'Content-Type: image/png; name="after.png"', 'Content-ID: <after@x>', 'Content-Disposition: inline; filename="after.png"', 'Content-Transfer-Encoding: base64', '', png,
      '--r--',
    ].join('\n');
    await sendMail(server.port, { from: w.user.email, to: [template.format(key)], message: mail({ From: w.user.email, 'MIME-Version': '1.0', 'Content-Type': 'multipart/related; boundary="r"' }, body) });
    const files = db().prepare("select a.id, a.filename from attachments a join notes n on a.owner_type = 'Note' and a.owner_id = n.id where n.noteable_id = ? order by a.id").all(w.issue.id) as { id: number; filename: string }[];
    expect(files.map((f) => f.filename)).toEqual(['before.png', 'after.png']);
    expect(db().prepare('select body from notes where noteable_id = ?').all(w.issue.id)).toEqual([
      { body: `Before:\n\n![before](attachment:${files[0]?.id} "Before oiling")\n\nAfter:\n\n![after](attachment:${files[1]?.id})` },
    ]);
  });

  it('leaves commands the user may not run undone, and unknown commands in the text', async () => {
    const w = world({ level: 10, visibility: 'private' });
    const key = notification(w);
    const to = template.format(key);
    await sendMail(server.port, { from: w.user.email, to: [to], message: mail({ From: w.user.email }, 'Me too.\n/close\n/todo') });
    expect(db().prepare('select state from issues where id = ?').get(w.issue.id)).toEqual({ state: 'opened' });
    expect(db().prepare('select body from notes where noteable_id = ?').all(w.issue.id)).toEqual([{ body: 'Me too.\n/todo' }]);
  });

  it('unsubscribes the notification\'s recipient, whoever sends it', async () => {
    const w = world();
    const key = notification(w);
    const { data } = await sendMail(server.port, { from: 'x@example.net', to: [template.format(unsubscribeKey(key))], message: mail({ From: 'x@example.net' }, '') });
    expect(data.code).toBe(250);
    expect(db().prepare('select user_id, noteable_type, noteable_id, subscribed from subscriptions where user_id = ?').all(w.user.id)).toEqual([{ user_id: w.user.id, noteable_type: 'Issue', noteable_id: w.issue.id, subscribed: 0 }]);
    expect(db().prepare('select count(*) as n from notes where noteable_id = ?').get(w.issue.id)).toEqual({ n: 0 });
  });
});

describe('the mailbox address', () => {
  it('routes by the first header candidate that names a live target, not the first that parses', async () => {
    const w = world();
    const live = template.format(newIssueKey(w.project.path, w.project.id, w.user.incomingEmailToken));
    const dead = template.format(newIssueKey(w.project.path, w.project.id, 'glimt-revoked'));
    const message = mail({ From: 'a@example.net', To: `${dead}, support@corp.example`, 'Delivered-To': live, Subject: 'Via forward' }, 'Forwarded to the catch-all.');
    const { rcpt, data } = await sendMail(server.port, { from: 'a@example.net', to: ['incoming@example.com'], message });
    expect(rcpt[0]?.line).toBe('250 2.1.5 Accepted');
    expect(data.code).toBe(250);
    const id = Number(/inbound message (\d+)/.exec(data.line)?.[1]);
    expect(server.repos.inbound.deliveriesOf(id)).toMatchObject([{ recipient: 'incoming@example.com', key: live.split('+')[1]!.split('@')[0], source: 'Delivered-To', handler: 'new_issue', status: 'processed' }]);
  });

  it('routes a reply by References reply-KEY@HOST', async () => {
    const w = world();
    const key = `${(n + 1000).toString(16).padStart(32, 'b')}`;
    server.repos.transaction(() => server.repos.notifications.create({ replyKey: key, projectId: w.project.id, recipientId: w.user.id, noteableType: 'Issue', noteableId: w.issue.id }));
    const message = mail({ From: w.user.email, To: 'incoming@example.com', References: `<issue_1@tracker.example.com>, <reply-${key}@tracker.example.com>` }, 'Found by References.');
    const { data } = await sendMail(server.port, { from: w.user.email, to: ['incoming@example.com'], message });
    expect(data.code).toBe(250);
    expect(db().prepare('select body from notes where noteable_id = ?').all(w.issue.id)).toEqual([{ body: 'Found by References.' }]);
  });

  it('refuses at DATA when no header names a live key', async () => {
    const { data } = await sendMail(server.port, { from: 'a@example.net', to: ['incoming@example.com'], message: mail({ From: 'a@example.net', To: 'incoming@example.com', 'Delivered-To': 'incoming+nothing-here@example.com' }, 'Lost.') });
    expect(data.line).toBe("550 5.1.1 We couldn't figure out what the email is for. Please create your issue or comment through the web interface.");
    expect(server.repos.inbound.list({ limit: 1 })[0]).toMatchObject({ status: 'rejected', reasonCode: 'data.no_key' });
  });
});
