/**
 * Atomic file writes: data goes to a temporary file in the same directory, is fsynced, and is
 * then renamed over the target. A reader sees the old file or the new one, never a torn one,
 * and a crash mid-write leaves the previous file intact. A directory of files (an export, a
 * search index) is written into a hidden staging sibling and renamed into place whole.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Writes the chunks produced by `write` to `path` atomically. */
export function writeFileAtomic(path: string, chunks: Iterable<Uint8Array>): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
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
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** Writes `files` into a new hidden sibling of `dir` and returns its path (the caller moves or removes it). */
export function writeStagingDirectory(dir: string, files: ReadonlyMap<string, Uint8Array>): string {
  const target = resolve(dir);
  mkdirSync(dirname(target), { recursive: true });
  const staging = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
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
    const aside = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.old`);
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
  const staging = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
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
