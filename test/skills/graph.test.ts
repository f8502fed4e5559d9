/**
 * The ESCO skills graph and one-hop skill expansion: hand-made graphs with exact expected
 * expansions, the JSON form, the loader's row handling on tiny files, and the real ESCO v1.1.1
 * graph. The real counts were recomputed independently with Python's csv module:
 * broaderRelationsSkillPillar.csv has 20,656 rows, of which 6,565 are skill → skill (5,031
 * skills have a broader skill, 2,313 a narrower one) and 14,091 involve a SkillGroup;
 * skillSkillRelations.csv has 5,899 rows: 191 essential and 5,707 optional pairs (no pair
 * listed twice or in both directions) and one optional self loop ("measure water depth", line
 * 4645). No URI in either file is missing from skills_en.csv.
 */
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import type { EscoConcept } from '../../src/data/esco.js';
import { loadEscoConcepts } from '../../src/data/esco.js';
import { createContext } from '../../src/data/files.js';
import { DataError } from '../../src/data/types.js';
import { DEFAULT_EXPANSION, SkillGraph, expandSkills, loadSkillGraph, type ExpansionOptions } from '../../src/skills/graph.js';
import { DATA_ROOT, tempRoot } from '../data/root.js';

// 0 → broader 1; 2 → broader 0; 0 essential 3; 4 optional 0 (given in the 4 → 0 direction);
// 1 optional 5. Skills 6 and 7 are isolated.
function smallGraph(): SkillGraph {
  return new SkillGraph(8, [
    { from: 0, to: 1, relation: 'broader' },
    { from: 2, to: 0, relation: 'broader' },
    { from: 0, to: 3, relation: 'essential' },
    { from: 4, to: 0, relation: 'optional' },
    { from: 1, to: 5, relation: 'optional' },
  ]);
}

const withOptions = (overrides: Partial<ExpansionOptions>): ExpansionOptions => ({ ...DEFAULT_EXPANSION, ...overrides });

