/**
 * Where the data tests find the real public data: KILN_DATA, else ../shared/datasets beside the
 * repository (the layout CI uses). Also builds temporary data roots for error-path tests.
 */
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import { REPO_ROOT } from '../helpers/python.js';

export const DATA_ROOT = process.env.KILN_DATA ?? resolve(REPO_ROOT, '..', 'shared', 'datasets');

/** A fresh temporary data root holding `files` (relative path → content) and symlinks to real files/folders. */
export function tempRoot(files: Record<string, string> = {}, links: string[] = []): string {
  const root = mkdtempSync(join(tmpdir(), 'kiln-data-'));
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), content);
  }
  for (const rel of links) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    symlinkSync(join(DATA_ROOT, rel), join(root, rel));
  }
  return root;
}
