import { z } from 'zod';
import { AppError, unavailable } from '../common/errors';
import { InvalidCursorError, SearchUnavailableError } from './engine';

/* Shared by the two search endpoints: the cursor field and engine errors as HTTP errors. */

export const searchCursor = z.string().min(1).max(500);
export const searchLimit = z.coerce.number().int().min(1).max(100).default(20);

/** Runs a search; a bad cursor is a 400 naming `cursor`, an engine outage a 503. */
export async function answerSearch<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof InvalidCursorError) {
      throw new AppError(400, 'validation_failed', 'the request is invalid', [
        { path: 'cursor', message: err.message },
      ]);
    }
    if (err instanceof SearchUnavailableError) {
      throw unavailable('search is unavailable; try again shortly', 5);
    }
    throw err;
  }
}
