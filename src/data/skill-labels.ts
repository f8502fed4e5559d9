/**
 * The labels the taxonomy trie (./skill-trie.ts) indexes: every ESCO skill's preferred and
 * alternative labels, then the Stack Overflow tag synonyms of tags that name an ESCO skill.
 *
 * Stack Overflow (stackoverflow-tags/TagSynonyms.csv, Stack Exchange data dump, CC BY-SA 4.0)
 * merges a synonym tag into a target tag ("js" → "javascript", "c-sharp" → "c#"). A target whose
 * words (hyphens as spaces) have the normal form of an ESCO label names that label's skills, and
 * each of its synonyms becomes one more label of those skills. Targets that name no ESCO skill
 * ("winforms") add nothing: the trie tags ESCO skills only.
 */
import { ESCO_FILES, loadEscoConcepts, type EscoConcept } from './esco.js';
import { forEachRow, readCsv, requireFiles } from './files.js';
import { normaliseTokens, SkillTrie, type TrieLabel } from './skill-trie.js';
import type { RecipeContext } from './types.js';

export const STACKOVERFLOW_SYNONYMS = 'stackoverflow-tags/TagSynonyms.csv';

/** The normal form of a whole label: its normalised words joined by spaces. */
export function labelKey(text: string): string {
  return normaliseTokens(text)
    .map((t) => t.token)
    .join(' ');
}

/** ESCO labels first (preferred before alternative, so a shared normal form keeps the preferred spelling). */
export function escoTrieLabels(skills: readonly EscoConcept[]): TrieLabel[] {
  const labels: TrieLabel[] = skills.map((s, i) => ({ text: s.preferredLabel, skills: [i], source: 'preferred' }));
  skills.forEach((s, i) => {
    for (const alt of s.altLabels) labels.push({ text: alt, skills: [i], source: 'alt' });
  });
  return labels;
}

/** Stack Overflow synonyms of tags that name ESCO skills, as labels of those skills. */
export async function stackOverflowTrieLabels(ctx: RecipeContext, escoLabels: readonly TrieLabel[]): Promise<TrieLabel[]> {
  requireFiles(ctx, 'stackoverflow-tags', [STACKOVERFLOW_SYNONYMS]);
  const skillsByKey = new Map<string, number[]>();
  for (const label of escoLabels) {
    const key = labelKey(label.text);
    const known = skillsByKey.get(key);
    if (known === undefined) skillsByKey.set(key, [...label.skills]);
    else for (const s of label.skills) if (!known.includes(s)) known.push(s);
  }
  const out: TrieLabel[] = [];
  await forEachRow(ctx, readCsv(ctx.dataRoot, STACKOVERFLOW_SYNONYMS, { required: ['SourceTagName', 'TargetTagName'] }), (row) => {
    const target = row.text('TargetTagName').replace(/-/g, ' ');
    const skills = skillsByKey.get(labelKey(target));
    if (skills === undefined) return;
    out.push({ text: row.text('SourceTagName').replace(/-/g, ' '), skills, source: 'stackoverflow' });
  });
  return out;
}

/** The trie over ESCO skills (in skills_en.csv order) and Stack Overflow synonyms, with the skills it indexes. */
export async function buildTaxonomyTrie(ctx: RecipeContext): Promise<{ trie: SkillTrie; skills: readonly EscoConcept[] }> {
  requireFiles(ctx, 'esco', [ESCO_FILES.skills]);
  const skills = await loadEscoConcepts(ctx, 'skills');
  const esco = escoTrieLabels(skills);
  const stackOverflow = await stackOverflowTrieLabels(ctx, esco);
  return { trie: SkillTrie.build([...esco, ...stackOverflow]), skills };
}
