// issuables.repo: issues and merge requests, the things notes attach to. Side effects: SQL reads and writes.
import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../client.js';
import { issues, mergeRequests } from '../schema.js';

export type Issue = typeof issues.$inferSelect;
export type MergeRequest = typeof mergeRequests.$inferSelect;
export type NoteableType = 'Issue' | 'MergeRequest';
export type Noteable = { type: 'Issue'; row: Issue } | { type: 'MergeRequest'; row: MergeRequest };

export function createIssuablesRepository({ db }: { db: Db }) {
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
    findIssueByIid: (projectId: number, iid: number): Issue | undefined =>
      db.select().from(issues).where(and(eq(issues.projectId, projectId), eq(issues.iid, iid))).get(),
    findMergeRequestByIid: (projectId: number, iid: number): MergeRequest | undefined =>
      db.select().from(mergeRequests).where(and(eq(mergeRequests.projectId, projectId), eq(mergeRequests.iid, iid))).get(),
    findNoteable(type: NoteableType, id: number): Noteable | undefined {
      if (type === 'Issue') {
        const row = db.select().from(issues).where(eq(issues.id, id)).get();
        return row && { type, row };
      }
      const row = db.select().from(mergeRequests).where(eq(mergeRequests.id, id)).get();
      return row && { type, row };
    },
    deleteIssue(id: number): void {
      db.delete(issues).where(eq(issues.id, id)).run();
    },
    touchIssue(id: number): void {
      db.update(issues)
        .set({ updatedAt: sql`(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))` })
        .where(eq(issues.id, id))
        .run();
    },
  };
}
