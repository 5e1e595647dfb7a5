// users.repo: users and their e-mail addresses. Input: validated values. Side effects: SQL reads and writes.
import { randomBytes } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import { casefold, prepared, type Db } from '../client.js';
import { userEmails, users } from '../schema.js';

export type User = typeof users.$inferSelect;

// Addresses are compared with casefold(), not SQLite's lower(), which folds ASCII only: stored as
// `JÖRG@…`, an address would never have matched itself.
export function createUsersRepository({ db }: { db: Db }) {
  // Prepared once: these run for every message.
  const byId = prepared(() => db.select().from(users).where(eq(users.id, sql.placeholder('id'))).prepare());
  const primaryEmail = prepared(() => db
    .select({ id: users.id })
    .from(users)
    .where(and(eq(users.id, sql.placeholder('userId')), sql`casefold(${users.email}) = ${sql.placeholder('folded')}`))
    .prepare());
  const verifiedEmail = prepared(() => db
    .select({ id: userEmails.id })
    .from(userEmails)
    .where(and(eq(userEmails.userId, sql.placeholder('userId')), eq(userEmails.verified, true), sql`casefold(${userEmails.email}) = ${sql.placeholder('folded')}`))
    .prepare());
  return {
    create(input: { username: string; name: string; email: string; incomingEmailToken: string }): User {
      const user = db.insert(users).values(input).returning().get();
      db.insert(userEmails).values({ userId: user.id, email: input.email, verified: true }).run();
      return user;
    },
    /**
     * GitLab's Support Bot: the recipient of the notifications Service Desk sends to external
     * participants, made the first time one is recorded. Its token is random and never handed out.
     */
    supportBot(): User {
      const found = db.select().from(users).where(eq(users.userType, 'support_bot')).get();
      if (found) return found;
      // `support-bot`, unless a person has that name already.
      let username = 'support-bot';
      for (let n = 2; db.select({ id: users.id }).from(users).where(eq(users.username, username)).get(); n++) username = `support-bot-${n}`;
      return db
        .insert(users)
        .values({ username, name: 'GitLab Support Bot', email: 'support-bot@noreply.invalid', incomingEmailToken: `support-bot-${randomBytes(16).toString('hex')}`, userType: 'support_bot' })
        .returning()
        .get();
    },
    findById: (id: number): User | undefined => byId().get({ id }),
    findByUsername: (username: string): User | undefined =>
      db.select().from(users).where(eq(users.username, username)).get(),
    /**
     * As GitLab finds a user a quick action names: in any case (its usernames are unique so). Here
     * `Alice` and `alice` may both exist: the exact name first, else the one user of that name in
     * another case, else none.
     */
    findByUsernameAnyCase(username: string): User | undefined {
      const exact = db.select().from(users).where(eq(users.username, username)).get();
      if (exact) return exact;
      const others = db.select().from(users).where(sql`lower(${users.username}) = lower(${username})`).limit(2).all();
      return others.length === 1 ? others[0] : undefined;
    },
    findByIncomingEmailToken: (token: string): User | undefined =>
      db.select().from(users).where(eq(users.incomingEmailToken, token)).get(),
    /** A new incoming-email token: the addresses with the old one stop working at once. */
    setIncomingEmailToken(id: number, token: string): User {
      return db.update(users).set({ incomingEmailToken: token }).where(eq(users.id, id)).returning().get() as User;
    },
    setState(id: number, state: User['state']): void {
      db.update(users).set({ state }).where(eq(users.id, id)).run();
    },
    addEmail(input: { userId: number; email: string; verified: boolean }) {
      return db.insert(userEmails).values(input).returning().get();
    },
    /** Marks the user's address (in any case) verified; undefined when the user has no such address. */
    verifyEmail(userId: number, email: string) {
      return db
        .update(userEmails)
        .set({ verified: true })
        .where(and(eq(userEmails.userId, userId), sql`casefold(${userEmails.email}) = ${casefold(email)}`))
        .returning()
        .get();
    },
    /** users.email counts as verified too, whatever user_emails says. */
    hasVerifiedEmail(userId: number, email: string): boolean {
      const folded = casefold(email);
      return primaryEmail().get({ userId, folded }) !== undefined || verifiedEmail().get({ userId, folded }) !== undefined;
    },
  };
}
