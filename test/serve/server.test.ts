/**
 * `kiln serve` (src/serve/server.ts, src/cli/commands/serve.ts).
 *
 * First against stand-in models with ExportedModel's surface (every call recorded, vectors a
 * pure function of the text): routing, validation messages, limits, micro-batching seen from
 * outside, metrics, shutdown. Then end to end on the tiny exported models from
 * test/helpers/exported-model.ts: /embed and /score equal ExportedModel's own answers, and the
 * CLI (dist/, built by `npm test`'s pretest) serves, answers, and exits 0 on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { FastifyInstance } from 'fastify';
import type { TwoTowerCard, CrossEncoderCard } from '../../src/export/card.js';
import { ExportedModel, type EmbedRequest } from '../../src/serve/exported-model.js';
import { register as promClientDefaultRegistry } from 'prom-client';

import { ServerMetrics } from '../../src/serve/metrics.js';
import { buildServer, type ServableModel, type ServerOptions } from '../../src/serve/server.js';
import { REPO_ROOT } from '../helpers/python.js';

// --- stand-in models ---------------------------------------------------------------------------

const COMMON = {
  format: 'kiln-onnx',
  formatVersion: 1,
  kilnVersion: '0.1.0',
  exportedAt: '2026-01-01T00:00:00.000Z',
  opset: 17,
  quantization: 'none',
  operators: 'onnx',
  parameters: 1000,
  source: { run: 'runs/fake', path: '/tmp/runs/fake' },
  metrics: {},
  tokenizer: 'tokenizer.json',
  encoder: { vocabSize: 100, hiddenSize: 4, numLayers: 1, numHeads: 1, intermediateSize: 8, maxPositions: 32, typeVocabSize: 2, layerNormEps: 1e-12, padId: 0 },
  pooling: 'mean',
} as const;

function twoTowerCard(head: TwoTowerCard['head'] = 'cosine'): TwoTowerCard {
  return {
    ...COMMON,
    modelId: `fake-${head}@000000000000`,
    kind: 'two-tower',
    towers: 'separate',
    head,
    normalized: head === 'cosine',
    dimension: 4,
    prompts: { title: 'title: {text}' },
    maxLength: { query: 16, doc: 16 },
    graphs: { query: 'query.onnx', doc: 'doc.onnx' },
  };
}

const crossCard: CrossEncoderCard = { ...COMMON, modelId: 'fake-cross@000000000000', kind: 'cross-encoder', maxLength: { pair: 32 }, graphs: { score: 'model.onnx' } };

/** A vector that depends on the text, the side and the prompt: 4 numbers from char codes. */
function fakeVector(text: string, side: string, inputType?: string): Float32Array {
  const s = `${side}|${inputType ?? ''}|${text}`;
  const v = new Float32Array(4);
  for (let i = 0; i < s.length; i++) v[i % 4]! += (s.charCodeAt(i) % 17) / 17 - 0.4;
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => x / norm);
}

interface FakeModel extends ServableModel {
  embedCalls: { texts: string[]; request: EmbedRequest }[];
  scoreCalls: [string, string][][];
  /** Milliseconds each call takes (a real timer). */
  delayMs: number;
  /** Makes the next call throw. */
  failNext: boolean;
}

/** The stand-in's token count: [CLS] + one per space-separated word + [SEP] (the prompt ignored). */
const fakeTokenCount = (text: string): number => 2 + text.split(' ').length;

function fakeModel(card: TwoTowerCard | CrossEncoderCard): FakeModel {
  const model: FakeModel = {
    card,
    modelId: card.modelId,
    dimension: card.kind === 'two-tower' ? card.dimension : 0,
    embedCalls: [],
    scoreCalls: [],
    delayMs: 0,
    failNext: false,
    async embed(texts, request = {}) {
      model.embedCalls.push({ texts: [...texts], request });
      await new Promise((r) => setTimeout(r, model.delayMs));
      if (model.failNext) {
        model.failNext = false;
        throw new Error('onnxruntime: simulated failure');
      }
      return texts.map((t) => fakeVector(t, request.side ?? 'doc', request.inputType));
    },
    tokenCounts(texts) {
      return texts.map(fakeTokenCount);
    },
    async score(pairs) {
      model.scoreCalls.push(pairs.map(([a, b]) => [a, b]));
      await new Promise((r) => setTimeout(r, model.delayMs));
      return Float32Array.from(pairs, ([a, b]) => a.length - b.length / 10);
    },
  } as FakeModel;
  return model;
}

function build(model: ServableModel, options: ServerOptions = {}): FastifyInstance {
  return buildServer(model, { maxWaitMs: 2, log: () => {}, ...options });
}

const post = (app: FastifyInstance, url: string, payload: unknown) => app.inject({ method: 'POST', url, payload: payload as object });

/** JSON vectors against float32 ones: each number rounded to float32 (what the body promises), then within `tolerance` (0: the same bits). */
function expectVectors(actual: number[][], expected: Float32Array[], tolerance = 0): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((row, i) => {
    expect(row).toHaveLength(expected[i]!.length);
    row.forEach((x, j) => expect(Math.abs(Math.fround(x) - expected[i]![j]!), `vector ${i}[${j}]`).toBeLessThanOrEqual(tolerance));
  });
}

/**
 * The value of one sample of a Prometheus text dump, e.g. metric(text, 'kiln_batch_size_bucket{group="embed:doc",le="4"}').
 * Labels match in any order: the format leaves their order to the writer (prom-client puts `le` first).
 */
function metric(text: string, sample: string): number | undefined {
  const wanted = canonicalSample(sample);
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const space = line.lastIndexOf(' ');
    if (canonicalSample(line.slice(0, space)) === wanted) return Number(line.slice(space + 1));
  }
  return undefined;
}

