import { ConfigError } from '../config/errors.js';
import { DataError } from '../data/types.js';
import { StoreError } from '../track/store.js';

/**
 * A usage error: the command line itself is wrong (conflicting or out-of-range options).
 * Thrown from a command's yargs `.check()`; `main` prints the message with the usage hint and
 * exits 2, while any other error from a command propagates as a failure.
 */
export class UsageError extends Error {}

/**
 * Prints a user error (a bad config, a bad data file, a run store this Kiln cannot use) as its
 * one-line message and sets exit code 2; returns false for anything else, which the command
 * rethrows as a failure with its stack.
 */
export function reportUserError(error: unknown): boolean {
  const line = error instanceof ConfigError ? error.message : error instanceof DataError ? `data error: ${error.message}` : error instanceof StoreError ? `run store: ${error.message}` : null;
  if (line === null) return false;
  process.stderr.write(`${line}\n`);
  process.exitCode = 2;
  return true;
}
