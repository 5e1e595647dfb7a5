// notes.repo: notes and the attachments stored with them. Side effects: SQL writes.
import { eq, sql } from 'drizzle-orm';
import { placeholders, prepared, preparedByColumns, type Db } from '../client.js';
import { chunked, inline } from '../chunks.js';
import { attachmentChunks, attachments, notes } from '../schema.js';

export type Note = typeof notes.$inferSelect;
export type NewAttachment = Omit<typeof attachments.$inferInsert, 'id' | 'createdAt' | 'content'> & {
  /** The file in pieces; joined into `content` when small, else written to attachment_chunks. */
  content: readonly Buffer[];
};

export function createNotesRepository({ db }: { db: Db }) {
  const insertNote = preparedByColumns((columns) => db.insert(notes).values(placeholders(columns) as never).returning({ id: notes.id }).prepare());
  const updateBody = prepared(() => db.update(notes).set({ body: sql.placeholder('body') as never }).where(eq(notes.id, sql.placeholder('id'))).prepare());
  return {
    /** Returns the new note's id. */
    create: (input: typeof notes.$inferInsert): number => (insertNote(input).get(input) as { id: number }).id,
    findById: (id: number): Note | undefined => db.select().from(notes).where(eq(notes.id, id)).get(),
    setBody(id: number, body: string): void {
      updateBody().run({ id, body });
    },
    addAttachment({ content, ...input }: NewAttachment): number {
      const small = inline(content, input.size);
      const id = db.insert(attachments).values({ ...input, content: small }).returning({ id: attachments.id }).get().id;
      if (small === null) {
        let seq = 0;
        for (const data of chunked(content)) db.insert(attachmentChunks).values({ attachmentId: id, seq: seq++, data }).run();
      }
      return id;
    },
  };
}