/** `name{b="2",a="1"}` → `name{a="1",b="2"}` (label values here hold no commas). */
function canonicalSample(sample: string): string {
  const brace = sample.indexOf('{');
  if (brace < 0) return sample;
  return `${sample.slice(0, brace)}{${sample.slice(brace + 1, -1).split(',').sort().join(',')}}`;
}

describe('kiln serve with a stand-in two-tower model', () => {
  it('sheds load with 503 and Retry-After once the queue is full (--max-queue)', async () => {
    const model = fakeModel(twoTowerCard());
    model.delayMs = 50; // the first call holds the model while the others queue
    const app = build(model, { maxQueue: 6, maxBatch: 4, maxWaitMs: 0 });
    const first = post(app, '/embed', { texts: ['a', 'b', 'c', 'd'] });
    await new Promise((r) => setTimeout(r, 10)); // the first call is running; the queue is empty
    const queued = post(app, '/embed', { texts: ['e', 'f', 'g', 'h'] }); // 4 queued
    await new Promise((r) => setTimeout(r, 5));
    const refused = await post(app, '/embed', { texts: ['i', 'j', 'k'] }); // 4 + 3 > 6
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.json().message).toMatch(/overloaded: 4 texts are queued \(limit 6, --max-queue\)/);
    expect((await first).statusCode).toBe(200);
    expect((await queued).statusCode).toBe(200);
    expect((await post(app, '/embed', { texts: ['i', 'j', 'k'] })).statusCode).toBe(200); // room again
    expect(metric((await app.inject({ method: 'GET', url: '/metrics' })).body, 'kiln_overload_rejections_total')).toBe(1);
    await app.close();
  });

  it('POST /embed returns the model vectors for the texts, side and type given', async () => {
    const model = fakeModel(twoTowerCard());
    const app = build(model);
    const reply = await post(app, '/embed', { texts: ['data engineer', 'nurse'], side: 'query', type: 'title' });
    expect(reply.statusCode, reply.body).toBe(200);
    const body = reply.json() as { model: string; dimension: number; vectors: number[][] };
    expect(body.model).toBe('fake-cosine@000000000000');
    expect(body.dimension).toBe(4);
    expectVectors(body.vectors, [fakeVector('data engineer', 'query', 'title'), fakeVector('nurse', 'query', 'title')]);
    expect(model.embedCalls).toEqual([{ texts: ['data engineer', 'nurse'], request: { side: 'query', inputType: 'title' } }]);

    const doc = await post(app, '/embed', { texts: ['nurse'] }); // side defaults to doc
    expectVectors(doc.json().vectors, [fakeVector('nurse', 'doc')]);
    await app.close();
  });

  it('merges concurrent requests into few model calls, each request getting its own vectors', async () => {
    const model = fakeModel(twoTowerCard());
    model.delayMs = 5;
    const app = build(model, { maxWaitMs: 5, maxBatch: 64 });
    const texts = Array.from({ length: 20 }, (_, i) => [`title ${i}`, `other ${i}`].slice(0, 1 + (i % 2)));
    const replies = await Promise.all(texts.map((t) => post(app, '/embed', { texts: t })));
    replies.forEach((r, i) => {
      expect(r.statusCode, r.body).toBe(200);
      expectVectors(r.json().vectors, texts[i]!.map((t) => fakeVector(t, 'doc')));
    });
    expect(model.embedCalls.length).toBeLessThan(5);
    expect(model.embedCalls.flatMap((c) => c.texts).sort()).toEqual(texts.flat().sort());

    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metric(metrics, 'kiln_batch_size_count{group="embed:doc"}')).toBe(model.embedCalls.length);
    expect(metric(metrics, 'kiln_batch_size_sum{group="embed:doc"}')).toBe(30);
    expect(metric(metrics, 'kiln_batch_requests_sum{group="embed:doc"}')).toBe(20);
    expect(metric(metrics, 'kiln_texts_total{group="embed:doc"}')).toBe(30);
    expect(metric(metrics, 'kiln_http_requests_total{route="/embed",status="200"}')).toBe(20);
    await app.close();
  });

  it('keeps sides and prompt types in separate model calls', async () => {
    const model = fakeModel(twoTowerCard());
    const app = build(model, { maxWaitMs: 5 });
    await Promise.all([
      post(app, '/embed', { texts: ['a'], side: 'query' }),
      post(app, '/embed', { texts: ['b'], side: 'doc' }),
      post(app, '/embed', { texts: ['c'], side: 'query', type: 'title' }),
      post(app, '/embed', { texts: ['d'], side: 'query' }),
    ]);
    const calls = model.embedCalls.map((c) => [c.request.side, c.request.inputType ?? null, c.texts]);
    expect(calls).toHaveLength(3);
    expect(calls).toEqual(
      expect.arrayContaining([
        ['query', null, ['a', 'd']],
        ['doc', null, ['b']],
        ['query', 'title', ['c']],
      ]),
    );
    await app.close();
  });

  it.each([
    ['not JSON', '{"texts": [', 'body: expected a JSON object'],
    ['an array body', [], 'body: expected a JSON object, got an array of 0'],
    ['texts missing', { side: 'query' }, 'texts: expected an array of non-empty strings, got nothing'],
    ['texts a string', { texts: 'nurse' }, 'texts: expected an array of non-empty strings, got the string "nurse"'],
    ['a number among texts', { texts: ['a', 'b', 7] }, 'texts[2]: expected a non-empty string, got number 7'],
    ['null among texts', { texts: [null] }, 'texts[0]: expected a non-empty string, got null'],
    ['an empty text', { texts: ['a', ''] }, 'texts[1]: expected a non-empty string, got an empty string'],
    ['no texts', { texts: [] }, 'texts: expected at least one text'],
    ['a bad side', { texts: ['a'], side: 'left' }, 'side: expected "query" or "doc", got the string "left"'],
    ['a non-string type', { texts: ['a'], type: 3 }, 'type: expected a string (a prompt type of the model), got number 3'],
    ['an unknown type', { texts: ['a'], type: 'skill' }, 'type: "skill" is not a prompt type of this model; expected one of "title" (or omit type)'],
    ['an unknown field', { texts: ['a'], text: 'b' }, 'body: unknown field "text"; expected texts, side, type'],
    ['too many texts', { texts: Array.from({ length: 9 }, (_, i) => `t${i}`) }, 'texts: 9 texts exceed the limit of 8 per request (--max-texts); split the request'],
  ])('POST /embed with %s is a 400 naming the field', async (_name, payload, message) => {
    const model = fakeModel(twoTowerCard());
    const app = build(model, { maxTexts: 8 });
    const reply =
      typeof payload === 'string'
        ? await app.inject({ method: 'POST', url: '/embed', payload, headers: { 'content-type': 'application/json' } })
        : await post(app, '/embed', payload);
    expect(reply.statusCode).toBe(400);
    expect(reply.json().message).toContain(message);
    expect(model.embedCalls).toHaveLength(0);
    await app.close();
  });

  it('a body over --max-body-bytes is a 413 naming the limit', async () => {
    const app = build(fakeModel(twoTowerCard()), { maxBodyBytes: 1000 });
    const reply = await post(app, '/embed', { texts: ['x'.repeat(2000)] });
    expect(reply.statusCode).toBe(413);
    expect(reply.json().message).toBe('body: larger than the limit of 1000 bytes (--max-body-bytes); send fewer or shorter texts per request');
    await app.close();
  });

  it('a form body (curl -d without a content type) is a 415 naming the content type', async () => {
    const app = build(fakeModel(twoTowerCard()));
    const reply = await app.inject({ method: 'POST', url: '/embed', payload: 'texts=nurse', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(reply.statusCode).toBe(415);
    expect(reply.json().message).toBe('body: expected Content-Type application/json, got "application/x-www-form-urlencoded"');
    await app.close();
  });

  it('POST /score with a cosine head returns query·doc of the two towers, for both request forms', async () => {
    const model = fakeModel(twoTowerCard('cosine'));
    const app = build(model);
    const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * b[i]!, 0);
    const pairs = await post(app, '/score', { pairs: [['nurse', 'registered nurse'], ['nurse', 'welder'], ['cook', 'chef']] });
    expect(pairs.statusCode, pairs.body).toBe(200);
    const expected = [
      dot(fakeVector('nurse', 'query'), fakeVector('registered nurse', 'doc')),
      dot(fakeVector('nurse', 'query'), fakeVector('welder', 'doc')),
      dot(fakeVector('cook', 'query'), fakeVector('chef', 'doc')),
    ];
    pairs.json().scores.forEach((s: number, i: number) => expect(s).toBeCloseTo(expected[i]!, 6));
    // The repeated query is embedded once.
    expect(model.embedCalls.find((c) => c.request.side === 'query')!.texts).toEqual(['nurse', 'cook']);

    const listed = await post(app, '/score', { query: 'nurse', docs: ['registered nurse', 'welder'] });
    expect(listed.json()).toEqual({ model: model.modelId, scores: pairs.json().scores.slice(0, 2) });
    await app.close();
  });

  it('POST /score on a hadamard_mlp model is a 400 pointing at /embed', async () => {
    const app = build(fakeModel(twoTowerCard('hadamard_mlp')));
    const reply = await post(app, '/score', { pairs: [['a', 'b']] });
    expect(reply.statusCode).toBe(400);
    expect(reply.json().message).toContain('hadamard_mlp head');
    expect(reply.json().message).toContain('use POST /embed');
    await app.close();
  });

  it('a failing model call is a 500 for the requests in it, and is counted', async () => {
    const model = fakeModel(twoTowerCard());
    const logged: string[] = [];
    const app = build(model, { log: (l) => logged.push(l) });
    model.failNext = true;
    const failed = await post(app, '/embed', { texts: ['a'] });
    expect(failed.statusCode).toBe(500);
    expect(failed.json().message).toBe('internal error: onnxruntime: simulated failure');
    expect((await post(app, '/embed', { texts: ['a'] })).statusCode).toBe(200); // the server carries on
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metric(metrics, 'kiln_model_call_errors_total{group="embed:doc"}')).toBe(1);
    expect(logged.join('\n')).toContain('model call failed (embed:doc, 1 items from 1 requests): onnxruntime: simulated failure');
    await app.close();
  });

  it('GET /healthz and GET /metrics', async () => {
    const app = build(fakeModel(twoTowerCard()));
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok', model: 'fake-cosine@000000000000' });
    await post(app, '/embed', { texts: ['a', 'b', 'c'] });
    await app.inject({ method: 'GET', url: '/nope' });
    const reply = await app.inject({ method: 'GET', url: '/metrics' });
    expect(reply.statusCode).toBe(200);
    expect(reply.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = reply.body;
    for (const type of [
      '# TYPE kiln_http_requests_total counter',
      '# TYPE kiln_http_request_duration_seconds histogram',
      '# TYPE kiln_batch_size histogram',
      '# TYPE kiln_texts_total counter',
      '# TYPE kiln_queue_depth gauge',
      '# TYPE kiln_model_info gauge',
    ]) {
      expect(text).toContain(type);
    }
    expect(metric(text, 'kiln_http_requests_total{route="/healthz",status="200"}')).toBe(1);
    expect(metric(text, 'kiln_http_requests_total{route="unmatched",status="404"}')).toBe(1);
    expect(metric(text, 'kiln_http_request_duration_seconds_count{route="/embed"}')).toBe(1);
    expect(metric(text, 'kiln_http_request_duration_seconds_bucket{route="/embed",le="+Inf"}')).toBe(1);
    expect(metric(text, 'kiln_batch_size_bucket{group="embed:doc",le="2"}')).toBe(0);
    expect(metric(text, 'kiln_batch_size_bucket{group="embed:doc",le="4"}')).toBe(1);
    expect(metric(text, 'kiln_texts_total{group="embed:doc"}')).toBe(3);
    expect(metric(text, 'kiln_queue_depth')).toBe(0);
    expect(metric(text, 'kiln_model_info{model="fake-cosine@000000000000",kind="two-tower",head="cosine",dimension="4"}')).toBe(1);
    await app.close();
  });

  it('GET /healthz turns 503 and names why once the model can no longer answer', async () => {
    const model = fakeModel(twoTowerCard());
    const app = build(model);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    // A ModelThread whose worker died reports it through `failure`.
    (model as { failure?: Error }).failure = new Error('the model thread exited (code 1)');
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(503);
    expect(health.json()).toEqual({ statusCode: 503, error: 'Service Unavailable', message: 'model unavailable: the model thread exited (code 1)' });
    await app.close();
  });

  it('close() answers the request in flight; /healthz behind it on the connection gets 503', async () => {
    const model = fakeModel(twoTowerCard());
    model.delayMs = 150;
    const app = build(model);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    // Raw HTTP/1.1 on one socket: the /healthz request is pipelined behind the slow /embed,
    // so it reaches the server after shutdown has begun (a new connection would be refused).
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const body = JSON.stringify({ texts: ['slow'] });
    socket.write(`POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await new Promise((r) => setTimeout(r, 50)); // the /embed request is in the model now
    const closed = app.close();
    await new Promise((r) => setTimeout(r, 10));
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await closed;
    await Promise.race([ended, new Promise((r) => setTimeout(r, 1000))]);
    socket.destroy();
    const statuses = [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    expect(statuses).toEqual([200, 503]);
    const firstBody = received.slice(received.indexOf('\r\n\r\n') + 4);
    expect(firstBody).toContain('"vectors":[[');
    expect(model.embedCalls.map((c) => c.texts)).toEqual([['slow']]);
  });
});

describe('the OpenAI-compatible routes with a stand-in model', () => {
  // The stand-in's id is fake-cosine@000000000000, so its run name is fake-cosine.
  const v1 = (app: FastifyInstance, payload: unknown) => post(app, '/v1/embeddings', payload);

  it('POST /v1/embeddings embeds on the query side by default, sharing model calls with POST /embed', async () => {
    const model = fakeModel(twoTowerCard());
    const app = build(model, { maxWaitMs: 5 });
    const [openai, embed] = await Promise.all([v1(app, { model: 'fake-cosine', input: ['data engineer', 'nurse'] }), post(app, '/embed', { texts: ['cook'], side: 'query' })]);
    expect(openai.statusCode, openai.body).toBe(200);
    expect(embed.statusCode, embed.body).toBe(200);
    const body = openai.json();
    expect(body).toEqual({
      object: 'list',
      data: [
        { object: 'embedding', index: 0, embedding: Array.from(fakeVector('data engineer', 'query')) },
        { object: 'embedding', index: 1, embedding: Array.from(fakeVector('nurse', 'query')) },
      ],
      model: 'fake-cosine@000000000000',
      usage: { prompt_tokens: 4 + 3, total_tokens: 4 + 3 }, // the stand-in counts [CLS] + words + [SEP]
    });
    expect(model.embedCalls).toEqual([{ texts: ['data engineer', 'nurse', 'cook'], request: { side: 'query', inputType: undefined } }]);

    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metric(metrics, 'kiln_http_requests_total{route="/v1/embeddings",status="200"}')).toBe(1);
    expect(metric(metrics, 'kiln_http_request_duration_seconds_count{route="/v1/embeddings"}')).toBe(1);
    expect(metric(metrics, 'kiln_texts_total{group="embed:query"}')).toBe(3);
    await app.close();
  });

  it('selects the side and prompt type by model-name suffix or by the body fields side and type', async () => {
    const model = fakeModel(twoTowerCard());
    const app = build(model);
    const embedding = async (payload: object) => {
      const reply = await v1(app, { input: 'nurse', ...payload });
      expect(reply.statusCode, reply.body).toBe(200);
      return reply.json().data[0].embedding as number[];
    };
    expect(await embedding({ model: 'fake-cosine:doc' })).toEqual(Array.from(fakeVector('nurse', 'doc')));
    expect(await embedding({ model: 'fake-cosine@000000000000:query:title' })).toEqual(Array.from(fakeVector('nurse', 'query', 'title')));
    expect(await embedding({ model: 'fake-cosine', side: 'doc', type: 'title' })).toEqual(Array.from(fakeVector('nurse', 'doc', 'title')));
    expect(await embedding({ model: 'fake-cosine:doc', side: 'doc' })).toEqual(Array.from(fakeVector('nurse', 'doc')));
    await app.close();
  });

  it('accepts --served-model-name aliases and lists every name on GET /v1/models', async () => {
    const app = build(fakeModel(twoTowerCard()), { modelNames: ['text-embedding-3-small'] });
    const models = await app.inject({ method: 'GET', url: '/v1/models' });
    expect(models.json()).toEqual({
      object: 'list',
      data: ['fake-cosine@000000000000', 'fake-cosine', 'text-embedding-3-small'].map((id) => ({ id, object: 'model', created: Date.parse('2026-01-01T00:00:00.000Z') / 1000, owned_by: 'kiln' })),
    });
    expect((await v1(app, { model: 'text-embedding-3-small:doc', input: 'a' })).statusCode).toBe(200);
    const one = await app.inject({ method: 'GET', url: `/v1/models/${encodeURIComponent('fake-cosine:doc')}` });
    expect(one.json()).toEqual({ id: 'fake-cosine:doc', object: 'model', created: Date.parse('2026-01-01T00:00:00.000Z') / 1000, owned_by: 'kiln' });
    const missing = await app.inject({ method: 'GET', url: '/v1/models/gpt-4' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('model_not_found');
    await app.close();
  });

  it('returns base64 as the little-endian float32 bytes of the vector', async () => {
    const app = build(fakeModel(twoTowerCard()));
    const reply = await v1(app, { model: 'fake-cosine', input: ['nurse'], encoding_format: 'base64' });
    const bytes = Buffer.from(reply.json().data[0].embedding as string, 'base64');
    expect(bytes.length).toBe(4 * 4);
    expect(Array.from({ length: 4 }, (_, i) => bytes.readFloatLE(4 * i))).toEqual(Array.from(fakeVector('nurse', 'query')));
    await app.close();
  });

  const MODEL_LIST = '`fake-cosine@000000000000`, `fake-cosine`';
  it.each([
    ['no input', { model: 'fake-cosine' }, 400, 'input: expected a string or an array of strings, got nothing', 'input', null],
    ['an empty string', { model: 'fake-cosine', input: '' }, 400, 'input: expected a non-empty string, got an empty string', 'input', null],
    ['an empty array', { model: 'fake-cosine', input: [] }, 400, 'input: expected at least one text, got an empty array', 'input', null],
    ['an empty string in the list', { model: 'fake-cosine', input: ['a', ''] }, 400, 'input[1]: expected a non-empty string, got an empty string', 'input', null],
    ['a number in the list', { model: 'fake-cosine', input: ['a', 7] }, 400, 'input[1]: expected a non-empty string, got number 7', 'input', null],
    ['token ids', { model: 'fake-cosine', input: [101, 2023, 102] }, 400, "input: token-id arrays are not supported: kiln serve tokenizes text with the model's own tokenizer; send the text as a string or an array of strings", 'input', null],
    ['lists of token ids', { model: 'fake-cosine', input: [[101, 102]] }, 400, 'input: token-id arrays are not supported', 'input', null],
    ['too many inputs', { model: 'fake-cosine', input: Array.from({ length: 9 }, (_, i) => `t${i}`) }, 400, 'input: 9 inputs exceed the limit of 8 per request (--max-texts); split the request', 'input', null],
    ['no model', { input: 'a' }, 400, "model: expected the served model's name (GET /v1/models lists it), got nothing", 'model', null],
    ['another model', { model: 'text-embedding-3-small', input: 'a' }, 404, `The model \`text-embedding-3-small\` does not exist: this server serves ${MODEL_LIST} (GET /v1/models); add :doc for the document side, e.g. \`fake-cosine@000000000000:doc\``, 'model', 'model_not_found'],
    ['an unknown side suffix', { model: 'fake-cosine:passage', input: 'a' }, 404, 'The model `fake-cosine:passage` does not exist: after `fake-cosine:` expected the side, query or doc (e.g. `fake-cosine:doc`), got `passage`', 'model', 'model_not_found'],
    ['an unknown prompt-type suffix', { model: 'fake-cosine:query:skill', input: 'a' }, 404, 'The model `fake-cosine:query:skill` does not exist: `skill` is not a prompt type of `fake-cosine`; its prompt types are `title`', 'model', 'model_not_found'],
    ['a suffix and side that disagree', { model: 'fake-cosine:doc', input: 'a', side: 'query' }, 400, 'side: the model name selects the doc side but side is "query"; give one of them', 'side', null],
    ['an unknown type', { model: 'fake-cosine', input: 'a', type: 'skill' }, 400, 'type: "skill" is not a prompt type of this model; expected one of "title" (or omit type)', 'type', null],
    ['a bad encoding_format', { model: 'fake-cosine', input: 'a', encoding_format: 'int8' }, 400, 'encoding_format: expected "float" or "base64", got the string "int8"', 'encoding_format', null],
    ['other dimensions', { model: 'fake-cosine', input: 'a', dimensions: 2 }, 400, "dimensions: this model's embeddings have 4 dimensions and cannot be shortened (Kiln models are not trained for truncated, Matryoshka-style vectors); omit dimensions or send 4", 'dimensions', null],
    ['an unknown field', { model: 'fake-cosine', input: 'a', input_type: 'query' }, 400, 'body: unknown field "input_type"; expected input, model, encoding_format, dimensions, user (OpenAI) or side, type (Kiln)', 'input_type', null],
  ])('POST /v1/embeddings with %s is an OpenAI error naming the field', async (_name, payload, status, message, param, code) => {
    const model = fakeModel(twoTowerCard());
    const app = build(model, { maxTexts: 8 });
    const reply = await v1(app, payload);
    expect(reply.statusCode).toBe(status);
    const { error } = reply.json() as { error: { message: string; type: string; param: string | null; code: string | null } };
    expect(error.message).toContain(message);
    expect(error).toEqual({ message: error.message, type: 'invalid_request_error', param, code });
    expect(model.embedCalls).toHaveLength(0);
    await app.close();
  });

  it('answers the limits, failures and unknown routes under /v1/ in OpenAI\'s shape, with /embed\'s statuses', async () => {
    const model = fakeModel(twoTowerCard());
    const app = build(model, { maxBodyBytes: 1000, maxQueue: 2, maxBatch: 1, maxWaitMs: 0 });
    const error = (reply: { json(): unknown }) => (reply.json() as { error: Record<string, unknown> }).error;

    const tooBig = await v1(app, { model: 'fake-cosine', input: 'x'.repeat(2000) });
    expect(tooBig.statusCode).toBe(413);
    expect(error(tooBig)).toEqual({ message: 'body: larger than the limit of 1000 bytes (--max-body-bytes); send fewer or shorter texts per request', type: 'invalid_request_error', param: null, code: null });

    const notJson = await app.inject({ method: 'POST', url: '/v1/embeddings', payload: '{"input": ', headers: { 'content-type': 'application/json' } });
    expect(notJson.statusCode).toBe(400);
    expect(error(notJson).message).toMatch(/^body: expected a JSON object/);

    const form = await app.inject({ method: 'POST', url: '/v1/embeddings', payload: 'input=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.statusCode).toBe(415);
    expect(error(form).type).toBe('invalid_request_error');

    const chat = await post(app, '/v1/chat/completions', { model: 'fake-cosine', messages: [] });
    expect(chat.statusCode).toBe(404);
    expect(error(chat)).toEqual({ message: 'Route POST:/v1/chat/completions not found; the OpenAI-compatible routes here are POST /v1/embeddings and GET /v1/models', type: 'invalid_request_error', param: null, code: 'unknown_url' });
    expect((await app.inject({ method: 'GET', url: '/nope' })).json()).toEqual({ statusCode: 404, error: 'Not Found', message: 'Route GET:/nope not found' });

    model.delayMs = 50; // the first call holds the model while the next request queues
    const first = v1(app, { model: 'fake-cosine', input: ['a'] });
    await new Promise((r) => setTimeout(r, 10));
    const queued = v1(app, { model: 'fake-cosine', input: ['b', 'c'] }); // 2 queued: the limit
    await new Promise((r) => setTimeout(r, 5));
    const refused = await v1(app, { model: 'fake-cosine', input: 'd' });
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(error(refused)).toEqual({ message: 'overloaded: 2 texts are queued (limit 2, --max-queue); retry shortly', type: 'server_error', param: null, code: 'overloaded' });
    expect((await first).statusCode).toBe(200);
    expect((await queued).statusCode).toBe(200);

    model.delayMs = 0;
    model.failNext = true;
    const failed = await v1(app, { model: 'fake-cosine', input: 'e' });
    expect(failed.statusCode).toBe(500);
    expect(error(failed)).toEqual({ message: 'internal error: onnxruntime: simulated failure', type: 'server_error', param: null, code: null });

    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metric(metrics, 'kiln_overload_rejections_total')).toBe(1);
    expect(metric(metrics, 'kiln_http_requests_total{route="/v1/embeddings",status="503"}')).toBe(1);
    expect(metric(metrics, 'kiln_http_requests_total{route="/v1/embeddings",status="500"}')).toBe(1);
    expect(metric(metrics, 'kiln_http_requests_total{route="unmatched",status="404"}')).toBe(2);
    await app.close();
  });

  it('refuses embeddings of a cross-encoder, which it still lists', async () => {
    const app = build(fakeModel(crossCard));
    expect((await app.inject({ method: 'GET', url: '/v1/models' })).json().data.map((m: { id: string }) => m.id)).toEqual(['fake-cross@000000000000', 'fake-cross']);
    const reply = await v1(app, { model: 'fake-cross', input: 'a' });
    expect(reply.statusCode).toBe(400);
    expect(reply.json().error).toMatchObject({ param: 'model', code: 'model_not_embedding' });
    expect(reply.json().error.message).toContain('is a cross-encoder: it scores (query, doc) pairs and has no embeddings; use POST /score');
    await app.close();
  });
});

