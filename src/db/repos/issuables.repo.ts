// issuables.repo: issues and merge requests, the things notes attach to. Side effects: SQL reads and writes.
import { and, eq, inArray, sql } from 'drizzle-orm';
import { casefold, prepared, type Db } from '../client.js';
import { issueAssignees, issueEmailParticipants, issueEmails, issueLabels, issues, mergeRequests, subscriptions } from '../schema.js';

export type Issue = typeof issues.$inferSelect;
export type MergeRequest = typeof mergeRequests.$inferSelect;
export type NoteableType = 'Issue' | 'MergeRequest';
export type Noteable = { type: 'Issue'; row: Issue } | { type: 'MergeRequest'; row: MergeRequest };

export function createIssuablesRepository({ db }: { db: Db }) {
  // Prepared once: every reply looks its noteable up.
  const issueById = prepared(() => db.select().from(issues).where(eq(issues.id, sql.placeholder('id'))).prepare());
  const mergeRequestById = prepared(() => db.select().from(mergeRequests).where(eq(mergeRequests.id, sql.placeholder('id'))).prepare());
  const touch = prepared(() =>
    db.update(issues).set({ updatedAt: sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))` }).where(eq(issues.id, sql.placeholder('id'))).prepare(),
  );
  return {
    /** Creates an issue with the next iid of its project; call inside a transaction. */
    createIssue(input: Omit<typeof issues.$inferInsert, 'iid'>): Issue {
      const iid = sql`(select coalesce(max(${issues.iid}), 0) + 1 from ${issues} where ${issues.projectId} = ${input.projectId})`;
      return db
        .insert(issues)
        .values({ ...input, iid })
        .returning()
        .get();
    },
    createMergeRequest(input: Omit<typeof mergeRequests.$inferInsert, 'iid'>): MergeRequest {
      const iid = sql`(select coalesce(max(${mergeRequests.iid}), 0) + 1 from ${mergeRequests} where ${mergeRequests.projectId} = ${input.projectId})`;
      return db
        .insert(mergeRequests)
        .values({ ...input, iid })
        .returning()
        .get();
    },
    /** An open merge request of the project from sourceBranch into targetBranch, as GitLab allows one. */
    findOpenMergeRequest: (projectId: number, sourceBranch: string, targetBranch: string): MergeRequest | undefined =>
      db
        .select()
        .from(mergeRequests)
        .where(and(eq(mergeRequests.projectId, projectId), eq(mergeRequests.sourceBranch, sourceBranch), eq(mergeRequests.targetBranch, targetBranch), eq(mergeRequests.state, 'opened')))
        .get(),
    findIssueByIid: (projectId: number, iid: number): Issue | undefined =>
      db.select().from(issues).where(and(eq(issues.projectId, projectId), eq(issues.iid, iid))).get(),
    findMergeRequestByIid: (projectId: number, iid: number): MergeRequest | undefined =>
      db.select().from(mergeRequests).where(and(eq(mergeRequests.projectId, projectId), eq(mergeRequests.iid, iid))).get(),
    findNoteable(type: NoteableType, id: number): Noteable | undefined {
      if (type === 'Issue') {
        const row = issueById().get({ id });
        return row && { type, row };
      }
      const row = mergeRequestById().get({ id });
      return row && { type, row };
    },
    deleteIssue(id: number): void {
      db.delete(issues).where(eq(issues.id, id)).run();
    },
    updateIssue(id: number, values: Partial<Pick<Issue, 'state' | 'title' | 'confidential'>>): void {
      db.update(issues)
        .set({ ...values, updatedAt: sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))` })
        .where(eq(issues.id, id))
        .run();
    },
    setDescription(type: NoteableType, id: number, description: string): void {
      if (type === 'Issue') db.update(issues).set({ description }).where(eq(issues.id, id)).run();
      else db.update(mergeRequests).set({ description }).where(eq(mergeRequests.id, id)).run();
    },
    updateMergeRequest(id: number, values: Partial<Pick<MergeRequest, 'state' | 'title'>>): void {
      db.update(mergeRequests).set(values).where(eq(mergeRequests.id, id)).run();
    },
    labelsOf: (issueId: number): string[] =>
      db.select({ label: issueLabels.label }).from(issueLabels).where(eq(issueLabels.issueId, issueId)).orderBy(issueLabels.id).all().map((r) => r.label),
    addLabel(issueId: number, label: string): boolean {
      return db.insert(issueLabels).values({ issueId, label }).onConflictDoNothing().run().changes > 0;
    },
    removeLabel(issueId: number, label: string): boolean {
      return db.delete(issueLabels).where(and(eq(issueLabels.issueId, issueId), eq(issueLabels.label, label))).run().changes > 0;
    },
    removeAllLabels(issueId: number): string[] {
      return db.delete(issueLabels).where(eq(issueLabels.issueId, issueId)).returning({ label: issueLabels.label }).all().map((r) => r.label);
    },
    isAssignee: (issueId: number, userId: number): boolean =>
      db.select({ userId: issueAssignees.userId }).from(issueAssignees).where(and(eq(issueAssignees.issueId, issueId), eq(issueAssignees.userId, userId))).get() !== undefined,
    addAssignee(issueId: number, userId: number): boolean {
      return db.insert(issueAssignees).values({ issueId, userId }).onConflictDoNothing().run().changes > 0;
    },
    removeAssignee(issueId: number, userId: number): boolean {
      return db.delete(issueAssignees).where(and(eq(issueAssignees.issueId, issueId), eq(issueAssignees.userId, userId))).run().changes > 0;
    },
    /** Removes every assignee; returns their user ids, in the order they were assigned. */
    removeAllAssignees(issueId: number): number[] {
      const ids = db.select({ userId: issueAssignees.userId }).from(issueAssignees).where(eq(issueAssignees.issueId, issueId)).orderBy(issueAssignees.id).all().map((r) => r.userId);
      db.delete(issueAssignees).where(eq(issueAssignees.issueId, issueId)).run();
      return ids;
    },
    /** The issue of this project that an e-mail with one of these Message-IDs created or was added to. */
    findIssueByEmailMessageId(projectId: number, messageIds: string[]): Issue | undefined {
      if (messageIds.length === 0) return undefined;
      return db
        .select({ issue: issues })
        .from(issueEmails)
        .innerJoin(issues, eq(issueEmails.issueId, issues.id))
        .where(and(eq(issues.projectId, projectId), inArray(issueEmails.emailMessageId, messageIds)))
        .limit(1)
        .get()?.issue;
    },
    addIssueEmail(issueId: number, emailMessageId: string): void {
      db.insert(issueEmails).values({ issueId, emailMessageId }).run();
    },
    participantsOf: (issueId: number): string[] =>
      db.select({ email: issueEmailParticipants.email }).from(issueEmailParticipants).where(eq(issueEmailParticipants.issueId, issueId)).orderBy(issueEmailParticipants.id).all().map((r) => r.email),
    /** Removes an external participant, by address in any case; false when there was none. */
    removeParticipant(issueId: number, email: string): boolean {
      return db.delete(issueEmailParticipants).where(and(eq(issueEmailParticipants.issueId, issueId), sql`casefold(${issueEmailParticipants.email}) = ${casefold(email)}`)).run().changes > 0;
    },
    addParticipant(issueId: number, email: string): boolean {
      return db.insert(issueEmailParticipants).values({ issueId, email }).onConflictDoNothing().run().changes > 0;
    },
    setSubscription(input: { userId: number; noteableType: NoteableType; noteableId: number; subscribed: boolean }): void {
      db.insert(subscriptions)
        .values(input)
        .onConflictDoUpdate({
          target: [subscriptions.userId, subscriptions.noteableType, subscriptions.noteableId],
          set: { subscribed: input.subscribed, updatedAt: sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))` },
        })
        .run();
    },
    touchIssue(id: number): void {
      touch().run({ id });
    },
  };
}
