/**
 * `kiln serve`'s OpenAI-compatible POST /v1/embeddings and GET /v1/models (src/serve/openai-compat.ts,
 * src/serve/server.ts), driven by the real `openai` npm package as the client, against the tiny
 * exported two-tower model of test/helpers/exported-model.ts served on a loopback port.
 *
 * Spec: OpenAI API reference, "Create embeddings" (https://platform.openai.com/docs/api-reference/embeddings/create).
 *
 * What the package does (openai 6.x, resources/embeddings.js): without `encoding_format` it asks
 * for "base64" and decodes the little-endian float32 bytes to number[] itself; with an explicit
 * "float" or "base64" it sends that and returns the response untouched. A recording `fetch`
 * checks what it sent. Error statuses become its classes (400 BadRequestError, 404
 * NotFoundError, ...) whose message is "<status> <error.message>".
 *
 * Token counts are worked out by hand from the BERT-uncased vocabulary the tiny model uses
 * (checked with WordPieceTokenizer.encode): [CLS] and [SEP] count, the prompt template counts,
 * and truncation to the side's maxLength (query 24, doc 16 in the tiny model) applies.
 */
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { FastifyInstance } from 'fastify';
import OpenAI from 'openai';

import { ExportedModel } from '../../src/serve/exported-model.js';
import { buildServer } from '../../src/serve/server.js';

const MAX_TEXTS = 8;
/** 27 words: 29 tokens with [CLS] and [SEP], so truncated on both sides. */
const LONG = 'the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog the quick brown fox jumps over the lazy dog';

