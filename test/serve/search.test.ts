/**
 * Search indexes (`kiln index build`, src/serve/search-index.ts) and `POST /search`
 * (src/serve/server.ts), end to end on the tiny exported two-tower model of
 * test/helpers/exported-model.ts and a small ESCO-like skills CSV written here.
 *
 * Every ranking the service returns is checked against one computed independently in the test:
 * dense by brute force (the query through `ExportedModel.embed`, dot products with the vectors in
 * vectors.arrow, sorted in float64 with ties to the lower index), lexical with a fresh
 * `LexicalRanker` over the documents as this file wrote them, hybrid with `fuse` over those two
 * lists, and one RRF score by hand. Then the build's bookkeeping: the manifest, reuse on
 * rebuild, atomic replacement on failure, the HNSW path, a model mismatch, and the CLI.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DataError } from '../../src/data/types.js';
import { fuse, type HybridOptions } from '../../src/eval/fusion.js';
import { LexicalRanker, type Candidates, type LexicalSettings } from '../../src/eval/lexical.js';
import { readEmbeddings } from '../../src/serve/arrow-io.js';
import { EmbedError } from '../../src/serve/embed.js';
import { ExportedModel } from '../../src/serve/exported-model.js';
import { buildSearchIndex, INDEX_FORMAT, INDEX_FORMAT_VERSION, SearchIndex, type BuildIndexOptions, type BuildIndexSummary, type IndexDocument, type SearchIndexManifest } from '../../src/serve/search-index.js';
import { buildServer, startServer } from '../../src/serve/server.js';
import { KILN_VERSION } from '../../src/version.js';
import { DATA_ROOT } from '../data/root.js';
import { exportedTinyModels, exportRunTo, tinyRun } from '../helpers/exported-model.js';
import { REPO_ROOT } from '../helpers/python.js';

// --- the corpus ----------------------------------------------------------------------------------

/** ESCO-like skills: an id, the preferred label (what the model embeds) and alternative labels. */
const SKILLS: ReadonlyArray<{ id: string; label: string; alt: string[] }> = [
  { id: 'S01', label: 'develop software prototypes', alt: ['create software prototypes', 'build software prototype'] },
  { id: 'S02', label: 'manage databases', alt: ['administer databases', 'database management'] },
  { id: 'S03', label: 'use spreadsheets software', alt: ['work with spreadsheets', 'use Excel'] },
  { id: 'S04', label: 'perform data analysis', alt: ['analyse data', 'data analytics'] },
  { id: 'S05', label: 'write technical documentation', alt: ['create technical documentation', 'produce user manuals'] },
  { id: 'S06', label: 'operate forklift', alt: ['drive forklift', 'forklift operation'] },
  { id: 'S07', label: 'prepare financial statements', alt: ['draw up financial statements', 'compile financial reports'] },
  { id: 'S08', label: 'provide customer service', alt: ['deliver customer service', 'assist customers'] },
  { id: 'S09', label: 'cook pasta', alt: ['prepare pasta', 'make pasta dishes'] },
  { id: 'S10', label: 'maintain electrical equipment', alt: ['repair electrical equipment', 'service electrical machinery'] },
  { id: 'S11', label: 'teach mathematics', alt: ['instruct in mathematics', 'maths teaching'] },
  { id: 'S12', label: 'manage projects', alt: ['project management', 'coordinate projects'] },
  { id: 'S13', label: 'negotiate contracts', alt: ['contract negotiation', 'agree contract terms'] },
  { id: 'S14', label: 'install plumbing systems', alt: ['fit plumbing', 'lay water pipes'] },
  { id: 'S15', label: 'administer medication', alt: ['give medication', 'dispense medicines'] },
  // Labels with surrounding spaces and an empty line inside the cell: trimmed and dropped.
  { id: 'S16', label: 'design user interfaces', alt: ['UI design', 'create user interfaces'] },
  { id: 'S17', label: 'Python (computer programming)', alt: [] },
  { id: 'S18', label: 'develop machine learning models', alt: ['build ML models', 'train machine learning models'] },
  { id: 'S19', label: 'perform bookkeeping', alt: ['keep books', 'record financial transactions'] },
  { id: 'S20', label: 'drive heavy goods vehicles', alt: ['drive trucks', 'drive lorries'] },
  { id: 'S21', label: 'clean rooms', alt: ['housekeeping', 'clean guest rooms'] },
  { id: 'S22', label: 'translate texts', alt: ['translate documents', 'perform translation'] },
  { id: 'S23', label: 'conduct job interviews', alt: ['interview candidates', 'recruit staff'] },
  { id: 'S24', label: 'weld metal parts', alt: ['perform welding', 'join metal by welding'] },
  { id: 'S25', label: 'monitor network performance', alt: ['supervise network', 'network monitoring'] },
  // A comma and double quotes inside quoted fields.
  { id: 'S26', label: 'sell products', alt: ['retail sales', 'sell goods, wares and services to customers'] },
  { id: 'S27', label: 'plan "omnichannel" marketing campaigns', alt: ['organise marketing campaigns', 'design advertising campaigns'] },
  { id: 'S28', label: 'care for elderly people', alt: ['provide elderly care', 'support older adults'] },
  { id: 'S29', label: 'write SQL queries', alt: ['query databases with SQL', 'use SQL'] },
  { id: 'S30', label: 'apply first aid', alt: ['give first aid', 'provide emergency first aid'] },
];
const N = SKILLS.length;

