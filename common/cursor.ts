import { AppError } from './errors';

/** Where a newest-first page ended: the last row's (createdAt, id). */
export interface KeysetPosition {
  createdAt: Date;
  id: string;
}

/** An opaque cursor for lists ordered by (createdAt desc, id desc). */
export const encodeCursor = (at: KeysetPosition): string =>
  Buffer.from(`${at.createdAt.toISOString()}|${at.id}`).toString('base64url');

/** The position a cursor names, or 400 invalid_cursor. */
export function decodeCursor(cursor: string): KeysetPosition {
  const text = Buffer.from(cursor, 'base64url').toString();
  const sep = text.indexOf('|');
  const createdAt = new Date(text.slice(0, sep));
  const id = text.slice(sep + 1);
  if (sep < 0 || !id || Number.isNaN(createdAt.getTime())) {
    throw new AppError(400, 'invalid_cursor', 'the cursor is not valid');
  }
  return { createdAt, id };
}
