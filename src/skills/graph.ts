/**
 * The ESCO skills graph, and one-hop "skill expansion" over it for the skill-extraction
 * pipeline.
 *
 * Nodes are the 13,896 ESCO v1.1.1 skills, numbered by their position in `skills_en.csv` (the
 * order `loadEscoConcepts(ctx, 'skills')` returns, the skill id everywhere in the pipeline).
 * Edges come from two files of the official ESCO v1.1.1 English CSV export (European
 * Commission; reuse under Decision 2011/833/EU, CC BY 4.0 — "This service uses the ESCO
 * classification of the European Commission."; https://esco.ec.europa.eu/en/use-esco/download):
 *
 * | file                               | relation               | kept                                   |
 * |------------------------------------|------------------------|----------------------------------------|
 * | `broaderRelationsSkillPillar.csv`  | `broader` / `narrower` | skill → skill rows (6,565); rows with a SkillGroup on either side are the grouping hierarchy, not skill edges (14,091, skipped and counted) |
 * | `skillSkillRelations.csv`          | `essential`/`optional` | 191 essential, 5,707 optional pairs; one optional self loop is dropped |
 *
 * `narrower` is the inverse of `broader`. ESCO's skill–skill relations are directed ("original
 * needs related, essentially or optionally"), but for expansion either end is evidence of the
 * other, so both are stored symmetrically, keeping essential and optional apart.
 *
 * Expansion (after tagging): every found skill s with score(s) adds its neighbours n with
 *
 *     score(n) = decay[relation] × score(s)
 *
 * one hop only, at most `maxPerSkill` per found skill, never re-adding a found skill, and
 * keeping the best score when several found skills reach the same n. The expanded skills are
 * returned apart from the found ones (`ExpandedSkill`, with where each came from), so callers
 * can mark or weigh them separately.
 *
 * The idea follows LinkedIn Engineering, "Extracting skills from content to fuel the LinkedIn
 * Skills Graph" (2023): after tagging, "skill expansion" adds skills related to the tagged ones
 * through the taxonomy's relationships (parent, child and related skills).
 */
import type { EscoConcept } from '../data/esco.js';
import { forEachRow, readCsv, requireFiles } from '../data/files.js';
import type { RecipeContext } from '../data/types.js';

export const SKILL_GRAPH_FILES = {
  broader: 'esco-v1.1.1/broaderRelationsSkillPillar.csv',
  related: 'esco-v1.1.1/skillSkillRelations.csv',
} as const;

export type SkillRelation = 'broader' | 'narrower' | 'essential' | 'optional';

/** The order in which `expandSkills` takes one source's neighbours (and breaks relation ties). */
export const SKILL_RELATIONS: readonly SkillRelation[] = Object.freeze(['broader', 'narrower', 'essential', 'optional']);

/** An edge as given to the constructor: `broader` means `to` is the broader skill of `from`. */
export interface SkillEdge {
  from: number;
  to: number;
  relation: 'broader' | 'essential' | 'optional';
}

export interface SkillEdges {
  /** Per skill index: neighbour indices by relation (sorted ascending, no duplicates, no self loops). */
  readonly broader: readonly (readonly number[])[];
  readonly narrower: readonly (readonly number[])[];
  readonly essential: readonly (readonly number[])[];
  readonly optional: readonly (readonly number[])[];
}

/** The JSON form saved inside a model directory (`SkillGraph.toJSON`). */
export interface SkillGraphJSON {
  numSkills: number;
  /** [skill, its broader skill] */
  broader: [number, number][];
  /** [a, b] with a < b: each symmetric pair once */
  essential: [number, number][];
  optional: [number, number][];
}

const EDGE_RELATIONS = ['broader', 'essential', 'optional'] as const;

function isSkillIndex(value: unknown, numSkills: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < numSkills;
}

/** Sorted, de-duplicated, frozen adjacency lists. */
function freezeLists(lists: number[][]): readonly (readonly number[])[] {
  return Object.freeze(
    lists.map((list) => {
      list.sort((a, b) => a - b);
      return Object.freeze(list.filter((v, i) => i === 0 || v !== list[i - 1]));
    }),
  );
}

/**
 * Skill → skill edges of a taxonomy, as per-skill adjacency lists by relation. Self loops are
 * dropped and repeated edges merged; an index outside [0, numSkills) throws.
 *
 * @example
 * ```ts
 * // 0 "Haskell" → broader 1 "computer programming"; 2 is optionally related to 1
 * const graph = new SkillGraph(3, [
 *   { from: 0, to: 1, relation: 'broader' },
 *   { from: 2, to: 1, relation: 'optional' },
 * ]);
 * graph.neighbours(1, 'narrower'); // [0]
 * graph.neighbours(1, 'optional'); // [2]
 * ```
 */
