/** Kiln's version, read from package.json so there is one place to bump it. */
import { createRequire } from 'node:module';

const pkg = createRequire(import.meta.url)('../package.json') as { version: string };
export const KILN_VERSION: string = pkg.version;
