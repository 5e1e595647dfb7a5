// Who may do what, as GitLab's policies have it, on a real SQLite file: update_issue (/close, /reopen,
// /title) for reporters, authors and assignees; set_issue_metadata (/label, /assign) for reporters, and for
// any member on the issue the mail creates; developers for a merge request; who may see a confidential issue.
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { openStore } from '../../../src/db/client.js';
import { createRepositories, type Repositories } from '../../../src/db/repositories.js';
import type { Noteable } from '../../../src/db/repos/issuables.repo.js';
import type { User } from '../../../src/db/repos/users.repo.js';
import { checkCanComment } from '../../../src/handlers/access.js';
import { runQuickActions } from '../../../src/handlers/quick-actions.js';
import { extractQuickActions } from '../../../src/text/quick-actions.js';
import { tempDir } from '../../helpers/server.js';

let repos: Repositories;
let sqlite: ReturnType<typeof openStore>['sqlite'];
let world: ReturnType<typeof seed>;

function seed(r: Repositories) {
  return r.transaction(() => {
    const person = (username: string, level: number | null) => {
      const user = r.users.create({ username, name: username, email: `${username}@example.com`, incomingEmailToken: `glimt-${username}` });
      if (level !== null) r.projects.setMember({ projectId: project.id, userId: user.id, accessLevel: level });
      return user;
    };
    const project = r.projects.create({ path: 'acme/pub', name: 'pub', visibility: 'public' });
    const users = {
      reporter: person('rep', 20),
      developer: person('dev', 30),
      guest: person('guest', 10),
      author: person('author', 10),
      assignee: person('assignee', 10),
      outsider: person('outsider', null),
    };
    const inbound = r.inbound.insert({ ingress: 'smtp', mailFrom: 'a@example.com', rcptTo: ['r@example.com'], size: 1, status: 'processed' });
    return { project, users, inbound };
  });
}

beforeEach(() => {
  const store = openStore(join(tempDir(), 'intake.sqlite'));
  sqlite = store.sqlite;
  repos = createRepositories(store);
  world = seed(repos);
});

function issueBy(author: User): Noteable {
  const row = repos.transaction(() => {
    const issue = repos.issuables.createIssue({ projectId: world.project.id, authorId: author.id, title: 'Squeaks', description: '', confidential: false });
    repos.issuables.addAssignee(issue.id, world.users.assignee.id);
    return issue;
  });
  return { type: 'Issue', row };
}

function mergeRequestBy(author: User): Noteable {
  const row = repos.transaction(() =>
    repos.issuables.createMergeRequest({ projectId: world.project.id, authorId: author.id, title: 'Oil', description: '', sourceBranch: 'oil', targetBranch: 'main' }),
  );
  return { type: 'MergeRequest', row };
}

/** The system notes of the commands `user` sends on `noteable`. */
function run(user: User, noteable: Noteable, body: string, creating = false): string[] {
  const { actions } = extractQuickActions(body);
  return repos.transaction(() => runQuickActions(actions, { user, project: world.project, noteable, repos, inboundMessageId: world.inbound, creating }));
}

describe('quick actions on an issue that exists', () => {
  it('a reporter may change and label it, assign it and make it confidential', () => {
    const issue = issueBy(world.users.author);
    expect(run(world.users.reporter, issue, '/title Loud\n/label ~bug\n/assign @dev\n/confidential\n/close')).toEqual([
      'changed title from **Squeaks** to **Loud**',
      'added ~bug label',
      'made the issue confidential',
      'closed',
      'assigned to @dev',
    ]);
  });

  it('its author and its assignees may close, reopen and retitle it (update_issue), not label or assign it', () => {
    const issue = issueBy(world.users.author);
    expect(run(world.users.author, issue, '/label ~bug\n/assign @dev\n/confidential\n/close')).toEqual(['closed']);
    const closed = repos.issuables.findNoteable('Issue', issue.row.id)!;
    expect(run(world.users.assignee, closed, '/reopen\n/title Louder\n/label ~bug')).toEqual(['reopened', 'changed title from **Squeaks** to **Louder**']);
    expect(repos.issuables.labelsOf(issue.row.id)).toEqual([]);
  });

  it('a guest who is neither, and a user who is no member, may do nothing', () => {
    const issue = issueBy(world.users.author);
    expect(run(world.users.guest, issue, '/close\n/title Mine\n/label ~bug\n/assign @guest\n/confidential')).toEqual([]);
    expect(run(world.users.outsider, issue, '/close\n/label ~bug\n/assign @outsider')).toEqual([]);
    expect(repos.issuables.findNoteable('Issue', issue.row.id)?.row).toMatchObject({ state: 'opened', title: 'Squeaks', confidential: false });
  });
});