const LEXICAL: LexicalSettings = { fields: ['text', 'labels'], match: 'best' };
// Not the defaults, so the manifest and the hand-computed RRF score can tell them apart.
const HYBRID: HybridOptions = { lexical: 'tfidf_char', method: 'rrf', weight: 0.7, k: 20, window: 10 };
const FIELDS = { idField: 'id', textField: 'label', labelsField: 'alt' } as const;

function csvCell(value: string): string {
  return /[",\n\r]/.test(value) || value !== value.trim() ? `"${value.replaceAll('"', '""')}"` : value;
}

/** The CSV, with two bad rows among the good ones, and the 1-based line each bad row starts on. */
function skillsCsv(skills: typeof SKILLS): { text: string; badLines: number[] } {
  const lines = ['id,label,alt'];
  const badLines: number[] = [];
  const lineCount = (): number => lines.join('\n').split('\n').length;
  skills.forEach((s, i) => {
    if (i === 10) {
      badLines.push(lineCount() + 1);
      lines.push(`,"teach physics","instruct in physics\nphysics teaching"`); // empty id
    }
    if (i === 20) {
      badLines.push(lineCount() + 1);
      lines.push('S99,operate cranes'); // two fields
    }
    const alt = s.id === 'S16' ? `  ${s.alt[0]}  \n\n ${s.alt[1]}\n` : s.alt.join('\n');
    lines.push([s.id, s.label, alt].map(csvCell).join(','));
  });
  return { text: `${lines.join('\n')}\n`, badLines };
}

// --- helpers -------------------------------------------------------------------------------------

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');
const tempDir = (): string => mkdtempSync(join(tmpdir(), 'kiln-search-test-'));

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/** Every file under `dir`, by relative path, with its bytes. */
function snapshot(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.set(relative(dir, path), readFileSync(path));
    }
  };
  walk(dir);
  return out;
}

