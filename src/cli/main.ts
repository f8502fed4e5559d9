/**
 * The `kiln` command line: yargs wiring only. Each command lives in its own file under
 * src/cli/commands and is listed in COMMANDS; `kiln --help` shows exactly these.
 */
import yargs, { type Argv } from 'yargs';
import { COMMANDS } from './commands/index.js';
import { UsageError } from './usage.js';

/** Unwinds yargs after a usage error has been printed. */
class UsageReported extends Error {}

/**
 * The commands yargs has matched so far, outermost first (`['skills', 'build']` for
 * `kiln skills build --bad`); empty before a command is recognised. yargs keeps this list in
 * its parse context, which only its internal methods expose; if a later yargs changes that,
 * the hint falls back to `kiln --help` rather than failing.
 */
function commandsBeingParsed(parser: Argv): string[] {
  const internal = (parser as unknown as { getInternalMethods?: () => { getContext?: () => { commands?: unknown } } }).getInternalMethods?.();
  const commands = internal?.getContext?.()?.commands;
  return Array.isArray(commands) && commands.every((c) => typeof c === 'string') ? (commands as string[]) : [];
}

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
      // Usage errors (yargs' own, and UsageError from a command's checks) exit 2 with the
      // reason and the help hint; any other error propagates.
      // Throwing stops yargs from going on to run the command's handler.
      if (error && !(error instanceof UsageError)) throw error;
      // The hint names the (sub)command being parsed: its --help lists the options that were wrong.
      const help = ['kiln', ...commandsBeingParsed(parser), '--help'].join(' ');
      process.stderr.write(`${error?.message ?? message}\n\nRun \`${help}\` for usage.\n`);
      exitCode = 2;
      throw new UsageReported();
    });
  for (const command of COMMANDS) parser = parser.command(command);
  try {
    await parser.parseAsync();
  } catch (error) {
    if (!(error instanceof UsageReported)) throw error;
  }
  // Usage errors set `exitCode`; command handlers report theirs through process.exitCode.
  return exitCode !== 0 ? exitCode : Number(process.exitCode ?? 0);
}