describe('SkillGraph', () => {
  it('derives narrower as the inverse of broader and makes related edges symmetric', () => {
    const g = smallGraph();
    expect(g.numSkills).toBe(8);
    expect(g.neighbours(0, 'broader')).toEqual([1]);
    expect(g.neighbours(1, 'narrower')).toEqual([0]);
    expect(g.neighbours(0, 'narrower')).toEqual([2]);
    expect(g.neighbours(2, 'broader')).toEqual([0]);
    expect(g.neighbours(1, 'broader')).toEqual([]);
    expect(g.neighbours(0, 'essential')).toEqual([3]);
    expect(g.neighbours(3, 'essential')).toEqual([0]);
    expect(g.neighbours(0, 'optional')).toEqual([4]);
    expect(g.neighbours(4, 'optional')).toEqual([0]);
    expect(g.neighbours(5, 'optional')).toEqual([1]);
    expect(g.neighbours(6, 'optional')).toEqual([]);
    expect(g.edgeCounts()).toEqual({ broader: 2, essential: 1, optional: 2 });
  });

  it('sorts neighbours, merges repeated edges and drops self loops', () => {
    const g = new SkillGraph(4, [
      { from: 0, to: 3, relation: 'optional' },
      { from: 0, to: 1, relation: 'optional' },
      { from: 1, to: 0, relation: 'optional' }, // the same pair, other direction
      { from: 0, to: 0, relation: 'optional' },
      { from: 2, to: 0, relation: 'optional' },
      { from: 2, to: 2, relation: 'broader' },
    ]);
    expect(g.neighbours(0, 'optional')).toEqual([1, 2, 3]);
    expect(g.neighbours(2, 'broader')).toEqual([]);
    expect(g.neighbours(2, 'narrower')).toEqual([]);
    expect(Object.isFrozen(g.neighbours(0, 'optional'))).toBe(true);
  });

  it('rejects edges and lookups outside the skill range', () => {
    expect(() => new SkillGraph(2, [{ from: 0, to: 2, relation: 'broader' }])).toThrow(/edge 0 .*expected from and to to be skill indices in \[0, 2\)/);
    expect(() => smallGraph().neighbours(8, 'broader')).toThrow(/skill 8 .*\[0, 8\)/);
  });

  it('round-trips through JSON', () => {
    const g = smallGraph();
    const json = g.toJSON();
    expect(json).toEqual({
      numSkills: 8,
      broader: [
        [0, 1],
        [2, 0],
      ],
      essential: [[0, 3]],
      optional: [
        [0, 4],
        [1, 5],
      ],
    });
    const back = SkillGraph.fromJSON(JSON.parse(JSON.stringify(g)), 'model/skill-graph.json');
    expect(back.edges).toEqual(g.edges);
    expect(back.toJSON()).toEqual(json);
  });

  it('names the source when the JSON is malformed', () => {
    const ok = { numSkills: 3, broader: [[0, 1]], essential: [], optional: [] };
    expect(() => SkillGraph.fromJSON({ ...ok, broader: [[0, 5]] }, 'model/skill-graph.json')).toThrow(
      /^model\/skill-graph\.json: not a skill graph: broader\[0\] is \[0,5\]; expected a pair of skill indices in \[0, 3\)/,
    );
    expect(() => SkillGraph.fromJSON([1, 2], 'm.json')).toThrow(/^m\.json: not a skill graph: the value is an array; expected \{"numSkills"/);
    expect(() => SkillGraph.fromJSON({ ...ok, numSkills: -1 }, 'm.json')).toThrow(/numSkills is -1; expected a non-negative integer/);
    expect(() => SkillGraph.fromJSON({ ...ok, optional: undefined }, 'm.json')).toThrow(/"optional" is undefined; expected an array/);
    expect(() => SkillGraph.fromJSON({ ...ok, related: [] }, 'm.json')).toThrow(/unknown key "related"/);
  });
});

describe('expandSkills', () => {
  it('applies decay[relation] × score over one hop', () => {
    expect(expandSkills(new Map([[0, 0.8]]), smallGraph())).toEqual([
      { skill: 1, score: 0.5 * 0.8, from: 0, relation: 'broader' },
      { skill: 3, score: 0.4 * 0.8, from: 0, relation: 'essential' },
      { skill: 2, score: 0.3 * 0.8, from: 0, relation: 'narrower' },
      { skill: 4, score: 0.2 * 0.8, from: 0, relation: 'optional' },
    ]);
    // Skill 5 is two hops away (0 → 1 → 5): not reached.
  });

  it('caps each source at maxPerSkill, taking relations in order broader, narrower, essential, optional', () => {
    // Essential 3 scores above narrower 2, but narrower comes first in the relation order.
    expect(expandSkills(new Map([[0, 0.8]]), smallGraph(), withOptions({ maxPerSkill: 2 }))).toEqual([
      { skill: 1, score: 0.4, from: 0, relation: 'broader' },
      { skill: 2, score: 0.3 * 0.8, from: 0, relation: 'narrower' },
    ]);
    expect(expandSkills(new Map([[0, 0.8]]), smallGraph(), withOptions({ maxPerSkill: 0 }))).toEqual([]);
    // Within a relation, lower indices first.
    const star = new SkillGraph(5, [1, 2, 3, 4].map((to) => ({ from: 0, to, relation: 'optional' as const })));
    expect(expandSkills(new Map([[0, 1]]), star, withOptions({ maxPerSkill: 2 })).map((e) => e.skill)).toEqual([1, 2]);
  });

  it('never re-adds a found skill, and found skills do not use up the cap', () => {
    const found = new Map([
      [0, 0.8],
      [1, 0.9],
    ]);
    expect(expandSkills(found, smallGraph(), withOptions({ maxPerSkill: 1 }))).toEqual([
      // 0's broader neighbour 1 is found, so its one slot goes to narrower 2.
      { skill: 2, score: 0.3 * 0.8, from: 0, relation: 'narrower' },
      // 1's narrower neighbour 0 is found, so its slot goes to optional 5.
      { skill: 5, score: 0.2 * 0.9, from: 1, relation: 'optional' },
    ]);
  });

  it('keeps the highest score when several found skills reach a skill; ties go to the lower source index', () => {
    const g = smallGraph();
    // 2 reaches 0 as broader (0.5 × 0.5 = 0.25); 4 reaches 0 as optional (0.2 × 0.9 = 0.18).
    const max = expandSkills(
      new Map([
        [4, 0.9],
        [2, 0.5],
      ]),
      g,
      withOptions({ maxPerSkill: 1 }),
    );
    expect(max).toEqual([{ skill: 0, score: 0.25, from: 2, relation: 'broader' }]);
    // Equal scores (0.5 × 0.4 = 0.2 × 1.0 = 0.2), whatever the map's insertion order.
    for (const order of [
      [
        [4, 1.0],
        [2, 0.4],
      ],
      [
        [2, 0.4],
        [4, 1.0],
      ],
    ] as [number, number][][]) {
      expect(expandSkills(new Map(order), g, withOptions({ maxPerSkill: 1 }))).toEqual([{ skill: 0, score: 0.2, from: 2, relation: 'broader' }]);
    }
  });

  it('counts a neighbour reached by several relations once, by its best relation', () => {
    const g = new SkillGraph(2, [
      { from: 0, to: 1, relation: 'optional' },
      { from: 0, to: 1, relation: 'essential' },
    ]);
    expect(expandSkills(new Map([[0, 1]]), g)).toEqual([{ skill: 1, score: 0.4, from: 0, relation: 'essential' }]);
  });

  it('drops scores below minScore and sorts ties by skill index', () => {
    expect(expandSkills(new Map([[0, 0.8]]), smallGraph(), withOptions({ minScore: 0.2 })).map((e) => e.skill)).toEqual([1, 3, 2]);
    const flat = withOptions({ decay: { broader: 0.5, narrower: 0.5, essential: 0.5, optional: 0.5 } });
    expect(expandSkills(new Map([[0, 1]]), smallGraph(), flat).map((e) => [e.skill, e.score])).toEqual([
      [1, 0.5],
      [2, 0.5],
      [3, 0.5],
      [4, 0.5],
    ]);
  });

  it('rejects bad options and unknown found skills', () => {
    const g = smallGraph();
    expect(() => expandSkills(new Map([[0, 1]]), g, withOptions({ decay: { ...DEFAULT_EXPANSION.decay, optional: -1 } }))).toThrow(/decay\.optional is -1/);
    expect(() => expandSkills(new Map([[0, 1]]), g, withOptions({ maxPerSkill: 1.5 }))).toThrow(/maxPerSkill is 1\.5/);
    expect(() => expandSkills(new Map([[9, 1]]), g)).toThrow(/found skill 9 is not a skill index in \[0, 8\)/);
    expect(() => expandSkills(new Map([[0, Number.NaN]]), g)).toThrow(/found skill 0 has score NaN/);
    expect(expandSkills(new Map(), g)).toEqual([]);
  });
});

describe('loadSkillGraph on small files', () => {
  const uri = (n: number): string => `http://data.europa.eu/esco/skill/s${n}`;
  const skills: EscoConcept[] = [0, 1, 2].map((n) => ({ uri: uri(n), preferredLabel: `skill ${n}`, altLabels: [], hiddenLabels: [], description: '', source: `x:${n + 2}` }));
  const KSC = 'KnowledgeSkillCompetence';
  const broader = [
    'conceptType,conceptUri,broaderType,broaderUri',
    `${KSC},${uri(0)},${KSC},${uri(1)}`,
    `${KSC},${uri(2)},SkillGroup,http://data.europa.eu/esco/isced-f/00`,
    `${KSC},${uri(9)},${KSC},${uri(1)}`,
    `Occupation,${uri(2)},${KSC},${uri(1)}`, // line 5: bad
  ].join('\n');
  const related = [
    'originalSkillUri,originalSkillType,relationType,relatedSkillType,relatedSkillUri',
    `${uri(2)},knowledge,optional,knowledge,${uri(0)}`,
    `${uri(1)},knowledge,essential,knowledge,${uri(1)}`,
    `${uri(1)},knowledge,required,knowledge,${uri(2)}`, // line 4: bad
  ].join('\n');
  const root = tempRoot({ 'esco-v1.1.1/broaderRelationsSkillPillar.csv': broader, 'esco-v1.1.1/skillSkillRelations.csv': related });

  it('keeps skill → skill edges, counts what it skips, and reports bad rows as file:line', async () => {
    const ctx = createContext({ dataRoot: root, onBadRow: 'skip' });
    const { graph, skipped } = await loadSkillGraph(ctx, skills);
    expect(graph.toJSON()).toEqual({ numSkills: 3, broader: [[0, 1]], essential: [], optional: [[0, 2]] });
    expect(skipped).toEqual({ groupRows: 1, unknownUris: 1, selfLoops: 1 });
    expect(ctx.report.messages()).toEqual([
      `${join(root, 'esco-v1.1.1/broaderRelationsSkillPillar.csv')}:5: column "conceptType" is "Occupation"; expected KnowledgeSkillCompetence or SkillGroup`,
      `${join(root, 'esco-v1.1.1/skillSkillRelations.csv')}:4: column "relationType" is "required"; expected essential or optional`,
    ]);
    const strict = createContext({ dataRoot: root, onBadRow: 'fail' });
    await expect(loadSkillGraph(strict, skills)).rejects.toThrow(DataError);
  });

  it('names the missing file and where to download it', async () => {
    await expect(loadSkillGraph(createContext({ dataRoot: tempRoot() }), skills)).rejects.toThrow(/broaderRelationsSkillPillar\.csv[\s\S]*esco\.ec\.europa\.eu/);
  });
});

describe('the ESCO v1.1.1 skills graph', () => {
  it('has 6,565 broader, 191 essential and 5,707 optional skill → skill edges', async () => {
    const ctx = createContext({ dataRoot: DATA_ROOT, onBadRow: 'fail' });
    const skills = await loadEscoConcepts(ctx, 'skills');
    const { graph, skipped } = await loadSkillGraph(ctx, skills);
    expect(ctx.report.total).toBe(0);
    expect(graph.numSkills).toBe(13896);
    expect(skipped).toEqual({ groupRows: 14091, unknownUris: 0, selfLoops: 1 });
    expect(graph.edgeCounts()).toEqual({ broader: 6565, essential: 191, optional: 5707 });
    const count = (relation: 'broader' | 'narrower', min = 1): number => graph.edges[relation].filter((l) => l.length >= min).length;
    expect(count('broader')).toBe(5031);
    expect(count('narrower')).toBe(2313);
    expect(graph.edges.narrower.reduce((n, l) => n + l.length, 0)).toBe(6565);

    const label = (i: number): string => skills[i]?.preferredLabel ?? '?';
    const find = (name: string): number => skills.findIndex((s) => s.preferredLabel === name);
    const haskell = find('Haskell');
    expect(graph.neighbours(haskell, 'broader').map(label)).toEqual(['computer programming']);
    expect(graph.neighbours(find('computer programming'), 'narrower')).toContain(haskell);
    expect(graph.neighbours(find('advise others'), 'narrower').length).toBe(271);
    // skillSkillRelations.csv: "identify statistical patterns" essential → "manage quantitative data", kept both ways.
    expect(graph.neighbours(find('identify statistical patterns'), 'essential').map(label)).toContain('manage quantitative data');
    expect(graph.neighbours(find('manage quantitative data'), 'essential').map(label)).toContain('identify statistical patterns');

    const expanded = expandSkills(new Map([[haskell, 1]]), graph);
    expect(expanded[0]).toEqual({ skill: find('computer programming'), score: 0.5, from: haskell, relation: 'broader' });

    // The saved form reloads to the same graph.
    expect(SkillGraph.fromJSON(JSON.parse(JSON.stringify(graph)), 'skill-graph.json').edges).toEqual(graph.edges);
  });
});
