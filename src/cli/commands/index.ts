/** The registry of CLI commands: add a command here and it appears in `kiln --help`. */
import type { CommandModule } from 'yargs';
import { infoCommand } from './info.js';
import { trainCommand } from './train.js';
import { evalCommand } from './eval.js';
import { embedCommand } from './embed.js';
import { serveCommand } from './serve.js';
import { exportCommand } from './export.js';
import { indexCommand } from './index-build.js';
import { runsCommand } from './runs.js';
import { dashboardCommand } from './dashboard.js';
import { gateCommand } from './gate.js';
import { skillsCommand } from './skills.js';
import { dataCommand } from './data.js';

// yargs' CommandModule is invariant in its argument type; the registry only needs the shape.
export const COMMANDS: ReadonlyArray<CommandModule<object, never>> = [infoCommand, dataCommand, trainCommand, evalCommand, exportCommand, embedCommand, indexCommand, serveCommand, runsCommand, dashboardCommand, gateCommand, skillsCommand].map((c) => c as unknown as CommandModule<object, never>);
