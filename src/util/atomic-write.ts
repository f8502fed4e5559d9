/**
 * Atomic file writes: data goes to a temporary file in the same directory, is fsynced, and is
 * then renamed over the target. A reader sees the old file or the new one, never a torn one,
 * and a crash mid-write leaves the previous file intact. A directory of files (an export, a
 * search index) is written into a hidden staging sibling and renamed into place whole.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

/** A hidden temporary name beside `path`, unique to this process and call. */
function tempSibling(path: string, suffix = 'tmp'): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.${suffix}`);
}

/** fsyncs a directory, so that a rename inside it survives a crash. */
function syncDirectory(dir: string): void {
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** Writes the chunks produced by `write` to `path` atomically. */
export function writeFileAtomic(path: string, chunks: Iterable<Uint8Array>): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const temp = tempSibling(path);
  const fd = openSync(temp, 'w');
  try {
    for (const chunk of chunks) {
      let offset = 0;
      while (offset < chunk.byteLength) offset += writeSync(fd, chunk, offset, chunk.byteLength - offset);
    }
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  // Persist the rename itself: fsync the directory entry.
  syncDirectory(dir);
}

/**
 * A file written as a stream, atomically: chunks go to a hidden temporary sibling as they come,
 * `commit()` fsyncs it and renames it over the target (then fsyncs the directory), `abort()`
 * removes it, and so does a process exit before either. Until commit, whatever was at the target
 * is untouched. For outputs too large to build in memory first (`kiln embed`'s Arrow files).
 */
export class AtomicFileStream {
  readonly path: string;
  readonly temp: string;
  readonly #handle: FileHandle;
  /** Removes the temp file if the process exits (e.g. Ctrl-C through process.exit) before commit/abort. */
  readonly #onExit: () => void;
  #done = false;

  private constructor(path: string, temp: string, handle: FileHandle) {
    this.path = path;
    this.temp = temp;
    this.#handle = handle;
    this.#onExit = () => rmSync(temp, { force: true });
    process.once('exit', this.#onExit);
  }

  static async open(path: string): Promise<AtomicFileStream> {
    const target = resolve(path);
    mkdirSync(dirname(target), { recursive: true });
    const temp = tempSibling(target);
    return new AtomicFileStream(target, temp, await open(temp, 'wx'));
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#done) throw new Error(`${this.path}: write after commit/abort`);
    await this.#handle.write(chunk);
  }

  /** fsyncs the temporary file and renames it over the target. */
  async commit(): Promise<void> {
    if (this.#done) throw new Error(`${this.path}: commit after commit/abort`);
    this.#done = true;
    process.removeListener('exit', this.#onExit);
    try {
      await this.#handle.sync();
      await this.#handle.close();
      await rename(this.temp, this.path);
    } catch (error) {
      await this.#handle.close().catch(() => undefined);
      await rm(this.temp, { force: true });
      throw error;
    }
    syncDirectory(dirname(this.path));
  }

  /** Drops the temporary file; the target keeps its old content (or stays absent). */
  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    process.removeListener('exit', this.#onExit);
    await this.#handle.close().catch(() => undefined);
    await rm(this.temp, { force: true });
  }
}

/** Writes `files` into a new hidden sibling of `dir` and returns its path (the caller moves or removes it). */
export function writeStagingDirectory(dir: string, files: ReadonlyMap<string, Uint8Array>): string {
  const target = resolve(dir);
  mkdirSync(dirname(target), { recursive: true });
  const staging = tempSibling(target);
  mkdirSync(staging);
  try {
    for (const [name, bytes] of files) writeFileAtomic(join(staging, name), [bytes]);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
  return staging;
}

/** Renames a finished staging directory to `dir`; a previous `dir` is set aside first and removed last. */
export function moveIntoPlace(staging: string, dir: string): void {
  const target = resolve(dir);
  if (existsSync(target)) {
    const aside = tempSibling(target, 'old');
    renameSync(target, aside);
    renameSync(staging, target);
    rmSync(aside, { recursive: true, force: true });
  } else {
    renameSync(staging, target);
  }
}

/**
 * Writes `files` into a fresh sibling directory and renames it to `dir`. An existing `dir` is
 * first renamed aside and removed only once the new directory is in place.
 */
export function writeDirectoryAtomic(dir: string, files: ReadonlyMap<string, Uint8Array>): void {
  const staging = writeStagingDirectory(dir, files);
  try {
    moveIntoPlace(staging, dir);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Builds a directory in a hidden staging sibling of `dir` (`build` fills it) and renames it into
 * place once `build` resolves. If `build` throws, or the process exits first (Ctrl-C goes
 * through process.exit), the staging directory is removed and an earlier `dir` is left as it was.
 */
export async function buildDirectoryAtomic<T>(dir: string, build: (staging: string) => Promise<T>): Promise<T> {
  const target = resolve(dir);
  mkdirSync(dirname(target), { recursive: true });
  const staging = tempSibling(target);
  const removeStaging = (): void => rmSync(staging, { recursive: true, force: true });
  process.once('exit', removeStaging);
  try {
    mkdirSync(staging);
    const result = await build(staging);
    moveIntoPlace(staging, target);
    return result;
  } catch (error) {
    removeStaging();
    throw error;
  } finally {
    process.removeListener('exit', removeStaging);
  }
}
