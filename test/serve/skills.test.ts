/**
 * `POST /skills` (src/serve/server.ts) and `kiln serve --skills` (src/cli/commands/serve.ts), end
 * to end on the tiny skills model of test/helpers/skills-fixture.ts: the tiny random two-tower
 * export over a 31-skill subset of the real ESCO taxonomy.
 *
 * The model is random, so the semantic tagger's picks are noise; tests that assert exact skill
 * sets pass `threshold: 1` (no sentence is at cosine 1 from a skill label), which leaves the
 * trie's matches and the graph's expansion, both fixed by the fixture's data. The service's
 * answers with the semantic tagger on are checked against `SkillTagger.extract` called directly.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ExportedModel } from '../../src/serve/exported-model.js';
import { buildServer, startServer } from '../../src/serve/server.js';
import type { ExtractedDocument, ExtractedSkill } from '../../src/skills/tagger.js';
import { SkillTagger } from '../../src/skills/tagger.js';
import { exportedTinyModels, exportRunTo, tinyRun } from '../helpers/exported-model.js';
import { REPO_ROOT } from '../helpers/python.js';
import { FIXTURE_EDGES, FIXTURE_SKILLS, tinySkillsModel } from '../helpers/skills-fixture.js';

const POSTING = [
  'About us',
  'We build logistics software for warehouses.',
  '',
  'Requirements:',
  '- 3+ years of experience with Python and JS',
  '- Good communication skills',
  '',
  'We offer',
  '- Flexible hours',
].join('\n');

const PYTHON = FIXTURE_EDGES.python.label;
const JAVASCRIPT = FIXTURE_EDGES.javascript.label;

interface SkillsReply {
  model: string;
  results: ExtractedDocument[];
  message?: string;
}

/** The value of one sample line of a Prometheus text dump. */
function metric(text: string, sample: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

const found = (doc: ExtractedDocument): ExtractedSkill[] => doc.skills.filter((s) => s.kind === 'found');
const expanded = (doc: ExtractedDocument): ExtractedSkill[] => doc.skills.filter((s) => s.kind === 'expanded');

describe('POST /skills', () => {
  let skillsDir: string;
  let tagger: SkillTagger;
  let app: FastifyInstance;

  async function skills(body: unknown, server: FastifyInstance = app): Promise<{ status: number; json: SkillsReply; headers: Record<string, unknown> }> {
    const reply = await server.inject({ method: 'POST', url: '/skills', payload: body as object });
    return { status: reply.statusCode, json: reply.json(), headers: reply.headers };
  }

  beforeAll(async () => {
    ({ dir: skillsDir } = await tinySkillsModel());
    tagger = await SkillTagger.load(skillsDir, { threads: 1 });
    app = buildServer(tagger.model, { skills: tagger, maxWaitMs: 0, log: () => undefined });
  });

  afterAll(async () => {
    await app?.close();
    await tagger?.release();
  });

  it('finds the skills a Requirements section names, with trie mentions that slice the posting to the matched text', async () => {
    expect(tagger.files.skills).toHaveLength(FIXTURE_SKILLS);
    const { status, json } = await skills({ text: POSTING, expand: false, threshold: 1 });
    expect(status, JSON.stringify(json)).toBe(200);
    expect(json.model).toBe(tagger.model.modelId);
    expect(json.results).toHaveLength(1);
    const [doc] = json.results;
    expect(doc!.id).toBe('1'); // no id given: the 1-based position
    expect(doc!.sections.map((s) => s.kind)).toEqual(['company', 'qualifications', 'benefits']);
    expect(doc!.sentences).toBe(4);
    expect(found(doc!).map((s) => s.label).sort()).toEqual([JAVASCRIPT, PYTHON].sort());
    expect(expanded(doc!)).toEqual([]);

    const mention = (label: string) => {
      const skill = doc!.skills.find((s) => s.label === label)!;
      expect(skill.mentions).toHaveLength(1);
      return skill.mentions[0]!;
    };
    const python = mention(PYTHON);
    expect(python).toMatchObject({ tagger: 'trie', section: 'qualifications', text: 'Python', via: 'alt' });
    expect(POSTING.slice(python.start, python.end)).toBe('Python');
    // "JS" is no ESCO label: the Stack Overflow synonym js → javascript makes it one.
    const js = mention(JAVASCRIPT);
    expect(js).toMatchObject({ tagger: 'trie', section: 'qualifications', text: 'JS', via: 'stackoverflow' });
    expect(POSTING.slice(js.start, js.end)).toBe('JS');
    // Found in qualifications (weight 1): the score is the sentence score itself, in (0, 1].
    for (const s of found(doc!)) {
      expect(s.score).toBeGreaterThan(0);
      expect(s.score).toBeLessThanOrEqual(1);
      expect(s.mentions[0]!.score).toBe(s.score);
    }
  });

  it('expand adds the broader skills of the found ones from the graph; expand false leaves them out', async () => {
    const plain = (await skills({ text: POSTING, expand: false, threshold: 1 })).json.results[0]!;
    const { status, json } = await skills({ text: POSTING, threshold: 1 }); // expand defaults to true
    expect(status).toBe(200);
    const doc = json.results[0]!;
    expect(found(doc)).toEqual(found(plain));
    const byLabel = new Map(expanded(doc).map((s) => [s.label, s]));
    // Python and JavaScript → broader "computer programming"; JavaScript → broader "web programming".
    for (const label of new Set([...FIXTURE_EDGES.python.broader, ...FIXTURE_EDGES.javascript.broader])) {
      const skill = byLabel.get(label);
      expect(skill, `${label} in ${[...byLabel.keys()].join(', ')}`).toBeDefined();
      expect(skill!.mentions).toEqual([]);
      expect(skill!.expandedFrom!.relation).toBe('broader');
      // One hop at the broader decay (0.5) of the source's score.
      const source = found(doc).find((s) => s.id === skill!.expandedFrom!.id)!;
      expect(source.label).toBe(skill!.expandedFrom!.label);
      expect(skill!.score).toBeCloseTo(0.5 * source.score, 12);
    }
    expect(byLabel.get('web programming')!.expandedFrom!.label).toBe(JAVASCRIPT);
    // "use scripting programming" is optionally related to both.
    expect(byLabel.get('use scripting programming')!.expandedFrom!.relation).toBe('optional');
    // Found skills are never re-added as expanded ones.
    expect(expanded(doc).some((s) => found(doc).some((f) => f.id === s.id))).toBe(false);
  });

  it('answers what SkillTagger.extract answers, semantic tagger included, and applies threshold and top_k', async () => {
    const direct = await tagger.extract([{ id: 'p', text: POSTING }], { expand: true });
    const { json } = await skills({ id: 'p', text: POSTING });
    const served = json.results[0]!;
    expect(served.id).toBe('p');
    expect(served.sections).toEqual(direct[0]!.sections);
    expect(served.skills.map((s) => [s.id, s.kind])).toEqual(direct[0]!.skills.map((s) => [s.id, s.kind]));
    served.skills.forEach((s, i) => expect(s.score).toBeCloseTo(direct[0]!.skills[i]!.score, 5));

    // The random model's cosines are high: the default threshold (0.6) lets semantic skills in.
    const semantic = served.skills.flatMap((s) => s.mentions).filter((m) => m.tagger === 'semantic');
    expect(semantic.length).toBeGreaterThan(0);
    const sentences = new Set(['We build logistics software for warehouses.', '3+ years of experience with Python and JS', 'Good communication skills', 'Flexible hours']);
    for (const m of semantic) {
      expect(sentences.has(POSTING.slice(m.start, m.end)), POSTING.slice(m.start, m.end)).toBe(true); // a semantic mention spans its sentence
      if (m.tagger === 'semantic') expect(m.similarity).toBeGreaterThanOrEqual(tagger.settings.semantic.threshold);
    }
    // top_k: at most that many semantic skills per sentence.
    const mostPerSentence = async (topK: number): Promise<number> => {
      const doc = (await skills({ text: POSTING, top_k: topK, expand: false })).json.results[0]!;
      const perSentence = new Map<number, number>();
      for (const m of doc.skills.flatMap((s) => s.mentions)) if (m.tagger === 'semantic') perSentence.set(m.start, (perSentence.get(m.start) ?? 0) + 1);
      return Math.max(0, ...perSentence.values());
    };
    expect(await mostPerSentence(1)).toBe(1);
    expect(await mostPerSentence(3)).toBe(3);
    // A higher threshold keeps only the more similar ones.
    const strict = (await skills({ text: POSTING, threshold: 0.8, expand: false })).json.results[0]!;
    for (const m of strict.skills.flatMap((s) => s.mentions)) if (m.tagger === 'semantic') expect(m.similarity).toBeGreaterThanOrEqual(0.8);
  });

  it('takes documents, answering one result per document in order, with ids given or 1-based positions', async () => {
    const documents = [
      { id: 'a', text: 'Requirements:\n- Python and JS' },
      { text: 'Must have: strong SQL skills.' },
      { id: 'c', text: 'Nothing to see here.' },
    ];
    const { status, json } = await skills({ documents, expand: false, threshold: 1 });
    expect(status, JSON.stringify(json)).toBe(200);
    expect(json.results.map((r) => r.id)).toEqual(['a', '2', 'c']);
    expect(found(json.results[0]!).map((s) => s.label).sort()).toEqual([JAVASCRIPT, PYTHON].sort());
    expect(found(json.results[1]!).map((s) => s.label)).toContain(FIXTURE_EDGES.sql.label);
    expect(json.results[2]!.skills).toEqual([]);
    // The same answers as each document alone.
    for (const [i, d] of documents.entries()) {
      const alone = (await skills({ text: d.text, expand: false, threshold: 1 })).json.results[0]!;
      expect(json.results[i]!.skills.map((s) => s.id)).toEqual(alone.skills.map((s) => s.id));
    }
  });

  it('merges concurrent requests into shared model calls in the "skills" batch group, and counts them per route', async () => {
    const server = buildServer(tagger.model, { skills: tagger, maxWaitMs: 20, log: () => undefined });
    try {
      const texts = Array.from({ length: 8 }, (_, i) => `Requirements:\n- Python and JS\n- ${i + 1} years of SQL`);
      const replies = await Promise.all(texts.map((text) => skills({ text, expand: false }, server)));
      expect(replies.map((r) => r.status)).toEqual(texts.map(() => 200));
      const metrics = (await server.inject({ method: 'GET', url: '/metrics' })).body;
      expect(metric(metrics, 'kiln_http_requests_total{route="/skills",status="200"}')).toBe(8);
      expect(metric(metrics, 'kiln_http_request_duration_seconds_count{route="/skills"}')).toBe(8);
      // Two sentences per posting (the heading is none), embedded in fewer calls than requests.
      expect(metric(metrics, 'kiln_batch_size_sum{group="skills"}')).toBe(16);
      expect(metric(metrics, 'kiln_texts_total{group="skills"}')).toBe(16);
      expect(metric(metrics, 'kiln_batch_size_count{group="skills"}')).toBeLessThan(8);
    } finally {
      await server.close();
    }
  });

  it('sheds requests beyond --max-queue with 503 and Retry-After; one that could never fit is a 400', async () => {
    const server = buildServer(tagger.model, { skills: tagger, maxWaitMs: 50, maxQueue: 2, log: () => undefined });
    try {
      const text = 'Requirements:\n- Python\n- JS';
      const replies = await Promise.all([skills({ text }, server), skills({ text }, server)]);
      expect(replies.map((r) => r.status)).toEqual([200, 503]);
      expect(replies[1]!.headers['retry-after']).toBe('1');
      // Refused by the model's queue (the first posting's sentences wait in the batcher) or, had
      // the first one reached its lexical rankers already, by theirs: the same bound.
      expect(replies[1]!.json.message).toMatch(/^overloaded: 2 (texts|lexical queries) are queued \(limit 2, --max-queue\); retry shortly$/);
      expect((await skills({ text }, server)).status).toBe(200); // room again
      const tooBig = await skills({ text: `${text}\n- SQL` }, server);
      expect(tooBig.status).toBe(400);
      expect(tooBig.json.message).toBe('body: its 3 sentences exceed the queue limit of 2 texts (--max-queue); send fewer or shorter documents per request');
      expect(metric((await server.inject({ method: 'GET', url: '/metrics' })).body, 'kiln_overload_rejections_total')).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('rejects bad bodies with 400 naming the field and what was expected', async () => {
    const small = buildServer(tagger.model, { skills: tagger, maxWaitMs: 0, maxTexts: 2, log: () => undefined });
    const doc = { id: 'a', text: 'Python' };
    const cases: Array<[unknown, string]> = [
      [{}, 'text: expected a non-empty string (or "documents": [{"id": "...", "text": "..."}, ...]), got nothing'],
      [{ text: '' }, 'text: expected a non-empty string, got an empty string'],
      [{ text: 5 }, 'text: expected a non-empty string, got number 5'],
      [{ text: 'Python', id: 7 }, 'id: expected a string, got number 7'],
      [{ text: 'Python', expand: 'yes' }, 'expand: expected true or false, got the string "yes"'],
      [{ text: 'Python', threshold: 2 }, 'threshold: expected a cosine similarity in [-1, 1], got number 2'],
      [{ text: 'Python', threshold: '0.5' }, 'threshold: expected a cosine similarity in [-1, 1], got the string "0.5"'],
      [{ text: 'Python', top_k: 0 }, 'top_k: expected an integer ≥ 1, got number 0'],
      [{ text: 'Python', top_k: 2.5 }, 'top_k: expected an integer ≥ 1, got number 2.5'],
      [{ text: 'Python', k: 3 }, 'body: unknown field "k"; expected text, id, documents, expand, threshold, top_k'],
      [{ documents: { text: 'Python' } }, 'documents: expected an array of {"id", "text"} objects, got an object'],
      [{ documents: [] }, 'documents: expected at least one document'],
      [{ documents: [doc, 'JS'] }, 'documents[1]: expected an object {"id": "...", "text": "..."}, got the string "JS"'],
      [{ documents: [{ id: 'a' }] }, 'documents[0].text: expected a non-empty string, got nothing'],
      [{ documents: [{ id: 3, text: 'Python' }] }, 'documents[0].id: expected a string, got number 3'],
      [{ documents: [{ text: 'Python', title: 'Dev' }] }, 'documents[0]: unknown field "title"; expected id, text'],
      [{ documents: [doc, doc, doc] }, 'documents: 3 documents exceed the limit of 2 per request (--max-texts); split the request'],
      [{ documents: [doc], text: 'JS' }, 'body: give either "text" or "documents", not both'],
      [{ documents: [doc], id: 'x' }, 'id: goes with "text"; in "documents" each document carries its own id'],
      [[doc], 'body: expected a JSON object, got an array of 1'],
    ];
    try {
      for (const [body, message] of cases) {
        const { status, json } = await skills(body, small);
        expect(status, JSON.stringify(body)).toBe(400);
        expect(json.message, JSON.stringify(body)).toBe(message);
      }
    } finally {
      await small.close();
    }
    // Without a skills model there is no /skills.
    const bare = buildServer(tagger.model, { maxWaitMs: 0 });
    try {
      expect((await bare.inject({ method: 'POST', url: '/skills', payload: { text: 'Python' } })).statusCode).toBe(404);
    } finally {
      await bare.close();
    }
  });

  it('close() answers the /skills request in flight and is not held open by a connection that never sent a request', async () => {
    // The sentences wait 300 ms in the batcher: the request is surely in flight when close() starts.
    const server = await startServer({ skillsDir, port: 0, threads: 1, maxWaitMs: 300 });
    expect(server.model).toBe(server.skills!.model); // no modelDir: the skills model's own is served
    const spare = connect(server.port, '127.0.0.1'); // as a load generator or a proxy opens one
    await new Promise((resolve) => spare.once('connect', resolve));
    const spareClosed = new Promise<void>((resolve) => spare.once('close', () => resolve()));
    spare.on('error', () => undefined);
    const inFlight = fetch(`${server.url}/skills`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: POSTING, threshold: 1, expand: false }) });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = performance.now();
    await server.close();
    expect(performance.now() - started).toBeLessThan(5000);
    await spareClosed;
    const reply = await inFlight;
    expect(reply.status).toBe(200);
    expect(found(((await reply.json()) as SkillsReply).results[0]!).map((s) => s.label).sort()).toEqual([JAVASCRIPT, PYTHON].sort());
  }, 30_000);

  describe('a served model other than the skills model’s', () => {
    let otherDir: string;
    beforeAll(() => {
      otherDir = exportRunTo(tinyRun({ kind: 'two-tower', prompts: { title: 'job title: {text}' }, seed: 8 }));
    });

    it('is refused by buildServer and startServer, naming both model ids', async () => {
      const other = await ExportedModel.load(otherDir, { threads: 1 });
      try {
        expect(other.modelId).not.toBe(tagger.model.modelId);
        const message = `the skills model ${skillsDir} was built with model ${tagger.model.modelId}, but the served model is ${other.modelId}; leave out --model to serve the skills model's own (${join(skillsDir, 'model')}), or rebuild it with \`kiln skills build --model\` and this model`;
        expect(() => buildServer(other, { skills: tagger })).toThrow(message);
        await expect(startServer({ modelDir: otherDir, skillsDir, port: 0, threads: 1 })).rejects.toThrow(message);
      } finally {
        await other.release();
      }
      // The same model (another copy of the export the skills model was built from) is fine.
      const { twoTower } = await exportedTinyModels();
      const server = await startServer({ modelDir: twoTower, skillsDir, port: 0, threads: 1, maxWaitMs: 0 });
      try {
        expect(server.skills).toBeDefined();
        expect(server.model).not.toBe(server.skills!.model);
        const reply = await fetch(`${server.url}/skills`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'Requirements: Python', threshold: 1, expand: false }) });
        expect(reply.status).toBe(200);
        expect(((await reply.json()) as SkillsReply).results[0]!.skills.map((s) => s.label)).toEqual([PYTHON]);
      } finally {
        await server.close();
      }
    });

    describe('the kiln serve CLI', () => {
      const bin = join(REPO_ROOT, 'bin', 'kiln.js');
      beforeAll(() => {
        expect(existsSync(join(REPO_ROOT, 'dist', 'cli', 'commands', 'serve.js')), 'build first: npx tsc -p tsconfig.build.json').toBe(true);
      });

      it('exits 2 when --model holds another model than --skills, naming both', async () => {
        const child = spawn(process.execPath, [bin, 'serve', '--skills', skillsDir, '--model', otherDir, '--port', '0', '--threads', '1'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
        expect(code, stderr).toBe(2);
        const other = await ExportedModel.load(otherDir, { threads: 1 });
        const otherId = other.modelId;
        await other.release();
        expect(stderr).toContain(`--skills ${skillsDir} was built with model ${tagger.model.modelId}, but --model ${otherDir} is ${otherId}; leave out --model to serve the skills model's own`);
      });

      it('--skills alone serves its own model: /skills and /embed answer, and SIGTERM exits 0', async () => {
        const child = spawn(process.execPath, [bin, 'serve', '--skills', skillsDir, '--port', '0', '--threads', '1'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
        try {
          const url = await new Promise<string>((resolve, reject) => {
            child.stdout.on('data', (c: Buffer) => {
              stdout += c.toString();
              const m = /^listening on (http:\/\/127\.0\.0\.1:\d+) \(model (\S+), two-tower cosine \d+-d;.*; \/skills over (\d+) skills\)$/m.exec(stdout);
              if (m !== null) {
                expect(m[2]).toBe(tagger.model.modelId);
                expect(Number(m[3])).toBe(FIXTURE_SKILLS);
                resolve(m[1]!);
              }
            });
            void exited.then((code) => reject(new Error(`kiln serve exited ${code} before listening: ${stderr}`)));
          });
          const post = (path: string, body: object) => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
          const reply = await post('/skills', { documents: [{ id: 'x', text: POSTING }], expand: false, threshold: 1 });
          expect(reply.status).toBe(200);
          const json = (await reply.json()) as SkillsReply;
          expect(json.model).toBe(tagger.model.modelId);
          expect(json.results.map((r) => r.id)).toEqual(['x']);
          expect(found(json.results[0]!).map((s) => s.label).sort()).toEqual([JAVASCRIPT, PYTHON].sort());
          const embed = await post('/embed', { texts: ['Python'], side: 'query' });
          expect(embed.status).toBe(200);
          const [expected] = await tagger.model.embed(['Python'], { side: 'query' });
          const vector = ((await embed.json()) as { vectors: number[][] }).vectors[0]!;
          vector.forEach((x, i) => expect(Math.abs(x - expected![i]!)).toBeLessThanOrEqual(1e-6));
          child.kill('SIGTERM');
          // The tagger's worker threads are closed too, or the process would not exit.
          expect(await exited, stderr).toBe(0);
          expect(stdout).toContain('SIGTERM: draining in-flight requests, then stopping\nstopped\n');
        } finally {
          child.kill('SIGKILL');
        }
      });
    });
  });
});
