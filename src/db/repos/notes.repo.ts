// notes.repo: notes and the attachments stored with them. Side effects: SQL writes.
import { eq } from 'drizzle-orm';
import type { Db } from '../client.js';
import { attachments, notes } from '../schema.js';

export type Note = typeof notes.$inferSelect;
export type NewAttachment = Omit<typeof attachments.$inferInsert, 'id' | 'createdAt'>;

export function createNotesRepository({ db }: { db: Db }) {
  return {
    create: (input: typeof notes.$inferInsert): Note => db.insert(notes).values(input).returning().get(),
    findById: (id: number): Note | undefined => db.select().from(notes).where(eq(notes.id, id)).get(),
    setBody(id: number, body: string): void {
      db.update(notes).set({ body }).where(eq(notes.id, id)).run();
    },
    addAttachment(input: NewAttachment): number {
      return db.insert(attachments).values(input).returning({ id: attachments.id }).get().id;
    },
  };
}
