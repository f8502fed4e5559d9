/**
 * The `kiln` command line: yargs wiring only. Each command lives in its own file under
 * src/cli/commands and is listed in COMMANDS; `kiln --help` shows exactly these.
 */
import yargs from 'yargs';
import { COMMANDS } from './commands/index.js';

/** Runs the CLI with `argv` (without `node` and the script) and resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  let parser = yargs(argv)
    .scriptName('kiln')
    .usage('$0 <command> [options]\n\nTrain, distil, evaluate and serve text encoders on libtorch.')
    .strict()
    .demandCommand(1, 'Name a command; `kiln --help` lists them.')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version()
    .wrap(null) // keeps the generated config reference one key per line
    .fail((message, error) => {
      // Usage errors exit 2 with the reason and the help text; other errors propagate.
      if (error) throw error;
      process.stderr.write(`${message}\n\nRun \`kiln --help\` for usage.\n`);
      exitCode = 2;
    });
  for (const command of COMMANDS) parser = parser.command(command);
  await parser.parseAsync();
  // Usage errors set `exitCode`; command handlers report theirs through process.exitCode.
  return exitCode !== 0 ? exitCode : Number(process.exitCode ?? 0);
}