describe('POST /v1/embeddings through the openai package', () => {
  let model: ExportedModel;
  let app: FastifyInstance;
  let client: OpenAI;
  /** The run name: the model id before "@", one of the names it is served under. */
  let runName: string;
  /** JSON bodies the client sent, in order. */
  const sent: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    const { exportedTinyModels } = await import('../helpers/exported-model.js');
    model = await ExportedModel.load((await exportedTinyModels()).twoTower, { threads: 1 });
    runName = model.modelId.slice(0, model.modelId.lastIndexOf('@'));
    app = buildServer(model, { maxTexts: MAX_TEXTS, maxWaitMs: 0, log: () => {} });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    client = new OpenAI({
      baseURL: `http://127.0.0.1:${port}/v1`,
      apiKey: 'unused', // kiln serve has no authentication; the package insists on a key
      maxRetries: 0, // a retried error would hide which request failed
      fetch: async (url, init) => {
        if (typeof init?.body === 'string') sent.push(JSON.parse(init.body) as Record<string, unknown>);
        return fetch(url, init);
      },
    });
  });
  afterAll(async () => {
    await app?.close();
    await model?.release();
  });

  /** POST /embed's vectors for the same texts (the reference every answer is compared with). */
  async function embedVectors(texts: string[], side: 'query' | 'doc', type?: string): Promise<number[][]> {
    const reply = await app.inject({ method: 'POST', url: '/embed', payload: { texts, side, ...(type === undefined ? {} : { type }) } });
    expect(reply.statusCode, reply.body).toBe(200);
    // Rounded to float32: /embed prints 9 significant digits, enough to give back the float32 bits.
    return (reply.json() as { vectors: number[][] }).vectors.map((row) => Array.from(Float32Array.from(row)));
  }

  /** Equal within 1e-6 per value: the same texts in differently padded batches differ in the last float32 bits. */
  function expectClose(actual: number[], expected: number[]): void {
    expect(actual).toHaveLength(expected.length);
    actual.forEach((x, i) => expect(Math.abs(x - expected[i]!), `value ${i}`).toBeLessThanOrEqual(1e-6));
  }

  /** The error a request rejects with. */
  async function failure(request: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
    try {
      await request;
    } catch (error) {
      expect(error).toBeInstanceOf(OpenAI.APIError);
      return error as InstanceType<typeof OpenAI.APIError>;
    }
    throw new Error('expected the request to fail');
  }

  it('GET /v1/models lists the model id and run name; models.retrieve knows the side suffixes', async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => [m.id, m.object, m.owned_by])).toEqual([
      [model.modelId, 'model', 'kiln'],
      [runName, 'model', 'kiln'],
    ]);
    expect((await client.models.retrieve(`${runName}:doc`)).id).toBe(`${runName}:doc`);
    const missing = await failure(client.models.retrieve('text-embedding-3-small'));
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect(missing.code).toBe('model_not_found');
  });

  it('one text with the package defaults: it asks for base64 and decodes it to the query-side vector', async () => {
    const response = await client.embeddings.create({ model: runName, input: 'data engineer' });
    expect(sent.at(-1)).toEqual({ model: runName, input: 'data engineer', encoding_format: 'base64' });
    expect(response.object).toBe('list');
    expect(response.model).toBe(model.modelId);
    expect(response.data).toHaveLength(1);
    expect(response.data[0]!.object).toBe('embedding');
    expect(response.data[0]!.index).toBe(0);
    expect(response.data[0]!.embedding).toHaveLength(model.dimension);
    // The same text in the same batch, float32 both ways (base64 bytes here, JSON numbers from
    // /embed): exactly equal.
    expect(response.data[0]!.embedding).toEqual((await embedVectors(['data engineer'], 'query'))[0]);
    // [CLS] data engineer [SEP]
    expect(response.usage).toEqual({ prompt_tokens: 4, total_tokens: 4 });
  });

  it('a list with encoding_format float: sent as asked, one vector per text in order, tokens summed', async () => {
    const input = ['registered nurse', 'cook', 'Senior Java Developer (m/w/d)'];
    const response = await client.embeddings.create({ model: model.modelId, input, encoding_format: 'float' });
    expect(sent.at(-1)).toMatchObject({ encoding_format: 'float' });
    expect(response.data.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(response.data.map((d) => d.embedding)).toEqual(await embedVectors(input, 'query'));
    // [CLS] registered nurse [SEP] = 4; [CLS] cook [SEP] = 3;
    // [CLS] senior java developer ( m / w / d ) [SEP] = 12
    expect(response.usage).toEqual({ prompt_tokens: 19, total_tokens: 19 });
  });

  it('encoding_format base64: the string is returned as is and holds little-endian float32', async () => {
    const input = ['cook', 'data engineer'];
    const response = await client.embeddings.create({ model: runName, input, encoding_format: 'base64' });
    expect(sent.at(-1)).toMatchObject({ encoding_format: 'base64' });
    const decoded = response.data.map((d) => {
      expect(typeof d.embedding).toBe('string');
      const bytes = Buffer.from(d.embedding as unknown as string, 'base64');
      expect(bytes.length).toBe(4 * model.dimension);
      return Array.from({ length: model.dimension }, (_, i) => bytes.readFloatLE(4 * i));
    });
    expect(decoded).toEqual(await embedVectors(input, 'query'));
    expect(response.usage.prompt_tokens).toBe(3 + 4);
  });

  it('the document side and prompt types by model-name suffix or body field, with usage after prompt and truncation', async () => {
    const doc = await client.embeddings.create({ model: `${runName}:doc`, input: ['cook', LONG] });
    expect(doc.data.map((d) => d.embedding)).toEqual(await embedVectors(['cook', LONG], 'doc'));
    // The tiny model's towers are shared: the sides differ in their maxLength, so only LONG tells them apart.
    expect(doc.data[1]!.embedding).not.toEqual((await embedVectors([LONG], 'query'))[0]);
    // 3 for cook; LONG truncated to the doc side's 16 tokens
    expect(doc.usage.prompt_tokens).toBe(3 + 16);

    const query = await client.embeddings.create({ model: runName, input: LONG });
    expect(query.usage.prompt_tokens).toBe(24); // the query side's maxLength

    // Prompt type "title" ("job title: {text}"): [CLS] job title : data engineer [SEP]
    const titled = await client.embeddings.create({ model: `${runName}:query:title`, input: 'data engineer' });
    expect(titled.data[0]!.embedding).toEqual((await embedVectors(['data engineer'], 'query', 'title'))[0]);
    expect(titled.usage.prompt_tokens).toBe(7);

    // Kiln's body fields, which the package passes through untouched.
    const bySide = await client.embeddings.create({ model: runName, input: 'cook', side: 'doc' } as OpenAI.EmbeddingCreateParams);
    expect(sent.at(-1)).toMatchObject({ side: 'doc' });
    // Alone here, batched with LONG above: another padded length, so equal up to float rounding.
    expectClose(bySide.data[0]!.embedding, doc.data[0]!.embedding);
    const longBySide = await client.embeddings.create({ model: runName, input: LONG, side: 'doc' } as OpenAI.EmbeddingCreateParams);
    expectClose(longBySide.data[0]!.embedding, doc.data[1]!.embedding);
    expect(longBySide.usage.prompt_tokens).toBe(16);
  });

  it('a wrong model name is a NotFoundError (404 model_not_found) naming the served names', async () => {
    const error = await failure(client.embeddings.create({ model: 'text-embedding-3-small', input: 'cook' }));
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error.status).toBe(404);
    expect(error.message).toBe(
      `404 The model \`text-embedding-3-small\` does not exist: this server serves \`${model.modelId}\`, \`${runName}\` (GET /v1/models); add :doc for the document side, e.g. \`${model.modelId}:doc\``,
    );
    expect([error.type, error.param, error.code]).toEqual(['invalid_request_error', 'model', 'model_not_found']);
  });

  it('too many inputs is a BadRequestError naming --max-texts', async () => {
    const input = Array.from({ length: MAX_TEXTS + 1 }, (_, i) => `text ${i}`);
    const error = await failure(client.embeddings.create({ model: runName, input }));
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.status).toBe(400);
    expect(error.message).toBe('400 input: 9 inputs exceed the limit of 8 per request (--max-texts); split the request');
    expect(error.param).toBe('input');
  });

  it.each([
    ['an empty string', '', '400 input: expected a non-empty string, got an empty string'],
    ['an empty list', [], '400 input: expected at least one text, got an empty array'],
    ['an empty string in a list', ['cook', ''], '400 input[1]: expected a non-empty string, got an empty string'],
    ['token ids', [101, 5660, 102], "400 input: token-id arrays are not supported: kiln serve tokenizes text with the model's own tokenizer; send the text as a string or an array of strings"],
  ])('%s as input is a BadRequestError', async (_name, input, message) => {
    const error = await failure(client.embeddings.create({ model: runName, input: input as OpenAI.EmbeddingCreateParams['input'] }));
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.status).toBe(400);
    expect(error.message).toBe(message);
    expect([error.type, error.param]).toEqual(['invalid_request_error', 'input']);
  });

  it('dimensions other than the model\'s is a BadRequestError; its own is accepted', async () => {
    const error = await failure(client.embeddings.create({ model: runName, input: 'cook', dimensions: 8 }));
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.param).toBe('dimensions');
    expect(error.message).toContain(`this model's embeddings have ${model.dimension} dimensions and cannot be shortened`);
    const same = await client.embeddings.create({ model: runName, input: 'cook', dimensions: model.dimension });
    expect(same.data[0]!.embedding).toHaveLength(model.dimension);
  });
});
