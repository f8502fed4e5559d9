/**
 * The recipe registry: every dataset recipe by name. A recipe turns public files under the
 * data root into one kind of data: training `pairs`, a `retrieval` split, `scored-pairs`,
 * span-annotated `texts`, or a plain-text `corpus` for MLM pretraining. Configs name a recipe
 * and its options; `loadRecipe` validates the options against the recipe's strict schema and
 * loads.
 */
import type { RecipeContext } from '../types.js';
import { domainCorpus } from './domain-corpus.js';
import { escoOccupations } from './esco-occupations.js';
import { escoSkills } from './esco-skills.js';
import { jobbertTitles } from './jobbert-titles.js';
import { onetTitles } from './onet-titles.js';
import { pairs } from './pairs.js';
import { retrieval } from './retrieval.js';
import { scoredPairs } from './scored-pairs.js';
import { triplets } from './triplets.js';
import type { RecipeKind, RecipeOutputs } from './recipe.js';
import { skillExtraction } from './skill-extraction.js';
import { skillspan } from './skillspan.js';
import { skillspanPairs } from './skillspan-pairs.js';
import { skillspanWeak } from './skillspan-weak.js';
import { stsb } from './stsb.js';

export { defineRecipe, makeLabelledPairs, type Recipe, type RecipeKind, type RecipeOutputs } from './recipe.js';

export const RECIPES = {
  'esco-occupations': escoOccupations,
  'esco-skills': escoSkills,
  'onet-titles': onetTitles,
  'jobbert-titles': jobbertTitles,
  'skill-extraction': skillExtraction,
  skillspan,
  'skillspan-pairs': skillspanPairs,
  'skillspan-weak': skillspanWeak,
  stsb,
  'domain-corpus': domainCorpus,
  // Your own data, from CSV, TSV, JSONL, Arrow or Parquet files:
  pairs,
  triplets,
  'scored-pairs': scoredPairs,
  retrieval,
} as const;

export type RecipeName = keyof typeof RECIPES;
export type AnyRecipe = (typeof RECIPES)[RecipeName];

/** Loaded data tagged with its kind, so callers can switch on `kind`. */
export type LoadedData = { [K in RecipeKind]: { recipe: string; kind: K; data: RecipeOutputs[K] } }[RecipeKind];

export function isRecipeName(name: string): name is RecipeName {
  return Object.hasOwn(RECIPES, name);
}

/** The recipe called `name`; an unknown name is an error listing the known ones. */
export function getRecipe(name: string): AnyRecipe {
  if (!isRecipeName(name)) throw new Error(`unknown dataset recipe "${name}"; known recipes: ${Object.keys(RECIPES).join(', ')}`);
  return RECIPES[name];
}

/** Loads recipe `name` with options from a config (validated by the recipe's strict schema). */
export async function loadRecipe(name: string, ctx: RecipeContext, options: unknown = {}): Promise<LoadedData> {
  const recipe = getRecipe(name);
  const data = await recipe.loadUnchecked(ctx, options);
  return { recipe: name, kind: recipe.kind, data } as LoadedData;
}