function readDocumentsJsonl(dir: string): IndexDocument[] {
  return readFileSync(join(dir, 'documents.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as IndexDocument);
}

const readManifest = (dir: string): SearchIndexManifest => JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as SearchIndexManifest;

interface SearchHit {
  id: string;
  text: string;
  score: number;
  rank: number;
  dense: { rank: number; score: number } | null;
  lexical: { rank: number; score: number } | null;
}
interface SearchReply {
  model: string;
  mode: string;
  results: SearchHit[];
}

// --- the suite -----------------------------------------------------------------------------------

describe('search index and POST /search', () => {
  let dirs: { twoTower: string; crossEncoder: string };
  let model: ExportedModel;
  let root: string;
  let corpus: string;
  let badLines: number[];
  let indexDir: string;
  let built: BuildIndexSummary;
  let badRows: string[];
  let index: SearchIndex;
  let app: FastifyInstance;
  /** The corpus vectors, read back from the index's vectors.arrow. */
  let vectors: Float32Array[];
  /** The documents in corpus order, as this file wrote them (the bad rows left out). */
  const expectedDocs: IndexDocument[] = SKILLS.map((s) => ({ id: s.id, text: s.label, labels: s.alt }));

  const build = async (options: Partial<BuildIndexOptions> & { out: string }): Promise<BuildIndexSummary> =>
    buildSearchIndex({ model, corpus, ...FIELDS, lexical: LEXICAL, hybrid: HYBRID, log: () => undefined, onBadRow: () => undefined, ...options });

  /** Brute-force dense ranking of the whole corpus: float64 dot products, best first, ties to the lower index. */
  async function bruteDense(query: string, inputType?: string): Promise<{ docs: number[]; scores: number[] }> {
    const [q] = await model.embed([query], { side: 'query', ...(inputType !== undefined ? { inputType } : {}) });
    const scores = vectors.map((v) => dot(q!, v));
    const docs = scores.map((_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
    return { docs, scores: docs.map((d) => scores[d]!) };
  }

  const asCandidates = (list: { docs: number[]; scores: number[] }, window: number): Candidates => ({
    docs: Int32Array.from(list.docs.slice(0, window)),
    scores: Float32Array.from(list.scores.slice(0, window)),
  });

  async function search(body: object, server: FastifyInstance = app): Promise<{ status: number; json: SearchReply & { message?: string } }> {
    const reply = await server.inject({ method: 'POST', url: '/search', payload: body });
    return { status: reply.statusCode, json: reply.json() };
  }

  beforeAll(async () => {
    dirs = await exportedTinyModels();
    model = await ExportedModel.load(dirs.twoTower, { threads: 1 });
    root = tempDir();
    const csv = skillsCsv(SKILLS);
    badLines = csv.badLines;
    corpus = join(root, 'skills.csv');
    writeFileSync(corpus, csv.text);
    indexDir = join(root, 'indexes', 'skills');
    badRows = [];
    built = await build({ out: indexDir, onBadRow: (e) => badRows.push(e.message) });
    index = await SearchIndex.load(indexDir, { threads: 1 });
    app = buildServer(model, { index, maxWaitMs: 0 });
    vectors = readEmbeddings(join(indexDir, 'vectors.arrow')).vectors;
  });

  afterAll(async () => {
    await app?.close();
    await index?.release();
    await model?.release();
  });

  it('builds an index whose manifest and documents.jsonl record the CSV corpus, its bad rows skipped', () => {
    const m = readManifest(indexDir);
    expect(built.manifest).toEqual(m);
    expect(built.out).toBe(resolve(indexDir));
    expect(m).toMatchObject({
      format: INDEX_FORMAT,
      formatVersion: INDEX_FORMAT_VERSION,
      kilnVersion: KILN_VERSION,
      modelId: model.modelId,
      dimension: model.dimension,
      docType: '',
      queryType: '',
      documents: N,
      corpus: { file: resolve(corpus), sha256: sha256(readFileSync(corpus)), rows: N + 2, skipped: 2 },
      lexical: LEXICAL,
      hybrid: HYBRID,
      annThreshold: 100_000,
      dense: { search: 'exact' },
      embedding: { reused: 0, deduplicated: 0, computed: N },
    });
    expect(model.dimension).toBe(32);
    expect(Date.parse(m.createdAt)).not.toBeNaN();
    expect(readdirSync(indexDir).sort()).toEqual(['documents.jsonl', 'index.json', 'vectors.arrow']);

    // The two bad rows, reported at the lines they start on (past the multi-line quoted cells).
    expect(badRows).toEqual([
      `${resolve(corpus)}:${badLines[0]}: column "id" is empty; expected an id`,
      `${resolve(corpus)}:${badLines[1]}: row has 2 fields; expected 3 (id, label, alt)`,
    ]);
    expect(badLines[0]).toBeGreaterThan(11); // the cells before it span several lines each

    // documents.jsonl: one row per good CSV row, in order, labels split from the newline cell.
    expect(readDocumentsJsonl(indexDir)).toEqual(expectedDocs);
    expect(expectedDocs.find((d) => d.id === 'S16')!.labels).toEqual(['UI design', 'create user interfaces']);
    expect(expectedDocs.find((d) => d.id === 'S26')!.labels).toEqual(['retail sales', 'sell goods, wares and services to customers']);

    // vectors.arrow lists the same documents in the same order, one vector each of the model's width.
    const file = readEmbeddings(join(indexDir, 'vectors.arrow'));
    expect(file.ids).toEqual(SKILLS.map((s) => s.id));
    expect(file.metadata).toMatchObject({ modelId: model.modelId, side: 'doc', inputType: '' });
    expect(file.vectors.every((v) => v.length === 32)).toBe(true);
  });

  it('mode dense returns the brute-force ranking of the vectors in vectors.arrow', async () => {
    for (const [query, k] of [['database administrator', undefined], ['truck driver', 3], ['python developer', 10]] as const) {
      const expected = await bruteDense(query);
      // The premise of comparing orders: no two of the top k + 1 are closer than float32 noise.
      const top = expected.scores.slice(0, 11);
      expect(Math.min(...top.slice(1).map((s, i) => top[i]! - s))).toBeGreaterThan(1e-6);
      const { status, json } = await search({ query, mode: 'dense', ...(k !== undefined ? { k } : {}) });
      expect(status).toBe(200);
      expect(json.model).toBe(model.modelId);
      expect(json.mode).toBe('dense');
      const size = k ?? 10;
      expect(json.results.map((r) => r.id)).toEqual(expected.docs.slice(0, size).map((d) => SKILLS[d]!.id));
      json.results.forEach((r, i) => {
        expect(r.score).toBeCloseTo(expected.scores[i]!, 5);
        expect(r.rank).toBe(i + 1);
        expect(r.text).toBe(SKILLS[expected.docs[i]!]!.label);
        expect(r.dense).toEqual({ rank: i + 1, score: r.score });
        expect(r.lexical).toBeNull();
      });
    }
  });

  it('mode dense with a prompt type embeds the query through that prompt', async () => {
    const query = 'data analyst';
    const withPrompt = await bruteDense(query, 'title');
    const plain = await bruteDense(query);
    expect(withPrompt.scores[0]).not.toBeCloseTo(plain.scores[0]!, 5);
    const { json } = await search({ query, mode: 'dense', k: 5, type: 'title' });
    expect(json.results.map((r) => r.id)).toEqual(withPrompt.docs.slice(0, 5).map((d) => SKILLS[d]!.id));
    json.results.forEach((r, i) => expect(r.score).toBeCloseTo(withPrompt.scores[i]!, 5));
  });

  it('mode lexical returns what a LexicalRanker over the documents returns', async () => {
    const ranker = new LexicalRanker(HYBRID.lexical, expectedDocs, LEXICAL);
    for (const [query, k] of [['database management', 10], ['drive a truck or a lorry', 4], ['SQL', 10], ['qzxv', 10]] as const) {
      const expected = ranker.candidates(query, HYBRID.window);
      const { status, json } = await search({ query, mode: 'lexical', k });
      expect(status).toBe(200);
      expect(json.mode).toBe('lexical');
      const size = Math.min(k, expected.docs.length);
      expect(json.results.map((r) => r.id)).toEqual(Array.from(expected.docs.subarray(0, size), (d) => SKILLS[d]!.id));
      json.results.forEach((r, i) => {
        expect(r.score).toBe(expected.scores[i]);
        expect(r.lexical).toEqual({ rank: i + 1, score: expected.scores[i] });
        expect(r.dense).toBeNull();
      });
      if (query === 'database management') {
        // An exact alt label wins: S02 lists "database management"; tf-idf cosine of equal strings is 1.
        expect(json.results[0]!.id).toBe('S02');
        expect(json.results[0]!.score).toBeCloseTo(1, 5);
      }
      if (query === 'qzxv') expect(json.results).toEqual([]); // nothing shares an n-gram: nothing retrieved
    }
  });

  it("mode hybrid returns fuse(dense top, lexical top) with each part's rank, and RRF scores as computed by hand", async () => {
    const ranker = new LexicalRanker(HYBRID.lexical, expectedDocs, LEXICAL);
    let sawOnlyOnePart = false;
    for (const query of ['manage database systems', 'drive trucks', 'teach maths']) {
      const dense = asCandidates(await bruteDense(query), HYBRID.window);
      const lexical = ranker.candidates(query, HYBRID.window);
      const fused = fuse(dense, lexical, HYBRID).slice(0, 10);
      const { status, json } = await search({ query }); // hybrid and k 10 by default
      expect(status).toBe(200);
      expect(json.mode).toBe('hybrid');
      expect(json.results.map((r) => r.id)).toEqual(fused.map((h) => SKILLS[h.doc]!.id));
      const denseIds = Array.from(dense.docs, (d) => SKILLS[d]!.id);
      const lexicalIds = Array.from(lexical.docs, (d) => SKILLS[d]!.id);
      json.results.forEach((r, i) => {
        expect(r.rank).toBe(i + 1);
        expect(r.score).toBeCloseTo(fused[i]!.score, 12);
        // Where each part ranked it, from the test's own lists; null where a part did not retrieve it.
        const dr = denseIds.indexOf(r.id) + 1;
        const lr = lexicalIds.indexOf(r.id) + 1;
        expect(r.dense?.rank ?? 0).toBe(dr);
        expect(r.lexical?.rank ?? 0).toBe(lr);
        if (dr > 0) expect(r.dense!.score).toBeCloseTo(dense.scores[dr - 1]!, 5);
        if (lr > 0) expect(r.lexical!.score).toBe(lexical.scores[lr - 1]);
        if (dr === 0 || lr === 0) sawOnlyOnePart = true;
        // w / (k + r_dense) + (1 − w) / (k + r_lex), a part that did not retrieve it adding 0.
        const byHand = (dr > 0 ? 0.7 / (20 + dr) : 0) + (lr > 0 ? 0.3 / (20 + lr) : 0);
        expect(r.score).toBeCloseTo(byHand, 12);
      });
      // The top hit of the first query was found by both parts: its score written out in full.
      if (query === 'manage database systems') {
        const best = json.results[0]!;
        expect(best.dense).not.toBeNull();
        expect(best.lexical).not.toBeNull();
        expect(best.score).toBeCloseTo(0.7 / (20 + denseIds.indexOf(best.id) + 1) + 0.3 / (20 + lexicalIds.indexOf(best.id) + 1), 12);
      }
    }
    expect(sawOnlyOnePart).toBe(true);
  });

  it('rejects bad /search bodies with 400 naming the field, and has no /search without an index', async () => {
    const cases: Array<[object, RegExp]> = [
      [{}, /^query: expected a non-empty string, got nothing$/],
      [{ query: '' }, /^query: expected a non-empty string, got an empty string$/],
      [{ query: 'nurse', k: 0 }, /^k: expected an integer from 1 to 10, got number 0$/],
      [{ query: 'nurse', k: 11 }, /^k: 11 exceeds the index's candidate window of 10; ask for at most 10$/],
      [{ query: 'nurse', k: 2.5 }, /^k: expected an integer from 1 to 10, got number 2.5$/],
      [{ query: 'nurse', mode: 'semantic' }, /^mode: expected "dense", "lexical" or "hybrid", got the string "semantic"$/],
      [{ query: 'nurse', type: 'occupation' }, /^type: "occupation" is not a prompt type of this model; expected one of "title" \(or omit type\)$/],
      [{ query: 'nurse', limit: 5 }, /^body: unknown field "limit"; expected query, k, mode, type$/],
    ];
    for (const [body, message] of cases) {
      const { status, json } = await search(body);
      expect(status, JSON.stringify(body)).toBe(400);
      expect(json.message, JSON.stringify(body)).toMatch(message);
    }
    const bare = buildServer(model, { maxWaitMs: 0 });
    try {
      const reply = await bare.inject({ method: 'POST', url: '/search', payload: { query: 'nurse' } });
      expect(reply.statusCode).toBe(404);
    } finally {
      await bare.close();
    }
  });

  it('sheds lexical queries beyond --max-queue with 503 and Retry-After, and answers the rest', async () => {
    const small = buildServer(model, { index, maxWaitMs: 0, maxQueue: 1 });
    try {
      const replies = await Promise.all(['python', 'welding'].map((query) => small.inject({ method: 'POST', url: '/search', payload: { query, mode: 'lexical' } })));
      expect(replies.map((r) => r.statusCode).sort()).toEqual([200, 503]);
      const shed = replies.find((r) => r.statusCode === 503)!;
      expect(shed.headers['retry-after']).toBe('1');
      expect(shed.json().message).toMatch(/^overloaded: 1 lexical queries are queued \(limit 1, --max-queue\)/);
    } finally {
      await small.close();
    }
  });

  it('reuses every vector on a rebuild into the same --out, and computes exactly one after one row is edited', async () => {
    const out = join(tempDir(), 'skills');
    cpSync(indexDir, out, { recursive: true });
    const before = readEmbeddings(join(out, 'vectors.arrow'));
    const again = await build({ out });
    expect(again.manifest.embedding).toEqual({ reused: N, deduplicated: 0, computed: 0 });
    expect(readFileSync(join(out, 'vectors.arrow')).equals(readFileSync(join(indexDir, 'vectors.arrow')))).toBe(true);

    const edited = SKILLS.map((s) => (s.id === 'S05' ? { ...s, label: 'write API reference documentation' } : s));
    const editedCorpus = join(root, 'skills-edited.csv');
    writeFileSync(editedCorpus, skillsCsv(edited).text);
    const third = await build({ out, corpus: editedCorpus });
    expect(third.manifest.embedding).toEqual({ reused: N - 1, deduplicated: 0, computed: 1 });
    expect(third.manifest.corpus.sha256).toBe(sha256(readFileSync(editedCorpus)));
    const after = readEmbeddings(join(out, 'vectors.arrow'));
    expect(after.ids).toEqual(before.ids);
    after.vectors.forEach((v, i) => {
      const same = Buffer.from(v.buffer, v.byteOffset, v.byteLength).equals(Buffer.from(before.vectors[i]!.buffer, before.vectors[i]!.byteOffset, before.vectors[i]!.byteLength));
      expect(same, after.ids[i]).toBe(after.ids[i] !== 'S05');
    });
    const [fresh] = await model.embed(['write API reference documentation'], { side: 'doc' });
    const s05 = after.vectors[after.ids.indexOf('S05')]!;
    expect(Math.max(...Array.from(s05, (x, i) => Math.abs(x - fresh![i]!)))).toBeLessThanOrEqual(1e-6);
    expect(readDocumentsJsonl(out).find((d) => d.id === 'S05')!.text).toBe('write API reference documentation');
  });

  it('leaves an existing index byte-identical and no staging directory behind when a build fails', async () => {
    const parent = tempDir();
    const out = join(parent, 'skills');
    cpSync(indexDir, out, { recursive: true });
    const before = snapshot(out);
    expect(before.size).toBe(3);

    // Fails on opening the corpus: a labels column it does not have.
    const noColumn = build({ out, labelsField: 'altLabels' });
    await expect(noColumn).rejects.toThrow(DataError);
    await expect(noColumn).rejects.toThrow(/no column "altLabels" for the labels \(columns: "id", "label", "alt"\)/);
    expect(snapshot(out)).toEqual(before);
    expect(readdirSync(parent)).toEqual(['skills']);

    // Fails after the staging sibling holds a vectors file: every row is bad. The log line after
    // embedding shows the staging directory as it was then.
    const allBad = join(parent, 'bad.csv');
    writeFileSync(allBad, 'id,label,alt\n,nurse,\n,welder,\n');
    let staged: string[] = [];
    const log = (line: string): void => {
      if (!line.startsWith('vectors:')) return;
      staged = readdirSync(parent).filter((name) => /^\.skills\..+\.tmp$/.test(name)).flatMap((name) => readdirSync(join(parent, name)).map((f) => `${name}/${f}`));
    };
    await expect(build({ out, corpus: allBad, log })).rejects.toThrow(/no usable rows: an index needs at least one document/);
    expect(staged).toHaveLength(1);
    expect(staged[0]).toMatch(/^\.skills\.\d+\.[0-9a-f]{8}\.tmp\/vectors\.arrow$/);
    expect(snapshot(out)).toEqual(before);
    expect(readdirSync(parent).sort()).toEqual(['bad.csv', 'skills']);
  });

  it('pairs each vector with the row kiln embed embedded: an id whose first row has a blank text keeps its later row', async () => {
    const dir = tempDir();
    const csvPath = join(dir, 'dup.csv');
    writeFileSync(csvPath, 'id,label,alt\nA,"   ",\nA,registered nurse,\nB,welder,\n');
    const out = join(dir, 'idx');
    await build({ out, corpus: csvPath });
    expect(readDocumentsJsonl(out).map((d) => [d.id, d.text])).toEqual([['A', 'registered nurse'], ['B', 'welder']]);
    const [nurse] = await model.embed(['registered nurse'], { side: 'doc' });
    const stored = readEmbeddings(join(out, 'vectors.arrow')).vectors[0]!;
    for (let i = 0; i < stored.length; i++) expect(stored[i]).toBeCloseTo(nurse![i]!, 6);
  });

  it('rejects bad settings, unknown prompt types and an unloadable model before writing anything', async () => {
    const parent = tempDir();
    const out = join(parent, 'idx');
    await expect(build({ out, hybrid: { ...HYBRID, weight: 2 } })).rejects.toThrow(/fusion weight must be in \[0, 1\], got 2/);
    await expect(build({ out, hybrid: { ...HYBRID, window: 0 } })).rejects.toThrow(/window 0: expected an integer ≥ 1/);
    await expect(build({ out, annThreshold: -1 })).rejects.toThrow(/annThreshold -1: expected an integer ≥ 0/);
    await expect(build({ out, queryType: 'nosuch' })).rejects.toThrow(/--query-type "nosuch" is not a prompt type of .*; expected one of "title"/);
    await expect(build({ out, model: join(parent, 'no-model') })).rejects.toThrow(EmbedError);
    expect(readdirSync(parent)).toEqual([]);
  });

  it('searches through HNSW above --ann-threshold, with its recall measured and near-exact results', async () => {
    const out = join(tempDir(), 'skills-hnsw');
    const summary = await build({ out, annThreshold: 5 });
    const m = summary.manifest;
    expect(m.annThreshold).toBe(5);
    if (m.dense.search !== 'hnsw') throw new Error(`expected HNSW, got ${m.dense.search}`);
    expect(m.dense).toMatchObject({ search: 'hnsw', file: 'hnsw.bin', m: 16, efConstruction: 200 });
    expect(m.dense.recall.k).toBe(HYBRID.window);
    expect(m.dense.recall.value).toBeGreaterThanOrEqual(0);
    expect(m.dense.recall.value).toBeLessThanOrEqual(1);
    expect(m.dense.recall.byEfSearch.length).toBeGreaterThan(0);
    expect(m.dense.recall.byEfSearch.at(-1)).toEqual({ efSearch: m.dense.efSearch, recall: m.dense.recall.value });
    expect(m.dense.recall.queries).toBeGreaterThan(0);
    expect(m.dense.recall.queries).toBeLessThanOrEqual(N);
    expect(statSync(join(out, 'hnsw.bin')).size).toBeGreaterThan(0);

    const server = await startServer({ modelDir: dirs.twoTower, indexDir: out, port: 0, threads: 1, maxWaitMs: 0 });
    try {
      expect(server.index?.ann).not.toBeNull();
      expect(server.index?.exact).toBeNull();
      for (const query of ['database administrator', 'truck driver', 'first aid', 'software engineer']) {
        const exact = await bruteDense(query);
        const exactTop = exact.docs.slice(0, 10).map((d) => SKILLS[d]!.id);
        const response = await fetch(`${server.url}/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, mode: 'dense', k: 10 }) });
        expect(response.status).toBe(200);
        const json = (await response.json()) as SearchReply;
        const ids = json.results.map((r) => r.id);
        expect(ids).toHaveLength(10);
        const recall = ids.filter((id) => exactTop.includes(id)).length / 10;
        expect(recall, query).toBeGreaterThanOrEqual(0.9);
        // Each returned score is that document's exact inner product with the query.
        const [q] = await model.embed([query], { side: 'query' });
        json.results.forEach((r) => expect(r.score).toBeCloseTo(dot(q!, vectors[SKILLS.findIndex((s) => s.id === r.id)]!), 5));
      }
    } finally {
      await server.close();
    }
  });

  it('refuses to serve an index built with another model, naming both model ids', async () => {
    const otherDir = exportRunTo(tinyRun({ kind: 'two-tower', prompts: { title: 'job title: {text}' }, seed: 8 }));
    const other = await ExportedModel.load(otherDir, { threads: 1 });
    try {
      expect(other.modelId).not.toBe(model.modelId);
      expect(() => buildServer(other, { index })).toThrow(
        `the index ${index.dir} was built with model ${model.modelId}, but the served model is ${other.modelId}; rebuild it with \`kiln index build\` and this model`,
      );
    } finally {
      await other.release();
    }
  });

  describe('the kiln index build CLI', () => {
    const BIN = join(REPO_ROOT, 'bin', 'kiln.js');
    const kiln = (args: string[]): { status: number | null; stdout: string; stderr: string } => {
      const r = spawnSync(process.execPath, [BIN, 'index', 'build', ...args], { encoding: 'utf8', cwd: REPO_ROOT, env: { ...process.env, KILN_DATA: DATA_ROOT } });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    beforeAll(() => {
      // The CLI runs from dist/ (`npm test` builds it first; alone: npx tsc -p tsconfig.build.json).
      expect(existsSync(join(REPO_ROOT, 'dist', 'cli', 'commands', 'index-build.js')), 'build dist/ first: npx tsc -p tsconfig.build.json').toBe(true);
    });

    it('exits 2 without --corpus, with --weight 2 or a missing model, writing nothing; exits 0 and prints one summary line on success', () => {
      const parent = tempDir();
      const out = join(parent, 'skills');
      const common = ['--model', dirs.twoTower, '--out', out, '--id-field', 'id', '--text-field', 'label', '--labels-field', 'alt', '--threads', '1'];

      const noCorpus = kiln(common);
      expect(noCorpus.status).toBe(2);
      expect(noCorpus.stderr).toMatch(/Missing required argument: corpus/);
      const badWeight = kiln([...common, '--corpus', corpus, '--weight', '2']);
      expect(badWeight.status).toBe(2);
      expect(badWeight.stderr).toContain('--weight 2: expected a number in [0, 1]');
      expect(readdirSync(parent)).toEqual([]);
      const noModel = kiln([...common.slice(2), '--model', join(parent, 'missing'), '--corpus', corpus]);
      expect(noModel.status, noModel.stderr).toBe(2);
      expect(noModel.stderr).toMatch(/^--model .*missing: .*cannot read the model card/);
      expect(noModel.stderr).not.toMatch(/\n\s+at /);

      const ok = kiln([...common, '--corpus', corpus, '--window', '10', '--weight', '0.7', '--rrf-k', '20']);
      expect(ok.status, ok.stderr).toBe(0);
      const lines = ok.stdout.split('\n').filter((l) => l !== '');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^index ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${N} documents, model ${model.modelId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, exact dense search, tfidf_char lexical, rrf fusion \\(weight 0\\.7\\); [0-9.]+ s$`));
      expect(readdirSync(parent)).toEqual(['skills']);
      const m = readManifest(out);
      expect(m).toMatchObject({ documents: N, modelId: model.modelId, hybrid: HYBRID, lexical: LEXICAL, corpus: { skipped: 2 } });
      // The same vectors as the library build above.
      expect(readFileSync(join(out, 'vectors.arrow')).equals(readFileSync(join(indexDir, 'vectors.arrow')))).toBe(true);
    });
  });
});