export class SkillGraph {
  readonly edges: SkillEdges;
  readonly #numSkills: number;

  constructor(numSkills: number, edges: readonly SkillEdge[]) {
    if (!Number.isInteger(numSkills) || numSkills < 0) throw new RangeError(`SkillGraph: numSkills is ${numSkills}; expected a non-negative integer`);
    this.#numSkills = numSkills;
    const empty = (): number[][] => Array.from({ length: numSkills }, () => []);
    const lists: Record<SkillRelation, number[][]> = { broader: empty(), narrower: empty(), essential: empty(), optional: empty() };
    edges.forEach((edge, i) => {
      const { from, to, relation } = edge;
      if (!isSkillIndex(from, numSkills) || !isSkillIndex(to, numSkills)) {
        throw new RangeError(`SkillGraph: edge ${i} is ${JSON.stringify(edge)}; expected from and to to be skill indices in [0, ${numSkills})`);
      }
      if (!EDGE_RELATIONS.includes(relation)) {
        throw new RangeError(`SkillGraph: edge ${i} has relation ${JSON.stringify(relation)}; expected one of ${EDGE_RELATIONS.join(', ')} (narrower edges are derived from broader ones)`);
      }
      // A skill is not its own parent or relative; expanding it onto itself would add nothing.
      if (from === to) return;
      if (relation === 'broader') {
        (lists.broader[from] as number[]).push(to);
        (lists.narrower[to] as number[]).push(from);
      } else {
        (lists[relation][from] as number[]).push(to);
        (lists[relation][to] as number[]).push(from);
      }
    });
    this.edges = Object.freeze({
      broader: freezeLists(lists.broader),
      narrower: freezeLists(lists.narrower),
      essential: freezeLists(lists.essential),
      optional: freezeLists(lists.optional),
    });
  }

  get numSkills(): number {
    return this.#numSkills;
  }

  /** Neighbours of `skill` by `relation`, sorted ascending. */
  neighbours(skill: number, relation: SkillRelation): readonly number[] {
    const list = this.edges[relation]?.[skill];
    if (list === undefined) {
      throw new RangeError(`SkillGraph.neighbours: skill ${skill} / relation ${JSON.stringify(relation)}; expected a skill index in [0, ${this.#numSkills}) and one of ${SKILL_RELATIONS.join(', ')}`);
    }
    return list;
  }

  /** Edges per relation (broader, essential, optional), each counted once. */
  edgeCounts(): { broader: number; essential: number; optional: number } {
    const pairs = this.toJSON();
    return { broader: pairs.broader.length, essential: pairs.essential.length, optional: pairs.optional.length };
  }

