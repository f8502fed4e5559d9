/**
 * The task registry: `task:` in a config names one of these. Each task is a strategy of the one
 * training loop (src/train/loop.ts), prepared and run by src/train/run.ts; what the config
 * checks about a task (its recipe kinds, loss inputs, model kind) is in src/config/tasks.ts,
 * under the same names.
 */
import type { TaskName } from '../../config/tasks.js';
import type { Task } from '../task.js';
import { twoTowerTask } from './two-tower.js';
import { mlmTask } from './mlm.js';
import { crossEncoderTask } from './cross-encoder.js';
import { distillTask } from './distill.js';

export const TASKS: Record<TaskName, Task> = {
  twotower: twoTowerTask,
  mlm: mlmTask,
  'cross-encoder': crossEncoderTask,
  distill: distillTask,
};