describe('/assign and /unassign', () => {
  it('name users as GitLab reads them: me, @name or a bare name; /unassign without names takes everyone off', () => {
    const issue = issueBy(world.users.author);
    const { reporter, developer, assignee } = world.users;
    expect(run(reporter, issue, '/assign me dev, @nobody-here')).toEqual(['assigned to @rep @dev']);
    const assigned = () => sqlite.prepare('select user_id from issue_assignees where issue_id = ? order by id').all(issue.row.id).map((r) => (r as { user_id: number }).user_id);
    expect(assigned()).toEqual([assignee.id, reporter.id, developer.id]);
    expect(run(reporter, issue, '/unassign @dev me')).toEqual(['unassigned @dev @rep']);
    expect(assigned()).toEqual([assignee.id]);
    expect(run(reporter, issue, '/unassign')).toEqual(['unassigned @assignee']);
    expect(assigned()).toEqual([]);
    // A guest may not; the Support Bot is nobody to assign.
    expect(run(world.users.guest, issue, '/assign me')).toEqual([]);
    const bot = repos.transaction(() => repos.users.supportBot());
    expect(run(reporter, issue, `/assign @${bot.username}`)).toEqual([]);
  });

  it('read a name in any case, as GitLab does (a phone capitalises @Dev)', () => {
    const issue = issueBy(world.users.author);
    expect(run(world.users.reporter, issue, '/assign @Dev')).toEqual(['assigned to @dev']);
    expect(run(world.users.reporter, issue, '/unassign DEV')).toEqual(['unassigned @dev']);
  });
});

describe('quick actions on the issue the mail creates', () => {
  it('a member, even a guest, may label and assign it and make it confidential, but not close or retitle it', () => {
    const issue = issueBy(world.users.guest);
    expect(run(world.users.guest, issue, '/close\n/title Other\n/label ~bug\n/assign @dev\n/confidential', true)).toEqual([
      'added ~bug label',
      'made the issue confidential',
      'assigned to @dev',
    ]);
  });

  it('a user who is no member may make it confidential, nothing else', () => {
    const issue = issueBy(world.users.outsider);
    expect(run(world.users.outsider, issue, '/close\n/label ~bug\n/assign @rep\n/confidential', true)).toEqual(['made the issue confidential']);
  });
});

describe('quick actions on a merge request', () => {
  it('need developer access, or being its author: a reporter may not close or retitle it', () => {
    const mr = mergeRequestBy(world.users.developer);
    expect(run(world.users.reporter, mr, '/close\n/title Nope')).toEqual([]);
    expect(run(world.users.developer, mr, '/title Oil it\n/close')).toEqual(['changed title from **Oil** to **Oil it**', 'closed']);
    const own = mergeRequestBy(world.users.guest);
    expect(run(world.users.guest, own, '/close')).toEqual(['closed']);
  });

  it('/reopen is refused while another merge request of the same branches is open, as GitLab refuses it', () => {
    const first = mergeRequestBy(world.users.developer);
    expect(run(world.users.developer, first, '/close')).toEqual(['closed']);
    const second = mergeRequestBy(world.users.developer);
    const closed = repos.issuables.findNoteable('MergeRequest', first.row.id)!;
    expect(run(world.users.developer, closed, '/reopen')).toEqual([]);
    expect(repos.issuables.findNoteable('MergeRequest', first.row.id)?.row.state).toBe('closed');
    // Once the other is closed, it may be reopened.
    expect(run(world.users.developer, second, '/close')).toEqual(['closed']);
    expect(run(world.users.developer, closed, '/reopen')).toEqual(['reopened']);
  });
});

describe('a confidential issue', () => {
  it('is open to comments by reporters, its author and its assignees; not by other guests', () => {
    const issue = issueBy(world.users.author);
    repos.transaction(() => repos.issuables.updateIssue(issue.row.id, { confidential: true }));
    const confidential = repos.issuables.findNoteable('Issue', issue.row.id)!;
    for (const who of [world.users.reporter, world.users.author, world.users.assignee]) {
      expect(() => checkCanComment(who, world.project, confidential, repos), who.username).not.toThrow();
    }
    for (const who of [world.users.guest, world.users.outsider]) {
      expect(() => checkCanComment(who, world.project, confidential, repos), who.username).toThrow(expect.objectContaining({ code: 'rcpt.not_permitted' }));
    }
  });
});
