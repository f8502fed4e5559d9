/**
 * The served model in a worker thread (src/serve/model-thread.ts) and the two bodies POST /embed
 * writes (src/serve/vector-encoding.ts).
 *
 * The thread must compute exactly what the model computes on the calling thread (the same
 * onnxruntime graphs, so the same bits), and say why when it cannot. The JSON body's numbers,
 * rounded to float32, must be the vectors' bits, and the binary body the vectors' float32 bytes,
 * little-endian.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ExportedModel } from '../../src/serve/exported-model.js';
import { ModelThread } from '../../src/serve/model-thread.js';
import { buildServer, startServer } from '../../src/serve/server.js';
import { embeddingsFloat32, embeddingsJson, vectorJson } from '../../src/serve/vector-encoding.js';

const TITLES = ['Internship Digital Marketer', 'Marketing Executive', 'registered nurse', 'Senior Java Developer (m/w/d)', 'cook', 'Lagerhelfer', 'data engineer'];

describe('the vector bodies of POST /embed', () => {
  it('writes JSON whose numbers, rounded to float32, are the vectors\' values, with 9 significant digits', () => {
    const vectors = [
      Float32Array.from([0.1, -0.25, 1 / 3, 0]),
      // exponents, the float32 extremes (largest, smallest normal, smallest subnormal), and -0
      Float32Array.from([1e-8, -3.4028234663852886e38, 1.1754943508222875e-38, 1.401298464324817e-45, -0]),
      Float32Array.from({ length: 256 }, (_, i) => Math.sin(i * 12.9898) * 0.2),
    ];
    const text = embeddingsJson('m@"1"', 4, vectors);
    const parsed = JSON.parse(text) as { model: string; dimension: number; vectors: number[][] };
    expect(parsed.model).toBe('m@"1"');
    expect(parsed.dimension).toBe(4);
    expect(parsed.vectors.map((row) => Float32Array.from(row))).toEqual(vectors.map((v) => Float32Array.from(v, (x) => (Object.is(x, -0) ? 0 : x))));
    // What a float32 needs and no more: 0.1f is 0.100000001 (JSON.stringify writes 0.10000000149011612).
    expect(vectorJson(Float32Array.from([0.1, 1, -2.5e-7]))).toBe('[0.100000001,1.00000000,-2.49999999e-7]');
    // Nine digits identify every float32: random bit patterns survive the text.
    const bits = new Uint32Array(20_000);
    for (let i = 0; i < bits.length; i++) bits[i] = (Math.imul(i + 1, 2654435761) ^ (i << 7)) >>> 0;
    const random = new Float32Array(bits.buffer).filter((x) => Number.isFinite(x));
    expect(Float32Array.from(JSON.parse(vectorJson(random)) as number[])).toEqual(random.map((x) => (Object.is(x, -0) ? 0 : x)));
  });

  it('writes NaN and infinities as null, as JSON.stringify does', () => {
    const broken = Float32Array.from([Number.NaN, Infinity, -Infinity, 0.5]);
    expect(vectorJson(broken)).toBe('[null,null,null,0.500000000]');
    expect(JSON.parse(embeddingsJson('m', 4, [broken]))).toEqual({ model: 'm', dimension: 4, vectors: [[null, null, null, 0.5]] });
  });

  it('writes the float32 body as little-endian bytes, row after row', () => {
    const backing = Float32Array.from([9, 9, 1.5, -2, 0.125, 3, 9]);
    const rows = [backing.subarray(2, 4), backing.subarray(4, 6)]; // views at an offset into a larger buffer
    const body = embeddingsFloat32(2, rows);
    expect(body.length).toBe(16);
    expect([0, 4, 8, 12].map((offset) => body.readFloatLE(offset))).toEqual([1.5, -2, 0.125, 3]);
    expect(() => embeddingsFloat32(3, rows)).toThrow('vector 0 has 2 values, expected 3');
  });
});

describe('ModelThread on tiny exported ONNX models', () => {
  let dirs: { twoTower: string; crossEncoder: string };
  let local: ExportedModel;
  let localCross: ExportedModel;
  let threaded: ModelThread;
  let threadedCross: ModelThread;

  beforeAll(async () => {
    const { exportedTinyModels } = await import('../helpers/exported-model.js');
    dirs = await exportedTinyModels();
    [local, localCross, threaded, threadedCross] = await Promise.all([
      ExportedModel.load(dirs.twoTower, { threads: 1 }),
      ExportedModel.load(dirs.crossEncoder, { threads: 1 }),
      ModelThread.load(dirs.twoTower, { threads: 1 }),
      ModelThread.load(dirs.crossEncoder, { threads: 1 }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([local?.release(), localCross?.release(), threaded?.release(), threadedCross?.release()]);
  });

  it('embeds exactly what the model computes on the calling thread, for each side and prompt type', async () => {
    expect(threaded.modelId).toBe(local.modelId);
    expect(threaded.dimension).toBe(local.dimension);
    for (const request of [{}, { side: 'query' as const }, { side: 'query' as const, inputType: 'title' }]) {
      const [mine, theirs] = await Promise.all([threaded.embed(TITLES, request), local.embed(TITLES, request)]);
      expect(mine).toHaveLength(TITLES.length);
      mine.forEach((vector, i) => expect(Array.from(vector), `${JSON.stringify(request)} text ${i}`).toEqual(Array.from(theirs[i]!)));
    }
    expect(threaded.tokenCounts(TITLES, { side: 'query', inputType: 'title' })).toEqual(local.tokenCounts(TITLES, { side: 'query', inputType: 'title' }));
  });

  it('answers concurrent calls each with its own vectors', async () => {
    const calls = TITLES.map((title, i) => threaded.embed([title, TITLES[(i + 2) % TITLES.length]!], { side: 'doc' }));
    const expected = await local.embed(TITLES.flatMap((title, i) => [title, TITLES[(i + 2) % TITLES.length]!]), { side: 'doc' });
    (await Promise.all(calls)).forEach((pair, i) => {
      expect(Array.from(pair[0]!)).toEqual(Array.from(expected[2 * i]!));
      expect(Array.from(pair[1]!)).toEqual(Array.from(expected[2 * i + 1]!));
    });
  });

  it('gives the same vectors however a call is cut into runs, and with spinning off on 2 threads (kiln serve --no-spin)', async () => {
    const texts = [...TITLES, 'a much longer job title for a senior full stack software engineer in the platform team'];
    const alone = await Promise.all(texts.map(async (t) => (await local.embed([t], { side: 'query' }))[0]!));
    const planned = await local.embed(texts, { side: 'query' }); // the default plan: the long title in a run of its own
    const oneRun = await ExportedModel.load(dirs.twoTower, { threads: 1, runOverheadTokens: 1e9 });
    const noSpin = await ExportedModel.load(dirs.twoTower, { threads: 2, spinning: false });
    try {
      for (const [name, vectors] of [['planned', planned], ['one run', await oneRun.embed(texts, { side: 'query' })], ['no spinning', await noSpin.embed(texts, { side: 'query' })]] as const) {
        vectors.forEach((v, i) => expect(Math.max(...v.map((x, j) => Math.abs(x - alone[i]![j]!))), `${name} text ${i}`).toBeLessThan(1e-6));
      }
    } finally {
      await Promise.all([oneRun.release(), noSpin.release()]);
    }
  });

  it('scores pairs exactly as the cross-encoder does on the calling thread', async () => {
    const pairs = TITLES.map((t, i) => [t, TITLES[(i + 1) % TITLES.length]!] as [string, string]);
    expect(Array.from(await threadedCross.score(pairs))).toEqual(Array.from(await localCross.score(pairs)));
  });

  it('says what a model kind cannot do, without asking the thread', async () => {
    await expect(threadedCross.embed(['cook'])).rejects.toThrow('a cross-encoder scores pairs and has no embeddings; use score()');
    await expect(threaded.score([['cook', 'chef']])).rejects.toThrow('a two-tower model has no pair score graph');
  });

  it('names the directory when the export cannot be loaded', async () => {
    await expect(ModelThread.load('/nonexistent/export')).rejects.toThrow('/nonexistent/export/model.json: cannot read the model card');
  });

  it('rejects calls after release, and release ends the worker', async () => {
    const model = await ModelThread.load(dirs.twoTower, { threads: 1 });
    const pending = model.embed(['cook']); // sent before the release: still answered
    await model.release();
    expect((await pending)[0]).toHaveLength(model.dimension);
    await expect(model.embed(['cook'])).rejects.toThrow('the model thread has been released');
    // A release is not a failure: /healthz reads `failure` only for a thread that died.
    expect(model.failure).toBeUndefined();
    expect(threaded.failure).toBeUndefined();
  });
});

describe('POST /embed content negotiation and the served model thread', () => {
  let dirs: { twoTower: string; crossEncoder: string };
  let local: ExportedModel;
  beforeAll(async () => {
    const { exportedTinyModels } = await import('../helpers/exported-model.js');
    dirs = await exportedTinyModels();
    local = await ExportedModel.load(dirs.twoTower, { threads: 1 });
  });
  afterAll(async () => {
    await local?.release();
  });

  it('writes raw float32 when Accept prefers application/octet-stream, JSON otherwise', async () => {
    const app = buildServer(local, { maxWaitMs: 0, log: () => {} });
    const texts = TITLES.slice(0, 3);
    const expected = await local.embed(texts, { side: 'query' });
    const embed = (accept?: string) =>
      app.inject({ method: 'POST', url: '/embed', payload: { texts, side: 'query' }, headers: accept === undefined ? {} : { accept } });

    const binary = await embed('application/octet-stream');
    expect(binary.statusCode).toBe(200);
    expect(binary.headers['content-type']).toBe('application/octet-stream');
    expect(binary.headers['x-kiln-model']).toBe(local.modelId);
    expect(binary.headers['x-kiln-dimension']).toBe(String(local.dimension));
    expect(binary.headers['x-kiln-count']).toBe('3');
    expect(binary.headers['vary']).toMatch(/accept/i);
    const raw = binary.rawPayload;
    expect(raw.length).toBe(3 * local.dimension * 4);
    const decoded = Array.from({ length: 3 }, (_, row) => Array.from({ length: local.dimension }, (_, i) => raw.readFloatLE((row * local.dimension + i) * 4)));
    expect(decoded).toEqual(expected.map((v) => Array.from(v)));

    for (const accept of [undefined, 'application/json', '*/*', 'text/html', 'application/octet-stream;q=0.5, application/json', 'application/json, application/octet-stream']) {
      const reply = await embed(accept);
      expect(reply.headers['content-type'], String(accept)).toBe('application/json; charset=utf-8');
      const body = reply.json() as { model: string; dimension: number; vectors: number[][] };
      expect({ ...body, vectors: body.vectors.map((row) => Array.from(Float32Array.from(row))) }).toEqual({ model: local.modelId, dimension: local.dimension, vectors: expected.map((v) => Array.from(v)) });
    }
    expect((await embed('application/json;q=0.2, application/octet-stream')).headers['content-type']).toBe('application/octet-stream');
    await app.close();
  });

  it('serves the same vectors with the model in a worker thread (the default) as on the HTTP thread', async () => {
    const inThread = await startServer({ modelDir: dirs.twoTower, port: 0, threads: 1, maxWaitMs: 0 });
    const onHttpThread = await startServer({ modelDir: dirs.twoTower, port: 0, threads: 1, maxWaitMs: 0, modelThread: false });
    try {
      expect(inThread.model).toBeInstanceOf(ModelThread);
      expect(onHttpThread.model).toBeInstanceOf(ExportedModel);
      const embed = async (url: string) => {
        const reply = await fetch(`${url}/embed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ texts: TITLES, side: 'doc' }) });
        expect(reply.status).toBe(200);
        return ((await reply.json()) as { vectors: number[][] }).vectors;
      };
      const [a, b] = await Promise.all([embed(inThread.url), embed(onHttpThread.url)]);
      expect(a).toEqual(b);
      // JSON numbers, rounded to float32, are the model's bits.
      expect(a.map((row) => Array.from(Float32Array.from(row)))).toEqual((await local.embed(TITLES, { side: 'doc' })).map((v) => Array.from(v)));
    } finally {
      await inThread.close();
      await onHttpThread.close();
    }
  });
});
