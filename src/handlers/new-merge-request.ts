// new-merge-request: New merge request by email. The subject is the title and the source branch, the
// trimmed body the description; `.patch` files are stored with the merge request in file-name order
// (there is no repository here to apply them to). Side effects: writes a merge request and attachments.
import type { ProjectRef } from '../address/keys.js';
import { MailRejection } from '../errors.js';
import { extractQuickActions } from '../text/quick-actions.js';
import { checkCanCreateMergeRequest } from './access.js';
import { storeAttachments } from './attachments.js';
import { trimmedBody } from './body.js';
import type { Handler } from './handler.js';
import { resolveAuthorTarget, type AuthorTarget } from './new-issue.js';
import { isBranchName } from '../text/branch.js';
import { itemTitle } from '../text/title.js';

const isPatch = (filename: string) => filename.toLowerCase().endsWith('.patch');

export const newMergeRequestHandler: Handler<{ project: ProjectRef; token: string }, AuthorTarget> = {
  name: 'new_merge_request',
  resolve(form, repos) {
    const target = resolveAuthorTarget(form, repos);
    checkCanCreateMergeRequest(target.author, target.project, repos);
    return target;
  },
  destination: ({ project }) => `new_merge_request:${project.id}`,
  handle({ project, author }, message, context) {
    const subject = (message.subject ?? '').trim();
    // The subject is the source branch: one git would not take is refused, as GitLab's would be.
    if (!subject || !itemTitle(subject)) throw new MailRejection('data.invalid_merge_request');
    if (!isBranchName(subject)) throw new MailRejection('data.invalid_branch', `(${JSON.stringify(subject.slice(0, 100))})`);
    const { text, actions } = extractQuickActions(trimmedBody(message.text).body, new Set(['target_branch']));
    const targetBranch = actions.findLast((a) => a.name === 'target_branch')?.argument || project.defaultBranch;
    if (!isBranchName(targetBranch)) throw new MailRejection('data.invalid_branch', `(${JSON.stringify(targetBranch.slice(0, 100))})`);
    // GitLab's own validations of a merge request, with its words: a second mail with the same subject
    // is refused, not a second merge request.
    if (subject === targetBranch) throw new MailRejection('data.branch_conflict');
    const open = context.repos.issuables.findOpenMergeRequest(project.id, subject, targetBranch);
    if (open) throw new MailRejection('data.merge_request_exists', `(!${open.iid})`);
    const mergeRequest = context.repos.issuables.createMergeRequest({
      projectId: project.id,
      authorId: author.id,
      title: itemTitle(subject),
      description: text,
      sourceBranch: subject,
      targetBranch,
    });
    const patches = message.attachments.filter((a) => isPatch(a.filename)).sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
    const others = message.attachments.filter((a) => !isPatch(a.filename));
    // Like GitLab, the description does not list the patches; other files are linked as usual.
    const description = storeAttachments(storeAttachments(text, patches, { type: 'MergeRequest', id: mergeRequest.id }, context, { listed: () => false }), others, { type: 'MergeRequest', id: mergeRequest.id }, context);
    if (description !== text) context.repos.issuables.setDescription('MergeRequest', mergeRequest.id, description);
    return { targetType: 'MergeRequest', targetId: mergeRequest.id };
  },
};
