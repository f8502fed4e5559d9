/**
 * What each training task reads and writes, as the config sees it: the kind of data its
 * training recipes must yield, the loss inputs its strategy provides (src/losses/types.ts),
 * the losses it uses when `loss:` is left out, and the model kind it saves. The config loader
 * checks a run against this table, so a `task: mlm` with a pair recipe, or an InfoNCE loss on a
 * task that makes no score matrix, is a config error naming the key. The strategies themselves
 * are in src/train/tasks/, registered under the same names (a missing one fails to typecheck).
 */
import type { LossEntryInput, LossInputName } from '../losses/index.js';
import type { RecipeKind } from '../data/recipes/index.js';

export interface TaskSpec {
  readonly description: string;
  /** Kinds of data the training recipes (`data.train[].recipe`) must yield. */
  readonly trainRecipeKinds: readonly RecipeKind[];
  /** Loss inputs the task's strategy provides each step. */
  readonly lossInputs: readonly LossInputName[];
  /** The losses used when `loss:` is not given; null = `loss:` is required. */
  readonly defaultLoss: readonly LossEntryInput[] | null;
  /** The `model.json` kind the run saves (src/models/run-model.ts). */
  readonly modelKind: 'two-tower' | 'cross-encoder' | 'masked-lm';
}

export const TASK_SPECS = {
  twotower: {
    description: 'a two-tower (dual) encoder on (query, document) pairs, with in-batch and mined negatives',
    // Retrieval judgements train as (query, relevant document) pairs; scored pairs as pairs with graded targets.
    trainRecipeKinds: ['pairs', 'retrieval', 'scored-pairs'],
    lossInputs: ['scores'],
    defaultLoss: null,
    modelKind: 'two-tower',
  },
  mlm: {
    description: 'BERT masked-language-model pretraining on a text corpus',
    trainRecipeKinds: ['corpus'],
    lossInputs: ['tokens'],
    defaultLoss: [{ name: 'masked_lm' }],
    modelKind: 'masked-lm',
  },
  'cross-encoder': {
    description: 'a cross-encoder on [CLS] query [SEP] doc [SEP], each positive against k mined negatives',
    trainRecipeKinds: ['pairs', 'retrieval', 'scored-pairs'],
    // teacher_scores: the mining two-tower run's scores of the same pairs (negatives.source run:<dir>).
    lossInputs: ['scores', 'teacher_scores'],
    // The cross-encoder's score is already a logit: BCE without SigLIP's affine (scale 1, bias 0).
    defaultLoss: [{ name: 'bce', scale: 1, bias: 0, learnable_scale: false, learnable_bias: false }],
    modelKind: 'cross-encoder',
  },
  distill: {
    description: 'a two-tower student taught by a teacher (a bi-encoder, a cross-encoder or a Hugging Face BERT), beside the labelled pairs',
    trainRecipeKinds: ['pairs', 'retrieval'],
    lossInputs: ['scores', 'embeddings', 'teacher_scores', 'layers'],
    defaultLoss: null,
    modelKind: 'two-tower',
  },
} as const satisfies Record<string, TaskSpec>;

export type TaskName = keyof typeof TASK_SPECS;
export const TASK_NAMES = Object.keys(TASK_SPECS) as [TaskName, ...TaskName[]];