  /**
   * Compact JSON form for a model directory: each broader edge once as [skill, broader], each
   * symmetric pair once as [a, b] with a < b, all sorted, so equal graphs serialise equally.
   */
  toJSON(): SkillGraphJSON {
    const broader: [number, number][] = [];
    const essential: [number, number][] = [];
    const optional: [number, number][] = [];
    for (let a = 0; a < this.#numSkills; a++) {
      for (const b of this.edges.broader[a] ?? []) broader.push([a, b]);
      for (const b of this.edges.essential[a] ?? []) if (a < b) essential.push([a, b]);
      for (const b of this.edges.optional[a] ?? []) if (a < b) optional.push([a, b]);
    }
    return { numSkills: this.#numSkills, broader, essential, optional };
  }

  /**
   * The inverse of `toJSON`. `source` names where the value came from (e.g. the file path) and
   * starts every error message.
   */
  static fromJSON(value: unknown, source: string): SkillGraph {
    const layout = '{"numSkills": N, "broader": [[skill, broader], …], "essential": [[a, b], …], "optional": [[a, b], …]}';
    const fail = (reason: string): never => {
      throw new Error(`${source}: not a skill graph: ${reason}; expected ${layout} as written by SkillGraph.toJSON()`);
    };
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(`the value is ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`);
    const record = value as Record<string, unknown>;
    const known = ['numSkills', ...EDGE_RELATIONS];
    const unknown = Object.keys(record).filter((k) => !known.includes(k));
    if (unknown.length > 0) fail(`unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}`);
    const numSkills = record.numSkills;
    if (typeof numSkills !== 'number' || !Number.isInteger(numSkills) || numSkills < 0) return fail(`numSkills is ${JSON.stringify(numSkills)}; expected a non-negative integer`);
    const edges: SkillEdge[] = [];
    for (const relation of EDGE_RELATIONS) {
      const pairs = record[relation];
      if (!Array.isArray(pairs)) return fail(`"${relation}" is ${JSON.stringify(pairs)}; expected an array of [from, to] pairs`);
      pairs.forEach((pair: unknown, i) => {
        if (!Array.isArray(pair) || pair.length !== 2 || !isSkillIndex(pair[0], numSkills) || !isSkillIndex(pair[1], numSkills)) {
          fail(`${relation}[${i}] is ${JSON.stringify(pair)}; expected a pair of skill indices in [0, ${numSkills})`);
        }
        const [from, to] = pair as [number, number];
        edges.push({ from, to, relation });
      });
    }
    return new SkillGraph(numSkills, edges);
  }
}

/**
 * The skill graph of ESCO v1.1.1 over `skills` (as returned by `loadEscoConcepts(ctx,
 * 'skills')`; indices into it are the node ids). Rows with an empty or unexpected value are bad
 * rows (`file:line: reason`, thrown or counted per `ctx.onBadRow`). Rows that are not skill →
 * skill edges are skipped and counted, not errors: `groupRows` (a SkillGroup on either side of
 * a broader relation: ESCO's grouping hierarchy), `unknownUris` (a URI not in `skills`, which
 * the consistent ESCO release never has, but a trimmed skills list can), `selfLoops` (a skill
 * related to itself: one optional row in v1.1.1).
 *
 * @example
 * ```ts
 * const ctx = createContext({ dataRoot: '/data' });
 * const skills = await loadEscoConcepts(ctx, 'skills');
 * const { graph } = await loadSkillGraph(ctx, skills);
 * const haskell = skills.findIndex((s) => s.preferredLabel === 'Haskell');
 * graph.neighbours(haskell, 'broader').map((i) => skills[i]?.preferredLabel); // ['computer programming']
 * ```
 */
export async function loadSkillGraph(
  ctx: RecipeContext,
  skills: readonly EscoConcept[],
): Promise<{ graph: SkillGraph; skipped: { groupRows: number; unknownUris: number; selfLoops: number } }> {
  requireFiles(ctx, 'esco', [SKILL_GRAPH_FILES.broader, SKILL_GRAPH_FILES.related]);
  const index = new Map<string, number>();
  skills.forEach((s, i) => index.set(s.uri, i));
  const skipped = { groupRows: 0, unknownUris: 0, selfLoops: 0 };
  const edges: SkillEdge[] = [];
  const add = (fromUri: string, toUri: string, relation: SkillEdge['relation']): void => {
    const from = index.get(fromUri);
    const to = index.get(toUri);
    if (from === undefined || to === undefined) skipped.unknownUris++;
    else if (from === to) skipped.selfLoops++;
    else edges.push({ from, to, relation });
  };

  // ESCO's two concept types in the skill pillar; anything else means a different file layout.
  const SKILL = 'KnowledgeSkillCompetence';
  const GROUP = 'SkillGroup';
  await forEachRow(
    ctx,
    readCsv(ctx.dataRoot, SKILL_GRAPH_FILES.broader, { required: ['conceptType', 'conceptUri', 'broaderType', 'broaderUri'] }),
    (row) => {
      const types = [row.text('conceptType'), row.text('broaderType')];
      for (const [column, type] of [['conceptType', types[0]], ['broaderType', types[1]]] as const) {
        if (type !== SKILL && type !== GROUP) throw row.error(`column "${column}" is ${JSON.stringify(type)}; expected ${SKILL} or ${GROUP}`);
      }
      const conceptUri = row.text('conceptUri');
      const broaderUri = row.text('broaderUri');
      if (types[0] === SKILL && types[1] === SKILL) add(conceptUri, broaderUri, 'broader');
      else skipped.groupRows++;
    },
  );

  await forEachRow(
    ctx,
    readCsv(ctx.dataRoot, SKILL_GRAPH_FILES.related, { required: ['originalSkillUri', 'relationType', 'relatedSkillUri'] }),
    (row) => {
      const relation = row.text('relationType');
      if (relation !== 'essential' && relation !== 'optional') throw row.error(`column "relationType" is ${JSON.stringify(relation)}; expected essential or optional`);
      add(row.text('originalSkillUri'), row.text('relatedSkillUri'), relation);
    },
  );

  return { graph: new SkillGraph(skills.length, edges), skipped };
}

export interface ExpansionOptions {
  /** Multiplier on the source skill's score per relation. */
  decay: Readonly<Record<SkillRelation, number>>;
  /** At most this many expanded skills per source skill. */
  maxPerSkill: number;
  /** Drop expanded skills whose score falls below this. */
  minScore: number;
}

/**
 * Default decays, strongest to weakest by how much the found skill implies the neighbour:
 * - broader 0.5: ESCO's broader relation is "is a kind of", so someone who knows Haskell knows
 *   computer programming — the surest inference, but still only inferred, hence half;
 * - essential 0.4: the two skills go together by definition (one requires the other), but
 *   taken symmetrically the requirement is only guaranteed in one direction;
 * - narrower 0.3: knowing computer programming suggests, but does not imply, any one
 *   language: a general skill has many specialisations (up to 271 in v1.1.1);
 * - optional 0.2: "may use", the weakest link.
 * All are below 1, so an expanded skill always ranks below the skill it came from.
 * maxPerSkill 5: 95% of skills have at most 5 neighbours in all, so the cap only bites on broad
 * skills such as "advise others" (271 narrower), which would otherwise flood the list.
 * minScore 0 keeps everything; callers with calibrated scores raise it.
 */
export const DEFAULT_EXPANSION: ExpansionOptions = Object.freeze({
  decay: Object.freeze({ broader: 0.5, narrower: 0.3, essential: 0.4, optional: 0.2 }),
  maxPerSkill: 5,
  minScore: 0,
});

export interface ExpandedSkill {
  skill: number;
  score: number;
  /** The found skill it came from, and how. */
  from: number;
  relation: SkillRelation;
}

function checkOptions(options: ExpansionOptions): void {
  for (const relation of SKILL_RELATIONS) {
    const d = options.decay[relation];
    if (typeof d !== 'number' || !Number.isFinite(d) || d < 0) {
      throw new RangeError(`expandSkills: decay.${relation} is ${JSON.stringify(d)}; expected a finite number ≥ 0 for each of ${SKILL_RELATIONS.join(', ')}`);
    }
  }
  const { maxPerSkill, minScore } = options;
  if (!(Number.isInteger(maxPerSkill) && maxPerSkill >= 0) && maxPerSkill !== Infinity) {
    throw new RangeError(`expandSkills: maxPerSkill is ${maxPerSkill}; expected a non-negative integer (or Infinity for no cap)`);
  }
  if (typeof minScore !== 'number' || Number.isNaN(minScore)) throw new RangeError(`expandSkills: minScore is ${minScore}; expected a number`);
}

/**
 * One hop from the found skills (skill index → score). A skill already found is never added as
 * expanded; when several found skills reach the same skill, the highest score is kept (ties:
 * lower `from` index). Within one source, neighbours are taken by relation order broader,
 * narrower, essential, optional, then index, up to `maxPerSkill`; found skills and skills below
 * `minScore` are passed over before the cap, so they do not use up a source's share. A
 * neighbour one source reaches by several relations counts once, by the relation giving the
 * highest score (ties: earlier in that order). Output sorted by score descending, then skill
 * index ascending. Deterministic: the result does not depend on the map's insertion order.
 *
 * @example
 * ```ts
 * const graph = new SkillGraph(3, [{ from: 0, to: 1, relation: 'broader' }, { from: 1, to: 2, relation: 'optional' }]);
 * expandSkills(new Map([[0, 0.8]]), graph);
 * // [{ skill: 1, score: 0.4, from: 0, relation: 'broader' }]   (0.5 × 0.8; one hop only)
 * ```
 */
export function expandSkills(found: ReadonlyMap<number, number>, graph: SkillGraph, options: ExpansionOptions = DEFAULT_EXPANSION): ExpandedSkill[] {
  checkOptions(options);
  // Sources in index order, so that equal scores resolve to the lower `from` by "first wins".
  const sources = [...found].sort((a, b) => a[0] - b[0]);
  for (const [skill, score] of sources) {
    if (!isSkillIndex(skill, graph.numSkills)) throw new RangeError(`expandSkills: found skill ${skill} is not a skill index in [0, ${graph.numSkills})`);
    if (!Number.isFinite(score)) throw new RangeError(`expandSkills: found skill ${skill} has score ${score}; expected a finite number`);
  }

  const best = new Map<number, ExpandedSkill>();
  for (const [from, sourceScore] of sources) {
    // This source's candidates: one per neighbour, with its best relation.
    const candidates = new Map<number, { relation: SkillRelation; rank: number; score: number }>();
    SKILL_RELATIONS.forEach((relation, rank) => {
      const score = options.decay[relation] * sourceScore;
      for (const skill of graph.neighbours(from, relation)) {
        if (found.has(skill) || score < options.minScore) continue;
        const seen = candidates.get(skill);
        if (seen === undefined || score > seen.score) candidates.set(skill, { relation, rank, score });
      }
    });
    const taken = [...candidates]
      .sort((a, b) => a[1].rank - b[1].rank || a[0] - b[0])
      .slice(0, options.maxPerSkill);
    for (const [skill, { relation, score }] of taken) {
      const seen = best.get(skill);
      // Strictly greater: on a tie the earlier (lower-index) source stays.
      if (seen === undefined || score > seen.score) best.set(skill, { skill, score, from, relation });
    }
  }
  return [...best.values()].sort((a, b) => b.score - a.score || a.skill - b.skill);
}
