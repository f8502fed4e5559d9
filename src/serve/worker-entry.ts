/**
 * What `new Worker(...)` runs for a module that is its own worker entry point (./lexical-worker.ts,
 * ./model-thread.ts). Compiled, the module is a .js file a worker runs directly; run from the
 * TypeScript sources (the test suite), the worker first registers tsx's loader, then imports it.
 */
export function workerEntry(moduleUrl: string): { entry: string | URL; eval: boolean } {
  const self = new URL(moduleUrl);
  if (!self.pathname.endsWith('.ts')) return { entry: self, eval: false };
  return { entry: `(async () => { (await import('tsx/esm/api')).register(); await import(${JSON.stringify(self.href)}); })()`, eval: true };
}