describe('kiln serve with a stand-in cross-encoder', () => {
  it('POST /score returns the model scores, batching pairs across requests', async () => {
    const model = fakeModel(crossCard);
    const app = build(model, { maxWaitMs: 5 });
    const [a, b] = await Promise.all([post(app, '/score', { pairs: [['query', 'doc one'], ['q', 'd']] }), post(app, '/score', { query: 'nurse', docs: ['registered nurse'] })]);
    expect(a.json()).toEqual({ model: 'fake-cross@000000000000', scores: [Math.fround(5 - 0.7), Math.fround(1 - 0.1)] });
    expect(b.json().scores).toEqual([Math.fround(5 - 1.6)]);
    expect(model.scoreCalls).toHaveLength(1);
    await app.close();
  });

  it.each([
    ['pairs not an array', { pairs: 'a,b' }, 'pairs: expected an array of [query, doc] pairs, got the string "a,b"'],
    ['a short pair', { pairs: [['a', 'b'], ['c']] }, 'pairs[1]: expected a [query, doc] pair of non-empty strings'],
    ['an empty doc', { pairs: [['a', '']] }, 'pairs[0][1]: expected a non-empty string, got an empty string'],
    ['both forms', { pairs: [['a', 'b']], query: 'a', docs: ['b'] }, 'body: give either "pairs" or "query" with "docs", not both'],
    ['docs without query', { docs: ['b'] }, 'body: expected {"pairs": [["query", "doc"], ...]} or {"query": "...", "docs": [...]} (query is missing)'],
    ['a bad doc', { query: 'a', docs: ['b', 4] }, 'docs[1]: expected a non-empty string, got number 4'],
    ['too many pairs', { pairs: Array.from({ length: 9 }, () => ['a', 'b']) }, 'pairs: 9 pairs exceed the limit of 8 per request (--max-texts)'],
  ])('POST /score with %s is a 400 naming the field', async (_name, payload, message) => {
    const app = build(fakeModel(crossCard), { maxTexts: 8 });
    const reply = await post(app, '/score', payload);
    expect(reply.statusCode).toBe(400);
    expect(reply.json().message).toContain(message);
    await app.close();
  });

  it('POST /embed on a cross-encoder is a 400 pointing at /score', async () => {
    const app = build(fakeModel(crossCard));
    const reply = await post(app, '/embed', { texts: ['a'] });
    expect(reply.statusCode).toBe(400);
    expect(reply.json().message).toContain('is a cross-encoder');
    expect(reply.json().message).toContain('use POST /score');
    await app.close();
  });
});

