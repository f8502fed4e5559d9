#!/usr/bin/env node
// Entry point for `npx kiln`: runs the compiled CLI (built by `npm ci` through `prepare`).
import { main } from '../dist/cli/main.js';

// A reader that stops early (`kiln skills extract … | head`) closes the pipe: that ends the
// output, as it does for any Unix tool, rather than crashing with EPIPE.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

process.exitCode = await main(process.argv.slice(2));
