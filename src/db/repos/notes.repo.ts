// notes.repo: notes and the attachments stored with them. Side effects: SQL writes.
import { eq, sql } from 'drizzle-orm';
import { placeholders, prepared, preparedByColumns, type Db } from '../client.js';
import { attachments, notes } from '../schema.js';

export type Note = typeof notes.$inferSelect;
export type NewAttachment = Omit<typeof attachments.$inferInsert, 'id' | 'createdAt'>;

export function createNotesRepository({ db }: { db: Db }) {
  const insertNote = preparedByColumns((columns) => db.insert(notes).values(placeholders(columns) as never).returning().prepare());
  const updateBody = prepared(() => db.update(notes).set({ body: sql.placeholder('body') as never }).where(eq(notes.id, sql.placeholder('id'))).prepare());
  return {
    create: (input: typeof notes.$inferInsert): Note => insertNote(input).get(input) as Note,
    findById: (id: number): Note | undefined => db.select().from(notes).where(eq(notes.id, id)).get(),
    setBody(id: number, body: string): void {
      updateBody().run({ id, body });
    },
    addAttachment(input: NewAttachment): number {
      return db.insert(attachments).values(input).returning({ id: attachments.id }).get().id;
    },
  };
}
