// notifications.repo: sent notifications, each holding the reply key of one e-mail sent. Side effects: SQL.
import { eq, or, sql } from 'drizzle-orm';
import { prepared, type Db } from '../client.js';
import { sentNotifications } from '../schema.js';

export type SentNotification = typeof sentNotifications.$inferSelect;

export function createNotificationsRepository({ db }: { db: Db }) {
  // Prepared once: every RCPT TO of a reply key looks it up.
  const byKey = prepared(() => db.select().from(sentNotifications).where(eq(sentNotifications.replyKey, sql.placeholder('key'))).prepare());
  return {
    create: (input: typeof sentNotifications.$inferInsert): SentNotification =>
      db.insert(sentNotifications).values(input).returning().get(),
    /**
     * The notification for a key: an exact match, else (for a partitioned key) the one notification
     * whose key has the same partition and random part, with or without a namespace suffix.
     * Anything other than exactly one candidate is "not found", as GitLab guards against collisions.
     */
    findByKey(key: string, stem: string | null): SentNotification | undefined {
      const exact = byKey().get({ key });
      if (exact || stem === null) return exact;
      const candidates = db
        .select()
        .from(sentNotifications)
        .where(or(eq(sentNotifications.replyKey, stem), sql`${sentNotifications.replyKey} glob ${`${stem}-*`}`))
        .limit(2)
        .all();
      return candidates.length === 1 ? candidates[0] : undefined;
    },
  };
}
