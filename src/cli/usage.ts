/**
 * A usage error: the command line itself is wrong (conflicting or out-of-range options).
 * Thrown from a command's yargs `.check()`; `main` prints the message with the usage hint and
 * exits 2, while any other error from a command propagates as a failure.
 */
export class UsageError extends Error {}
