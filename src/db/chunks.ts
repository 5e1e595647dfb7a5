// chunks: how content larger than 1 MiB is cut for the *_chunks tables, and put back together.
// Pure: no SQL here (the repositories write the rows).

/** Content up to this size is one blob in its row; larger content is stored in pieces of this size. */
export const CHUNK_BYTES = 1024 * 1024;

/** Re-cuts pieces of any sizes into pieces of `size` bytes (the last one shorter), copying only across seams. */
export function* chunked(pieces: readonly Buffer[], size = CHUNK_BYTES): Generator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for (const piece of pieces) {
    let offset = 0;
    while (offset < piece.length) {
      const take = Math.min(size - pendingBytes, piece.length - offset);
      const part = piece.subarray(offset, offset + take);
      offset += take;
      if (pendingBytes === 0 && take === size) {
        yield part;
        continue;
      }
      pending.push(part);
      pendingBytes += take;
      if (pendingBytes === size) {
        yield Buffer.concat(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes > 0) yield pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
}

/** One buffer for content that fits in a row (pieces joined), or null when it goes to a chunks table. */
export function inline(pieces: readonly Buffer[], size: number): Buffer | null {
  if (size > CHUNK_BYTES) return null;
  return pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces as Buffer[], size);
}
