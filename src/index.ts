/** Kiln's public API. */
export * from './engine/index.js';
export { KILN_VERSION } from './version.js';