describe('the metrics (prom-client)', () => {
  const info = { model: 'a@000000000000', kind: 'two-tower', head: 'cosine', dimension: 4 };

  it('keeps each server\'s metrics in its own registry, never prom-client\'s global one', async () => {
    const first = new ServerMetrics(info, () => 0);
    const second = new ServerMetrics({ ...info, model: 'b@000000000000' }, () => 0); // same names: no "already registered"
    first.response('/embed', 200, 0.004);
    first.response('/embed', 200, 0.02);
    second.response('/embed', 400, 0.001);
    const one = await first.render();
    const two = await second.render();
    expect(metric(one, 'kiln_http_requests_total{route="/embed",status="200"}')).toBe(2);
    expect(metric(one, 'kiln_http_requests_total{route="/embed",status="400"}')).toBeUndefined();
    expect(metric(two, 'kiln_http_requests_total{route="/embed",status="400"}')).toBe(1);
    expect(metric(one, 'kiln_model_info{model="a@000000000000",kind="two-tower",head="cosine",dimension="4"}')).toBe(1);
    expect(metric(two, 'kiln_model_info{model="a@000000000000",kind="two-tower",head="cosine",dimension="4"}')).toBeUndefined();
    expect(await promClientDefaultRegistry.metrics()).not.toContain('kiln_');
  });

  it('renders cumulative histogram buckets, escaped label values and the queue depth read at scrape time', async () => {
    let depth = 3;
    const metrics = new ServerMetrics({ ...info, model: 'x"y\\z\n' }, () => depth);
    for (const size of [1, 3, 3, 2000]) metrics.modelCall({ group: 'embed:doc', size, requests: 1, durationMs: 5 });
    metrics.modelCall({ group: 'embed:doc', size: 2, requests: 2, durationMs: 1, error: new Error('boom') });
    metrics.overloadRejected();
    depth = 4;
    const text = await metrics.render();
    expect(metrics.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(metric(text, 'kiln_batch_size_bucket{group="embed:doc",le="1"}')).toBe(1);
    expect(metric(text, 'kiln_batch_size_bucket{group="embed:doc",le="2"}')).toBe(2); // the failed call's 2 counts too
    expect(metric(text, 'kiln_batch_size_bucket{group="embed:doc",le="4"}')).toBe(4);
    expect(metric(text, 'kiln_batch_size_bucket{group="embed:doc",le="1024"}')).toBe(4);
    expect(metric(text, 'kiln_batch_size_bucket{group="embed:doc",le="+Inf"}')).toBe(5);
    expect(metric(text, 'kiln_batch_size_sum{group="embed:doc"}')).toBe(2009);
    expect(metric(text, 'kiln_model_call_duration_seconds_sum{group="embed:doc"}')).toBeCloseTo(0.021, 9);
    expect(metric(text, 'kiln_texts_total{group="embed:doc"}')).toBe(2007); // successful calls only
    expect(metric(text, 'kiln_model_call_errors_total{group="embed:doc"}')).toBe(1);
    expect(metric(text, 'kiln_overload_rejections_total')).toBe(1);
    expect(metric(text, 'kiln_queue_depth')).toBe(4);
    expect(text).toContain('kiln_model_info{model="x\\"y\\\\z\\n",kind="two-tower",head="cosine",dimension="4"} 1');
  });
});

// --- end to end on tiny exported models ----------------------------------------------------------

describe('kiln serve on tiny exported ONNX models', () => {
  let dirs: { twoTower: string; crossEncoder: string };
  let twoTower: ExportedModel;
  let cross: ExportedModel;

  beforeAll(async () => {
    const { exportedTinyModels } = await import('../helpers/exported-model.js');
    dirs = await exportedTinyModels();
    twoTower = await ExportedModel.load(dirs.twoTower, { threads: 1 });
    cross = await ExportedModel.load(dirs.crossEncoder, { threads: 1 });
  });
  afterAll(async () => {
    await twoTower?.release();
    await cross?.release();
  });

  const TITLES = ['Internship Digital Marketer', 'Marketing Executive', 'registered nurse', 'Senior Java Developer (m/w/d)', 'cook', 'Lagerhelfer', 'data engineer', 'HGV driver class 1'];

  it('POST /embed equals ExportedModel.embed of the same texts, side and type', async () => {
    const app = build(twoTower);
    for (const request of [{}, { side: 'query' as const }, { side: 'query' as const, type: 'title' }]) {
      const reply = await post(app, '/embed', { texts: TITLES, ...request });
      expect(reply.statusCode, reply.body).toBe(200);
      const body = reply.json() as { model: string; dimension: number; vectors: number[][] };
      expect(body.model).toBe(twoTower.modelId);
      expect(body.dimension).toBe(twoTower.dimension);
      const expected = await twoTower.embed(TITLES, { side: request.side, inputType: 'type' in request ? request.type : undefined });
      expectVectors(body.vectors, expected, 1e-6);
    }
    await app.close();
  });

  it('merges 20 parallel requests into fewer model calls, each getting its own vectors', async () => {
    const app = build(twoTower, { maxWaitMs: 5, maxBatch: 64 });
    const requests = Array.from({ length: 20 }, (_, i) => [TITLES[i % TITLES.length]!, `${TITLES[(i * 3) % TITLES.length]!} ${i}`].slice(0, 1 + (i % 2)));
    const replies = await Promise.all(requests.map((texts) => post(app, '/embed', { texts, side: 'query' })));
    const expected = await twoTower.embed(requests.flat(), { side: 'query' });
    let row = 0;
    for (const [i, reply] of replies.entries()) {
      expect(reply.statusCode, reply.body).toBe(200);
      expectVectors(reply.json().vectors, expected.slice(row, row + requests[i]!.length), 1e-6);
      row += requests[i]!.length;
    }
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    const calls = metric(metrics, 'kiln_batch_size_count{group="embed:query"}')!;
    expect(calls).toBeGreaterThanOrEqual(1);
    expect(calls).toBeLessThan(20);
    expect(metric(metrics, 'kiln_batch_size_sum{group="embed:query"}')).toBe(requests.flat().length);
    await app.close();
  });

  it('POST /score on the two-tower model is the dot product of its query and doc vectors', async () => {
    const app = build(twoTower);
    const reply = await post(app, '/score', { query: 'registered nurse', docs: TITLES });
    expect(reply.statusCode, reply.body).toBe(200);
    const [q] = await twoTower.embed(['registered nurse'], { side: 'query' });
    const docs = await twoTower.embed(TITLES, { side: 'doc' });
    const expected = docs.map((d) => d.reduce((s, x, i) => s + x * q![i]!, 0));
    (reply.json().scores as number[]).forEach((s, i) => expect(Math.abs(s - expected[i]!)).toBeLessThanOrEqual(1e-6));
    await app.close();
  });

  it('POST /score applies the prompt types given as query_type and doc_type', async () => {
    const app = build(twoTower);
    const reply = await post(app, '/score', { query: 'registered nurse', docs: TITLES, query_type: 'title' });
    expect(reply.statusCode, reply.body).toBe(200);
    const [q] = await twoTower.embed(['registered nurse'], { side: 'query', inputType: 'title' });
    const docs = await twoTower.embed(TITLES, { side: 'doc' });
    const expected = docs.map((d) => d.reduce((s, x, i) => s + x * q![i]!, 0));
    (reply.json().scores as number[]).forEach((s, i) => expect(Math.abs(s - expected[i]!)).toBeLessThanOrEqual(1e-6));
    const untyped = (await post(app, '/score', { query: 'registered nurse', docs: TITLES })).json().scores as number[];
    expect(untyped[0]).not.toBeCloseTo(expected[0]!, 4); // the prompt changes what the query tower sees
    const bad = await post(app, '/score', { query: 'nurse', docs: ['cook'], doc_type: 'tilte' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toBe('doc_type: "tilte" is not a prompt type of this model; expected one of "title" (or omit type)');
    await app.close();
    const crossApp = build(cross);
    const refused = await post(crossApp, '/score', { query: 'nurse', docs: ['cook'], query_type: 'title' });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().message).toBe('query_type: a cross-encoder has no prompt types; omit it');
    await crossApp.close();
  });

  it('POST /score on the cross-encoder equals ExportedModel.score, and /embed is refused', async () => {
    const app = build(cross);
    const pairs = TITLES.map((t, i) => [t, TITLES[(i + 1) % TITLES.length]!] as [string, string]);
    const reply = await post(app, '/score', { pairs });
    expect(reply.statusCode, reply.body).toBe(200);
    expect(reply.json().model).toBe(cross.modelId);
    const expected = await cross.score(pairs);
    (reply.json().scores as number[]).forEach((s, i) => expect(Math.abs(s - expected[i]!)).toBeLessThanOrEqual(1e-6));
    expect((await post(app, '/embed', { texts: ['a'] })).statusCode).toBe(400);
    await app.close();
  });

  it('the CLI serves on the port it prints, answers, and exits 0 on SIGTERM', async () => {
    const bin = join(REPO_ROOT, 'bin', 'kiln.js');
    expect(existsSync(join(REPO_ROOT, 'dist', 'cli', 'commands', 'serve.js')), 'build first: npx tsc -p tsconfig.build.json').toBe(true);
    const child = spawn(process.execPath, [bin, 'serve', '--model', dirs.twoTower, '--port', '0', '--threads', '1', '--served-model-name', 'text-embedding-3-small'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (c: Buffer) => {
          stdout += c.toString();
          const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+)) \(model (\S+), two-tower cosine \d+-d;/m.exec(stdout);
          if (m !== null) resolve(m[1]!);
        });
        void exited.then((code) => reject(new Error(`kiln serve exited ${code} before listening: ${stderr}`)));
      });
      expect(url).not.toBe('http://127.0.0.1:0');
      const health = await fetch(`${url}/healthz`);
      expect(await health.json()).toEqual({ status: 'ok', model: twoTower.modelId });
      const reply = await fetch(`${url}/embed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ texts: ['cook'] }) });
      expect(reply.status).toBe(200);
      expectVectors(((await reply.json()) as { vectors: number[][] }).vectors, await twoTower.embed(['cook']), 1e-6);
      const runName = twoTower.modelId.slice(0, twoTower.modelId.lastIndexOf('@'));
      expect(stdout).toContain(`OpenAI-compatible API: ${url}/v1 (model ${twoTower.modelId}, ${runName}, text-embedding-3-small; add :doc for the document side)\n`);
      const openai = await fetch(`${url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'text-embedding-3-small', input: 'cook' }) });
      expect(openai.status).toBe(200);
      const embedded = (await openai.json()) as { data: { embedding: number[] }[] };
      expectVectors([embedded.data[0]!.embedding], await twoTower.embed(['cook'], { side: 'query' }), 1e-6);
      child.kill('SIGTERM');
      expect(await exited, stderr).toBe(0);
      expect(stdout).toContain('SIGTERM: draining in-flight requests, then stopping\nstopped\n');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('the CLI exits 2 on bad arguments', async () => {
    const bin = join(REPO_ROOT, 'bin', 'kiln.js');
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [bin, 'serve', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.on('exit', (code) => resolve({ code, stderr }));
      });
    // Each CLI start costs ~2 s (it loads every command): two cases only.
    const [noModel, badBatch] = await Promise.all([
      run(['--model', join(REPO_ROOT, 'no-such-dir')]),
      run(['--model', dirs.twoTower, '--max-batch', '0']),
    ]);
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toContain('no model.json there; expected a directory written by `kiln export`');
    expect(badBatch.code).toBe(2);
    expect(badBatch.stderr).toContain('--max-batch must be an integer ≥ 1, got 0');
  });
});
