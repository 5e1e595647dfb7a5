// inbound.repo: inbound_messages (one row per message, whatever became of it) and deliveries (one row
// per recipient of it). Side effects: SQL reads and writes.
import { and, asc, desc, eq, getTableColumns, gt, inArray, isNotNull, isNull, max, ne, sql, type SQL } from 'drizzle-orm';
import { casefold, fixedLimit, placeholders, prepared, preparedByColumns, type Db } from '../client.js';
import { chunked } from '../chunks.js';
import { deliveries, inboundMessageChunks, inboundMessages } from '../schema.js';

export type InboundMessage = typeof inboundMessages.$inferSelect;
export type NewInboundMessage = typeof inboundMessages.$inferInsert;
export type Delivery = typeof deliveries.$inferSelect;
export type NewDelivery = Omit<typeof deliveries.$inferInsert, 'id' | 'createdAt' | 'inboundMessageId'>;
export type Status = InboundMessage['status'];
export interface MessageFilter {
  status?: Status;
  ingress?: InboundMessage['ingress'];
  messageId?: string;
  from?: string;
  to?: string;
  reason?: string;
  since?: string;
  until?: string;
  limit: number;
}

export function createInboundRepository({ db }: { db: Db }) {
  const deliveriesOfMessage = prepared(() => db
    .select()
    .from(deliveries)
    .where(eq(deliveries.inboundMessageId, sql.placeholder('id')))
    .orderBy(deliveries.id)
    .prepare());
  // A processed delivery to the destination among the other rows of the same message. Filtered in one
  // statement: a limit on the rows read first would miss the processed one behind enough refused
  // copies (a client that reuses its Message-ID).
  const copyOf = (sameMessage: SQL) =>
    db
      .select(getTableColumns(deliveries))
      .from(inboundMessages)
      .innerJoin(deliveries, eq(deliveries.inboundMessageId, inboundMessages.id))
      .where(and(sameMessage, ne(inboundMessages.id, sql.placeholder('id')), eq(deliveries.destination, sql.placeholder('destination')), eq(deliveries.status, 'processed')))
      .limit(fixedLimit(1))
      .prepare();
  // The same Message-ID from the same sender: anyone can give their mail a Message-ID they know of.
  const copyByMessageId = prepared(() =>
    copyOf(and(eq(inboundMessages.messageId, sql.placeholder('messageId')), sql`coalesce(${inboundMessages.fromAddress}, '') = ${sql.placeholder('from')}`) as SQL),
  );
  const copyBySha256 = prepared(() => copyOf(and(isNull(inboundMessages.messageId), eq(inboundMessages.sha256, sql.placeholder('sha256'))) as SQL));
  // Every column but id and created_at, so that one prepared statement serves every delivery.
  const insertDelivery = prepared(() =>
    db
      .insert(deliveries)
      .values({
        inboundMessageId: sql.placeholder('inboundMessageId'),
        recipient: sql.placeholder('recipient'),
        key: sql.placeholder('key'),
        source: sql.placeholder('source'),
        destination: sql.placeholder('destination'),
        stage: sql.placeholder('stage'),
        status: sql.placeholder('status'),
        reasonCode: sql.placeholder('reasonCode'),
        reason: sql.placeholder('reason'),
        handler: sql.placeholder('handler'),
        targetType: sql.placeholder('targetType'),
        targetId: sql.placeholder('targetId'),
      })
      .returning({ id: deliveries.id, createdAt: deliveries.createdAt })
      .prepare(),
  );
  const insertMessage = preparedByColumns((columns) =>
    db.insert(inboundMessages).values(placeholders(columns) as never).returning({ id: inboundMessages.id }).prepare(),
  );
  const updateMessage = preparedByColumns((columns) =>
    db.update(inboundMessages).set(placeholders(columns)).where(eq(inboundMessages.id, sql.placeholder('whereId'))).prepare(),
  );
  const insertChunk = prepared(() =>
    db
      .insert(inboundMessageChunks)
      .values({ inboundMessageId: sql.placeholder('id') as never, seq: sql.placeholder('seq') as never, data: sql.placeholder('data') as never })
      .prepare(),
  );
  // In id order from a cursor, not filtered by age: a filter would read every newer row to fill the
  // batch. length() does not read a blob's content, nor the chunks' sum their data.
  const rawAfter = prepared(() =>
    db
      .select({
        id: inboundMessages.id,
        receivedAt: inboundMessages.receivedAt,
        inlineBytes: sql<number | null>`length(${inboundMessages.raw})`,
        chunkBytes: sql<number | null>`(select sum(length(${inboundMessageChunks.data})) from ${inboundMessageChunks} where ${inboundMessageChunks.inboundMessageId} = ${inboundMessages.id})`,
      })
      .from(inboundMessages)
      .where(gt(inboundMessages.id, sql.placeholder('after')))
      .orderBy(asc(inboundMessages.id))
      .limit(sql.placeholder('limit'))
      .prepare(),
  );
  /** Drops the raw messages of these rows; pruned ones (for their age) say when in raw_pruned_at. */
  const clearRaw = (ids: number[], pruned: boolean): void => {
    if (ids.length === 0) return;
    db.update(inboundMessages)
      .set(pruned ? { raw: null, rawPrunedAt: sql`strftime('%Y-%m-%dT%H:%M:%fZ', 'now')` } : { raw: null })
      .where(inArray(inboundMessages.id, ids))
      .run();
    db.delete(inboundMessageChunks).where(inArray(inboundMessageChunks.inboundMessageId, ids)).run();
  };
  return {
    /**
     * One step of dropping raw messages received before `cutoff` (an ISO time, as received_at), from
     * the row after `after` in id order, at most `limit` rows read. Returns the last row it passed
     * (the next step's `after`), what it dropped (or, with dryRun, would drop), and whether it reached
     * a row as new as the cutoff or the end. Rows keep everything else; raw_pruned_at says when.
     */
    pruneRawStep(step: { after: number; cutoff: string; limit: number; maxBytes: number; dryRun?: boolean }): { last: number; messages: number; bytes: number; done: boolean } {
      const rows = rawAfter().all({ after: step.after, limit: step.limit });
      let last = step.after;
      let bytes = 0;
      let done = rows.length < step.limit;
      const ids: number[] = [];
      for (const row of rows) {
        // Rows are stored in the order they arrive: the first one new enough ends the pruning.
        if (row.receivedAt >= step.cutoff) {
          done = true;
          break;
        }
        // Freeing a blob reads its every page: a step of large messages ends early (with one at least).
        if (ids.length > 0 && bytes >= step.maxBytes) {
          done = false;
          break;
        }
        last = row.id;
        // Refused before DATA, or dropped already.
        if (row.inlineBytes === null && row.chunkBytes === null) continue;
        ids.push(row.id);
        bytes += (row.inlineBytes ?? 0) + (row.chunkBytes ?? 0);
      }
      if (!step.dryRun) clearRaw(ids, true);
      return { last, messages: ids.length, bytes, done };
    },
    /** Drops a row's raw message that its sender was told to send again (a 4xx): it keeps it. */
    discardRaw(id: number): void {
      clearRaw([id], false);
    },
    /** The newest row whose raw message was dropped, where the next pruning starts; 0 when none was. */
    lastRawPruned(): number {
      return db.select({ id: max(inboundMessages.id) }).from(inboundMessages).where(isNotNull(inboundMessages.rawPrunedAt)).get()?.id ?? 0;
    },
    /** The raw message of a row whose `raw` is NULL because it is large, in 1 MiB rows. */
    addRawChunks(id: number, pieces: readonly Buffer[]): void {
      let seq = 0;
      for (const data of chunked(pieces)) insertChunk().run({ id, seq: seq++, data });
    },
    /** The raw message as received, from `raw` or from its chunks; null when none was stored. */
    rawOf(id: number): Buffer | null {
      const row = db.select({ raw: inboundMessages.raw }).from(inboundMessages).where(eq(inboundMessages.id, id)).get();
      if (!row) return null;
      if (row.raw) return row.raw;
      const chunks = db.select({ data: inboundMessageChunks.data }).from(inboundMessageChunks).where(eq(inboundMessageChunks.inboundMessageId, id)).orderBy(asc(inboundMessageChunks.seq)).all();
      return chunks.length === 0 ? null : Buffer.concat(chunks.map((c) => c.data));
    },
    insert: (input: NewInboundMessage): number => (insertMessage(input).get(input) as { id: number }).id,
    update(id: number, values: Partial<NewInboundMessage>): void {
      updateMessage(values).run({ ...values, whereId: id });
    },
    /**
     * Of these IMAP URLs (fetched_from), the ones a row has finished with (stored, or refused for good),
     * each with whether its bytes were stored (not when too big). A message deferred with a 4xx (its
     * smtp_reply) is fetched again, as a sender would send it again.
     */
    fetchedAlready(urls: readonly string[]): Map<string, { stored: boolean }> {
      const found = new Map<string, { stored: boolean }>();
      // Under SQLite's limit of parameters a statement.
      for (let i = 0; i < urls.length; i += 500) {
        const rows = db
          .select({ url: inboundMessages.fetchedFrom, sha256: inboundMessages.sha256 })
          .from(inboundMessages)
          .where(and(inArray(inboundMessages.fetchedFrom, urls.slice(i, i + 500)), sql`coalesce(${inboundMessages.smtpReply}, '') not like '4%'`))
          .all();
        for (const { url, sha256 } of rows) if (url !== null) found.set(url, { stored: (found.get(url)?.stored ?? false) || sha256 !== null });
      }
      return found;
    },
    findById: (id: number): InboundMessage | undefined =>
      db.select().from(inboundMessages).where(eq(inboundMessages.id, id)).get(),
    /**
     * Messages newest first that match every filter given: `from` and `to` are pieces of an address
     * (any case), `reason` a reason code or the start of one up to a dot (`rcpt` is every `rcpt.*`) on
     * the message or any of its recipients, `since` and `until` ISO times (until excluded).
     */
    list(filter: MessageFilter): Omit<InboundMessage, 'raw'>[] {
      const { raw: _raw, ...columns } = getTableColumns(inboundMessages);
      const m = inboundMessages;
      const contains = (column: SQL, piece: string) => sql`instr(casefold(coalesce(${column}, '')), ${casefold(piece)}) > 0`;
      const codeIs = (column: SQL, code: string) => sql`(${column} = ${code} or substr(${column}, 1, ${code.length + 1}) = ${`${code}.`})`;
      const conditions: (SQL | undefined)[] = [
        filter.status ? eq(m.status, filter.status) : undefined,
        filter.ingress ? eq(m.ingress, filter.ingress) : undefined,
        filter.messageId ? eq(m.messageId, filter.messageId) : undefined,
        filter.since ? sql`${m.receivedAt} >= ${filter.since}` : undefined,
        filter.until ? sql`${m.receivedAt} < ${filter.until}` : undefined,
        filter.from ? sql`(${contains(sql`${m.mailFrom}`, filter.from)} or ${contains(sql`${m.fromAddress}`, filter.from)})` : undefined,
        filter.to ? sql`exists (select 1 from json_each(${m.rcptTo}) where ${contains(sql`value`, filter.to)})` : undefined,
        filter.reason
          ? sql`(${codeIs(sql`${m.reasonCode}`, filter.reason)} or exists (select 1 from ${deliveries} where ${deliveries.inboundMessageId} = ${m.id} and ${codeIs(sql`${deliveries.reasonCode}`, filter.reason)}))`
          : undefined,
      ];
      return db.select(columns).from(m).where(and(...conditions)).orderBy(desc(m.id)).limit(filter.limit).all();
    },
    /**
     * What became of the messages received from `since` to before `until` (ISO times; none: up to now): how many of
     * each status, and of their recipients how many of each stage, status and reason code, most first.
     */
    outcomes(window: { since: string; until?: string }): { messages: { status: Status; count: number }[]; deliveries: { stage: string; status: Status; reasonCode: string | null; count: number }[] } {
      const m = inboundMessages;
      const inWindow = window.until ? sql`${m.receivedAt} >= ${window.since} and ${m.receivedAt} < ${window.until}` : sql`${m.receivedAt} >= ${window.since}`;
      const count = sql<number>`count(*)`;
      return {
        messages: db.select({ status: m.status, count }).from(m).where(inWindow).groupBy(m.status).orderBy(desc(count)).all(),
        deliveries: db
          .select({ stage: deliveries.stage, status: deliveries.status, reasonCode: deliveries.reasonCode, count })
          .from(deliveries)
          .innerJoin(m, eq(m.id, deliveries.inboundMessageId))
          .where(inWindow)
          .groupBy(deliveries.stage, deliveries.status, deliveries.reasonCode)
          .orderBy(desc(count), deliveries.stage, deliveries.status, deliveries.reasonCode)
          .all(),
      };
    },
    /** A recipient refused at RCPT and accepted later in the same transaction keeps one row: its final one. */
    removeRcptRefusal(inboundMessageId: number, recipient: string): void {
      db.delete(deliveries)
        .where(and(eq(deliveries.inboundMessageId, inboundMessageId), eq(deliveries.recipient, recipient), eq(deliveries.stage, 'rcpt')))
        .run();
    },
    addDelivery(inboundMessageId: number, delivery: NewDelivery): Delivery {
      const row = {
        inboundMessageId,
        recipient: delivery.recipient,
        key: delivery.key ?? null,
        source: delivery.source ?? null,
        destination: delivery.destination ?? null,
        stage: delivery.stage,
        status: delivery.status,
        reasonCode: delivery.reasonCode ?? null,
        reason: delivery.reason ?? null,
        handler: delivery.handler ?? null,
        targetType: delivery.targetType ?? null,
        targetId: delivery.targetId ?? null,
      };
      return { ...row, ...(insertDelivery().get(row) as Pick<Delivery, 'id' | 'createdAt'>) };
    },
    deliveriesOf: (inboundMessageId: number): Delivery[] => deliveriesOfMessage().all({ id: inboundMessageId }),
    deleteDeliveries(ids: number[]): void {
      if (ids.length > 0) db.delete(deliveries).where(inArray(deliveries.id, ids)).run();
    },
    /**
     * A processed delivery to the same destination of another copy of this message (another row with
     * the same Message-ID and From, or for a message without one, the same bytes). The message's own
     * deliveries are the caller's to check: it holds them.
     */
    findProcessedCopy(destination: string, message: { id: number; messageId: string | null; from: string | null; sha256: string }): Delivery | undefined {
      // From the message side (its index finds the copies, each copy's deliveries by theirs): there is
      // no index on the destination, whose side would read a busy issue's every delivery each time.
      return message.messageId
        ? copyByMessageId().get({ messageId: message.messageId, from: message.from ?? '', id: message.id, destination })
        : copyBySha256().get({ sha256: message.sha256, id: message.id, destination });
    },
  };
}
