/**
 * `kiln serve`'s HTTP service (fastify) over an exported model (src/serve/exported-model.ts):
 *
 *   POST /embed   {"texts": [...], "side"?: "query"|"doc", "type"?: string}
 *                 → {"model": id, "dimension": D, "vectors": [[...], ...]}          (two-tower)
 *   POST /score   {"pairs": [["query", "doc"], ...]}  or  {"query": "...", "docs": [...]},
 *                 and for a two-tower model "query_type"?, "doc_type"? (prompt types)
 *                 → {"model": id, "scores": [...]}
 *                 A cross-encoder's logits; for a two-tower model with a cosine or dot head,
 *                 the dot product of the query-side and doc-side vectors (its training score).
 *   POST /search  {"query": "...", "k"?: 10, "mode"?: "dense"|"lexical"|"hybrid", "type"?: string}
 *                 (with --index) → {"model", "mode", "results": [{"id", "text", "score", "rank",
 *                 "dense": {"rank", "score"} | null, "lexical": {"rank", "score"} | null}]}: the
 *                 index's documents ranked by the model, by its lexical ranker, or both fused
 *                 (src/serve/search-index.ts); the query embedding shares the micro-batcher, and
 *                 each batch's dense search is one matrix product
 *   POST /skills  {"text": "...", "id"?: string, "expand"?: true, "threshold"?: number, "top_k"?: integer}
 *                 or {"documents": [{"id"?: string, "text": "..."}, ...], "expand"?, "threshold"?,
 *                 "top_k"?} (with --skills) → {"model", "results": [ExtractedDocument, ...]}: each
 *                 document's skills with scores and provenance (src/skills/tagger.ts), one result per
 *                 document in order (one for "text"); an id left out is the document's 1-based
 *                 position. The sentences' embeddings share the micro-batcher (batch group
 *                 "skills", the query tower with the skills model's sentence prompt)
 *   POST /v1/embeddings  OpenAI-compatible: {"input": "..." | [...], "model": name, "encoding_format"?,
 *                 "dimensions"?, "user"?} → {"object": "list", "data": [{"object": "embedding", "index",
 *                 "embedding"}], "model", "usage"} (two-tower; the query side unless the model name
 *                 ends in ":doc" or the body has "side": "doc"; ./openai-compat.ts has the decisions)
 *   GET /v1/models  the names the model is served under, for OpenAI clients to discover
 *   GET /healthz  200 {"status": "ok", "model": id}; 503 once shutdown has begun, or once the
 *                 model can no longer answer (its thread died)
 *   GET /metrics  Prometheus text (prom-client, ./metrics.ts): requests by route and status,
 *                 latency, batch sizes, texts processed, model-call time and failures, queue
 *                 depth, model info
 *
 * Concurrent requests go through one MicroBatcher (src/serve/micro-batcher.ts): texts arriving
 * within maxWaitMs share one onnxruntime call of at most maxBatch rows, grouped by side and
 * input type, and only one model call runs at a time (onnxruntime already uses every core).
 *
 * Errors follow fastify's shape {"statusCode", "error", "message"}; a 400's message names the
 * field (`texts[3]: expected a non-empty string, got number`), a 413 the byte limit. Under /v1/
 * they take OpenAI's shape {"error": {"message", "type", "param", "code"}} with the same
 * statuses, so that OpenAI clients raise their usual error classes.
 *
 * @example
 * const model = await ExportedModel.load('exports/twotower');
 * const app = buildServer(model, { maxBatch: 64, maxWaitMs: 5 });
 * const reply = await app.inject({ method: 'POST', url: '/embed', payload: { texts: ['data engineer'], side: 'query' } });
 * reply.json(); // { model: 'twotower-…@3f2a…', dimension: 256, vectors: [[0.013, …]] }
 * await app.close();
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { join, resolve } from 'node:path';

import accepts from '@fastify/accepts';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';

import type { ModelCard } from '../export/card.js';
import { ExportedModel, type Side } from './exported-model.js';
import { ModelThread } from './model-thread.js';
import { embeddingsFloat32, embeddingsJson, FLOAT32_MEDIA_TYPE } from './vector-encoding.js';
import { BatcherClosedError, MicroBatcher, type BatchReport } from './micro-batcher.js';
import { ServerMetrics } from './metrics.js';
import { OPENAI_PATH_PREFIX, OpenAiRequestError, base64Embedding, describe, modelObject, openAiErrorBody, planEmbeddings, retrieveModel, servedModelNames } from './openai-compat.js';
import { SEARCH_MODES, SearchIndex, type SearchMode } from './search-index.js';
import type { Candidates } from '../eval/lexical.js';
import type { FusedHit } from '../eval/fusion.js';
import { segmentPosting } from '../skills/sections.js';
import { SkillTagger } from '../skills/tagger.js';

/** What the server needs of a model: ExportedModel, ModelThread, or a stand-in with the same surface. */
export type ServableModel = Pick<ExportedModel, 'modelId' | 'dimension' | 'card' | 'embed' | 'score' | 'tokenCounts'> & {
  /** Set once the model can no longer answer (ModelThread: its worker died): /healthz turns 503. */
  readonly failure?: Error | undefined;
};
/** A model `startServer` loaded, and releases on close. */
export type ServedModel = ServableModel & Pick<ExportedModel, 'dir' | 'release'>;

export interface ServerOptions {
  /** Most texts (or pairs) per model call (default 64). */
  maxBatch?: number;
  /** Longest a request waits for others to share its model call, in ms (default 5). */
  maxWaitMs?: number;
  /** Largest request body in bytes; bigger ones get 413 (default 1 MiB). */
  maxBodyBytes?: number;
  /** Most texts, pairs or docs in one request; more get 400 (default 256). */
  maxTexts?: number;
  /**
   * Most texts (or pairs) waiting for the model; a request that would exceed it gets 503 with
   * Retry-After, so an overloaded service sheds load at once instead of queueing without bound
   * (default 4096: about 60 model calls of 64).
   */
  maxQueue?: number;
  /** Where failed model calls and 500s are reported (default: stderr). */
  log?: (line: string) => void;
  /** A search index built with this model (`kiln index build`): adds POST /search. */
  index?: SearchIndex;
  /** A skills model built with this model (`kiln skills build`): adds POST /skills. */
  skills?: SkillTagger;
  /**
   * More names the OpenAI-compatible routes accept for the model, beside its id and run name
   * (`--served-model-name`), e.g. the name a client has hard-coded.
   */
  modelNames?: readonly string[];
}

export const SERVER_DEFAULTS: Required<Omit<ServerOptions, 'log' | 'index' | 'skills' | 'modelNames'>> = {
  maxBatch: 64,
  maxWaitMs: 5,
  maxBodyBytes: 1 << 20,
  maxTexts: 256,
  maxQueue: 4096,
};

/** A batch group: which graph and prompt a text goes through. */
type EmbedGroup = { side: Side; inputType: string | undefined };
/** Search queries: embedded on the query side, then searched in the index as one batch. */
type SearchGroup = { search: string | undefined };
/** POST /skills: the sentences of the postings, on the query side with the skills model's sentence prompt. */
type Group = EmbedGroup | SearchGroup | 'score' | 'skills';
type Pair = readonly [string, string];

const embedGroupKey = (g: EmbedGroup): string => `embed:${g.side}${g.inputType === undefined ? '' : `:${g.inputType}`}`;
const groupKey = (g: Group): string =>
  g === 'score' || g === 'skills' ? g : 'search' in g ? `search${g.search === undefined ? '' : `:${g.search}`}` : embedGroupKey(g);

/** Thrown by the skills route's sentence embedder when the queue has no room for a request's sentences (503), or never will (400). */
class QueueFullError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 503,
  ) {
    super(message);
  }
}

/**
 * Builds the service around a loaded model; call `listen` (or `inject` in tests) on the result.
 * Closing it answers what is in flight, drains the queue, and leaves the model, the index and the
 * skills model to the caller to release.
 */
export function buildServer(model: ServableModel, options: ServerOptions = {}): FastifyInstance {
  const settings = { ...SERVER_DEFAULTS, ...definedOnly(options) };
  for (const key of ['maxBatch', 'maxBodyBytes', 'maxTexts', 'maxQueue'] as const) {
    if (!Number.isInteger(settings[key]) || settings[key] < 1) throw new Error(`${key} must be an integer ≥ 1, got ${settings[key]}`);
  }
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const card = model.card;
  if (options.index !== undefined && options.index.manifest.modelId !== model.modelId) {
    throw new Error(`the index ${options.index.dir} was built with model ${options.index.manifest.modelId}, but the served model is ${model.modelId}; rebuild it with \`kiln index build\` and this model`);
  }
  if (options.skills !== undefined && options.skills.files.manifest.modelId !== model.modelId) {
    throw new Error(skillsModelMismatch(options.skills.files.dir, options.skills.files.manifest.modelId, model.modelId));
  }

  const modelNames = servedModelNames(model.modelId, (options.modelNames ?? []).map((name) => name.trim()));
  if (modelNames.includes('')) throw new Error('modelNames: a served model name must not be empty');

  // --- metrics (./metrics.ts: this server's own prom-client registry) -------------------------
  // The queue depth is read from the batcher at scrape time; it is created below.
  const metrics = new ServerMetrics(
    { model: model.modelId, kind: card.kind, head: card.kind === 'two-tower' ? card.head : 'cross-encoder', dimension: model.dimension },
    () => batcher.queuedItems,
  );
  const onBatch = (report: BatchReport<string>): void => {
    metrics.modelCall(report);
    if (report.error !== undefined) log(`model call failed (${report.group}, ${report.size} items from ${report.requests} requests): ${report.error.message}`);
  };

  // --- the batcher: ONE per server, so one model call at a time -------------------------------
  // A model is either two-tower (embed groups, string items) or a cross-encoder (the 'score'
  // group, pair items): the group fixes the item and result types.
  const index = options.index;
  const skills = options.skills;
  const window = index?.manifest.hybrid.window ?? 0;
  const batcher = new MicroBatcher<string | Pair, Float32Array | number | Candidates, Group>(
    async (items, group) => {
      if (group === 'score') return Array.from(await model.score(items as Pair[]));
      if (group === 'skills') return model.embed(items as string[], { side: 'query', inputType: skills!.sentenceType });
      if ('search' in group) {
        const vectors = await model.embed(items as string[], { side: 'query', inputType: group.search });
        return index!.denseCandidates(vectors, window);
      }
      return model.embed(items as string[], { side: group.side, inputType: group.inputType });
    },
    {
      maxBatch: settings.maxBatch,
      maxWaitMs: settings.maxWaitMs,
      groupKey,
      onBatch: (r) => onBatch({ ...r, group: groupKey(r.group) }),
    },
  );
  const embedTexts = async (list: readonly string[], group: EmbedGroup): Promise<Float32Array[]> => (await batcher.submit(list, group)) as Float32Array[];
  const scorePairs = async (pairs: readonly Pair[]): Promise<number[]> => (await batcher.submit(pairs, 'score')) as number[];
  /** A 503 when `count` more items would overflow the queue; undefined when there is room. */
  const shed = (reply: FastifyReply, count: number): FastifyReply | undefined => {
    if (batcher.queuedItems + count <= settings.maxQueue) return undefined;
    metrics.overloadRejected();
    reply.header('retry-after', '1');
    return sendError(reply, 503, `overloaded: ${batcher.queuedItems} texts are queued (limit ${settings.maxQueue}, --max-queue); retry shortly`, { code: 'overloaded' });
  };

  // --- the app -------------------------------------------------------------------------------
  const app = Fastify({ bodyLimit: settings.maxBodyBytes, logger: false, return503OnClosing: true });
  // request.accepts(): the Accept header's preference among the bodies a route can write.
  void app.register(accepts);
  let closing = false;
  // POST /skills extractions still running. A client that hangs up does not stop its handler, and
  // the HTTP server's close does not wait for a handler whose connection is gone: close waits for
  // these itself, so that the caller releases the tagger only once nothing uses it.
  const extracting = new Set<Promise<unknown>>();

  app.addHook('onResponse', async (request, reply) => {
    // Unmatched URLs share one label so scanners cannot blow up the label set.
    metrics.response(request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });
  // The HTTP server's close waits for every connection to end, and reaps idle keep-alive ones only
  // once, when it starts. Two kinds would hold it open (for the 72 s keep-alive timeout, or until
  // the client hangs up): a connection whose request was still in flight, idle only once answered;
  // and one that never carried a request (a load generator's or proxy's spare connection), which
  // Node does not count as idle at all. Closing reaps both as they come.
  const unused = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    unused.add(socket);
    socket.once('close', () => unused.delete(socket));
  });
  app.server.on('request', (request: IncomingMessage) => unused.delete(request.socket));
  const reap = (): void => {
    app.server.closeIdleConnections();
    for (const socket of unused) socket.destroy();
  };
  let reaper: NodeJS.Timeout | undefined;
  app.addHook('preClose', async () => {
    closing = true;
    if (app.server.listening) reaper = setInterval(reap, 50).unref();
  });
  // Runs after the HTTP server has closed, i.e. after every in-flight request has been answered.
  app.addHook('onClose', async () => {
    clearInterval(reaper);
    // The batcher stays open meanwhile: a running extraction may still have sentences to embed.
    await Promise.allSettled([...extracting]);
    await batcher.close();
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendError(reply, 413, `body: larger than the limit of ${settings.maxBodyBytes} bytes (--max-body-bytes); send fewer or shorter texts per request`);
    }
    if (error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      return sendError(reply, 400, `body: expected a JSON object (${error.message})`);
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return sendError(reply, 415, `body: expected Content-Type application/json, got ${JSON.stringify(request.headers['content-type'] ?? 'none')}`);
    }
    if (error instanceof BatcherClosedError) return sendError(reply, 503, 'the server is shutting down');
    const status = error.statusCode ?? 500;
    if (status >= 500) log(`${request.method} ${request.url}: ${error.stack ?? error.message}`);
    return sendError(reply, status, status >= 500 ? `internal error: ${error.message}` : error.message);
  });
  // fastify's own 404 text, but in OpenAI's shape under /v1/ (where a client may try a route
  // Kiln does not offer, such as /v1/chat/completions).
  app.setNotFoundHandler((request, reply) => {
    const offered = request.url.startsWith(OPENAI_PATH_PREFIX) ? '; the OpenAI-compatible routes here are POST /v1/embeddings and GET /v1/models' : '';
    return sendError(reply, 404, `Route ${request.method}:${request.url} not found${offered}`, { code: 'unknown_url' });
  });

  app.get('/healthz', async (_request, reply) => {
    if (closing) return sendError(reply, 503, 'shutting down');
    // A dead model thread fails every call: say so here, so a load balancer stops sending traffic.
    if (model.failure !== undefined) return sendError(reply, 503, `model unavailable: ${model.failure.message}`);
    return { status: 'ok', model: model.modelId };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.type(metrics.contentType);
    return metrics.render();
  });

  const embedSchema = z.strictObject({
    texts: textList('texts', settings.maxTexts),
    side: z.enum(['query', 'doc'], { error: (iss) => `expected "query" or "doc", got ${describe(iss.input)}` }).optional(),
    type: z.string({ error: (iss) => `expected a string (a prompt type of the model), got ${describe(iss.input)}` }).optional(),
  });

  app.post('/embed', async (request, reply) => {
    if (card.kind !== 'two-tower') {
      return sendError(reply, 400, `model ${model.modelId} is a cross-encoder: it scores (query, doc) pairs and has no embeddings; use POST /score with {"pairs": [["query", "doc"], ...]}`);
    }
    const body = parse(embedSchema, request.body);
    if (typeof body === 'string') return sendError(reply, 400, body);
    const typeError = checkInputType(card, body.type);
    if (typeError !== undefined) return sendError(reply, 400, typeError);
    const overloaded = shed(reply, body.texts.length);
    if (overloaded !== undefined) return overloaded;
    const vectors = await embedTexts(body.texts, { side: body.side ?? 'doc', inputType: body.type });
    // JSON unless the client prefers the raw float32 body (./vector-encoding.ts has the layout).
    reply.header('vary', 'accept');
    if (prefersFloat32(request)) {
      reply.header('x-kiln-model', model.modelId).header('x-kiln-dimension', String(model.dimension)).header('x-kiln-count', String(vectors.length));
      return reply.type(FLOAT32_MEDIA_TYPE).send(embeddingsFloat32(model.dimension, vectors));
    }
    return reply.type('application/json; charset=utf-8').send(embeddingsJson(model.modelId, model.dimension, vectors));
  });

  // --- OpenAI-compatible routes (./openai-compat.ts) ------------------------------------------
  const served = { modelId: model.modelId, dimension: model.dimension, card, names: modelNames };
  app.get('/v1/models', async () => ({ object: 'list', data: modelNames.map((name) => modelObject(name, card)) }));

  app.get<{ Params: { model: string } }>('/v1/models/:model', async (request, reply) => {
    const found = retrieveModel(request.params.model, served);
    return found instanceof OpenAiRequestError ? sendError(reply, found.status, found.message, found) : found;
  });

  app.post('/v1/embeddings', async (request, reply) => {
    const plan = planEmbeddings(request.body, served, settings.maxTexts);
    if (plan instanceof OpenAiRequestError) return sendError(reply, plan.status, plan.message, plan);
    const overloaded = shed(reply, plan.texts.length);
    if (overloaded !== undefined) return overloaded;
    const group: EmbedGroup = { side: plan.side, inputType: plan.type };
    // Counted here, outside the batcher: tokenizing a text again costs microseconds, next to
    // the milliseconds of its share of the model call.
    const tokens = model.tokenCounts(plan.texts, group).reduce((sum, n) => sum + n, 0);
    const vectors = await embedTexts(plan.texts, group);
    return {
      object: 'list',
      data: vectors.map((vector, index) => ({ object: 'embedding', index, embedding: plan.encodingFormat === 'base64' ? base64Embedding(vector) : Array.from(vector) })),
      model: model.modelId,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
  });

  const nonEmpty = z
    .string({ error: (iss) => `expected a non-empty string, got ${describe(iss.input)}` })
    .min(1, { error: 'expected a non-empty string, got an empty string' });
  const scoreSchema = z.strictObject({
    pairs: z
      .array(
        z.tuple([nonEmpty, nonEmpty], { error: (iss) => `expected a [query, doc] pair of non-empty strings, got ${describe(iss.input)}` }),
        { error: (iss) => `expected an array of [query, doc] pairs, got ${describe(iss.input)}` },
      )
      .min(1, { error: 'expected at least one [query, doc] pair' })
      .max(settings.maxTexts, { error: (iss) => `${countOf(iss.input)} pairs exceed the limit of ${settings.maxTexts} per request (--max-texts); split the request` })
      .optional(),
    query: nonEmpty.optional(),
    docs: textList('docs', settings.maxTexts).optional(),
    query_type: z.string({ error: (iss) => `expected a string (a prompt type of the model), got ${describe(iss.input)}` }).optional(),
    doc_type: z.string({ error: (iss) => `expected a string (a prompt type of the model), got ${describe(iss.input)}` }).optional(),
  });

  app.post('/score', async (request, reply) => {
    const body = parse(scoreSchema, request.body);
    if (typeof body === 'string') return sendError(reply, 400, body);
    let pairs: Pair[];
    if (body.pairs !== undefined) {
      if (body.query !== undefined || body.docs !== undefined) return sendError(reply, 400, 'body: give either "pairs" or "query" with "docs", not both');
      pairs = body.pairs;
    } else if (body.query !== undefined && body.docs !== undefined) {
      pairs = body.docs.map((doc) => [body.query!, doc] as const);
    } else {
      return sendError(reply, 400, `body: expected {"pairs": [["query", "doc"], ...]} or {"query": "...", "docs": [...]}${body.query !== undefined ? ' (docs is missing)' : body.docs !== undefined ? ' (query is missing)' : ''}`);
    }

    if (card.kind === 'cross-encoder' && (body.query_type !== undefined || body.doc_type !== undefined)) {
      return sendError(reply, 400, `${body.query_type !== undefined ? 'query_type' : 'doc_type'}: a cross-encoder has no prompt types; omit it`);
    }
    for (const [field, type] of [['query_type', body.query_type], ['doc_type', body.doc_type]] as const) {
      const typeError = checkInputType(card, type);
      if (typeError !== undefined) return sendError(reply, 400, typeError.replace(/^type:/, `${field}:`));
    }
    const overloaded = shed(reply, card.kind === 'cross-encoder' ? pairs.length : 2 * pairs.length);
    if (overloaded !== undefined) return overloaded;
    if (card.kind === 'cross-encoder') return { model: model.modelId, scores: await scorePairs(pairs) };

    if (card.head === 'hadamard_mlp') {
      return sendError(reply, 400, `model ${model.modelId} is a two-tower model with a hadamard_mlp head, whose pair scorer is not part of the export; use POST /embed (side "query" and "doc") for vectors, or serve a cross-encoder for /score`);
    }
    // Cosine (unit-norm vectors) or dot head: the model's score is the dot product of the towers.
    const queries = [...new Set(pairs.map(([q]) => q))];
    const [queryVectors, docVectors] = await Promise.all([
      embedTexts(queries, { side: 'query', inputType: body.query_type }),
      embedTexts(pairs.map(([, d]) => d), { side: 'doc', inputType: body.doc_type }),
    ]);
    const byQuery = new Map(queries.map((q, i) => [q, queryVectors[i]!]));
    return { model: model.modelId, scores: pairs.map(([q], i) => dot(byQuery.get(q)!, docVectors[i]!)) };
  });

  if (index !== undefined) {
    const maxK = index.manifest.hybrid.window;
    const defaultType = index.manifest.queryType === '' ? undefined : index.manifest.queryType;
    const searchSchema = z.strictObject({
      query: nonEmpty,
      k: z
        .number({ error: (iss) => `expected an integer from 1 to ${maxK}, got ${describe(iss.input)}` })
        .int({ error: (iss) => `expected an integer from 1 to ${maxK}, got ${describe(iss.input)}` })
        .min(1, { error: (iss) => `expected an integer from 1 to ${maxK}, got ${describe(iss.input)}` })
        .max(maxK, { error: (iss) => `${String(iss.input)} exceeds the index's candidate window of ${maxK}; ask for at most ${maxK}` })
        .optional(),
      mode: z.enum(SEARCH_MODES, { error: (iss) => `expected "dense", "lexical" or "hybrid", got ${describe(iss.input)}` }).optional(),
      type: z.string({ error: (iss) => `expected a string (a prompt type of the model), got ${describe(iss.input)}` }).optional(),
    });
    const part = (rank: number, score: number | null): { rank: number; score: number } | null => (rank === 0 || score === null ? null : { rank, score });
    const single = (candidates: Candidates, mode: 'dense' | 'lexical', k: number): FusedHit[] =>
      Array.from(candidates.docs.subarray(0, k), (doc, i) => ({
        doc,
        score: candidates.scores[i]!,
        denseRank: mode === 'dense' ? i + 1 : 0,
        denseScore: mode === 'dense' ? candidates.scores[i]! : null,
        lexicalRank: mode === 'lexical' ? i + 1 : 0,
        lexicalScore: mode === 'lexical' ? candidates.scores[i]! : null,
      }));

    app.post('/search', async (request, reply) => {
      const body = parse(searchSchema, request.body);
      if (typeof body === 'string') return sendError(reply, 400, body);
      const typeError = checkInputType(card, body.type);
      if (typeError !== undefined) return sendError(reply, 400, typeError);
      const mode: SearchMode = body.mode ?? 'hybrid';
      const k = body.k ?? Math.min(10, maxK);
      if (mode !== 'lexical') {
        const overloaded = shed(reply, 1);
        if (overloaded !== undefined) return overloaded;
      }
      // The lexical workers' queue has the same bound as the model's.
      if (mode !== 'dense' && index.lexical.pending >= settings.maxQueue) {
        metrics.overloadRejected();
        reply.header('retry-after', '1');
        return sendError(reply, 503, `overloaded: ${index.lexical.pending} lexical queries are queued (limit ${settings.maxQueue}, --max-queue); retry shortly`);
      }
      // Both parts at once: the lexical ranker in its worker while the query is embedded.
      const [denseList, lexical] = await Promise.all([
        mode === 'lexical' ? null : (batcher.submit([body.query], { search: body.type ?? defaultType }) as Promise<Candidates[]>),
        mode === 'dense' ? null : index.lexicalCandidates(body.query, maxK),
      ]);
      const dense = denseList?.[0] ?? null;
      const hits = mode === 'hybrid' ? index.fuse(dense!, lexical!).slice(0, k) : single(mode === 'dense' ? dense! : lexical!, mode, k);
      return {
        model: model.modelId,
        mode,
        results: hits.map((hit, i) => {
          const doc = index.documents[hit.doc]!;
          return { id: doc.id, text: doc.text, score: hit.score, rank: i + 1, dense: part(hit.denseRank, hit.denseScore), lexical: part(hit.lexicalRank, hit.lexicalScore) };
        }),
      };
    });
  }

  if (skills !== undefined) {
    const documentSchema = z.strictObject(
      {
        id: z.string({ error: (iss) => `expected a string, got ${describe(iss.input)}` }).optional(),
        text: nonEmpty,
      },
      {
        error: (iss) =>
          iss.code === 'unrecognized_keys'
            ? `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => JSON.stringify(k)).join(', ')}; expected id, text`
            : `expected an object {"id": "...", "text": "..."}, got ${describe(iss.input)}`,
      },
    );
    const skillsSchema = z.strictObject({
      text: nonEmpty.optional(),
      id: z.string({ error: (iss) => `expected a string, got ${describe(iss.input)}` }).optional(),
      documents: z
        .array(documentSchema, { error: (iss) => `expected an array of {"id", "text"} objects, got ${describe(iss.input)}` })
        .min(1, { error: 'expected at least one document' })
        .max(settings.maxTexts, { error: (iss) => `${countOf(iss.input)} documents exceed the limit of ${settings.maxTexts} per request (--max-texts); split the request` })
        .optional(),
      expand: z.boolean({ error: (iss) => `expected true or false, got ${describe(iss.input)}` }).optional(),
      threshold: z
        .number({ error: (iss) => `expected a cosine similarity in [-1, 1], got ${describe(iss.input)}` })
        .min(-1, { error: (iss) => `expected a cosine similarity in [-1, 1], got ${describe(iss.input)}` })
        .max(1, { error: (iss) => `expected a cosine similarity in [-1, 1], got ${describe(iss.input)}` })
        .optional(),
      top_k: z
        .number({ error: (iss) => `expected an integer ≥ 1, got ${describe(iss.input)}` })
        .int({ error: (iss) => `expected an integer ≥ 1, got ${describe(iss.input)}` })
        .min(1, { error: (iss) => `expected an integer ≥ 1, got ${describe(iss.input)}` })
        .optional(),
    });
    /** The queue-limit answer for `count` more sentences (400 when they could never fit), or undefined when there is room. */
    const queueProblem = (count: number): QueueFullError | undefined => {
      if (count > settings.maxQueue) {
        return new QueueFullError(`body: its ${count} sentences exceed the queue limit of ${settings.maxQueue} texts (--max-queue); send fewer or shorter documents per request`, 400);
      }
      if (batcher.queuedItems + count > settings.maxQueue) {
        return new QueueFullError(`overloaded: ${batcher.queuedItems} texts are queued (limit ${settings.maxQueue}, --max-queue); retry shortly`, 503);
      }
      return undefined;
    };
    // The tagger embeds each request's sentences in one call of this: through the batcher, so
    // concurrent postings share model calls. The route checks the queue limit before extracting;
    // this checks again, should the tagger ever embed after a wait.
    const embedSentences = async (sentences: readonly string[]): Promise<Float32Array[]> => {
      const problem = queueProblem(sentences.length);
      if (problem !== undefined) throw problem;
      return (await batcher.submit(sentences, 'skills')) as Float32Array[];
    };
    const refuse = (reply: FastifyReply, error: QueueFullError): FastifyReply => {
      if (error.status === 400) return sendError(reply, 400, error.message);
      metrics.overloadRejected();
      reply.header('retry-after', '1');
      return sendError(reply, 503, error.message);
    };

    app.post('/skills', async (request, reply) => {
      const body = parse(skillsSchema, request.body);
      if (typeof body === 'string') return sendError(reply, 400, body);
      let documents: Array<{ id: string; text: string }>;
      if (body.documents !== undefined) {
        if (body.text !== undefined) return sendError(reply, 400, 'body: give either "text" or "documents", not both');
        if (body.id !== undefined) return sendError(reply, 400, 'id: goes with "text"; in "documents" each document carries its own id');
        documents = body.documents.map((d, i) => ({ id: d.id ?? String(i + 1), text: d.text }));
      } else if (body.text !== undefined) {
        documents = [{ id: body.id ?? '1', text: body.text }];
      } else {
        return sendError(reply, 400, 'text: expected a non-empty string (or "documents": [{"id": "...", "text": "..."}, ...]), got nothing');
      }
      // Shed before any work: the tagger starts its lexical rankers before it embeds. Segmenting
      // here costs a fraction of a millisecond per posting.
      const segmented = documents.map((d) => ({ ...d, segmented: segmentPosting(d.text) }));
      const problem = queueProblem(segmented.reduce((n, d) => n + d.segmented.sentences.length, 0));
      if (problem !== undefined) return refuse(reply, problem);
      // The lexical rankers' workers have the same bound as the model's queue.
      const lexicalPending = skills.index.lexical.pending;
      if (lexicalPending >= settings.maxQueue) {
        metrics.overloadRejected();
        reply.header('retry-after', '1');
        return sendError(reply, 503, `overloaded: ${lexicalPending} lexical queries are queued (limit ${settings.maxQueue}, --max-queue); retry shortly`);
      }
      // Left out, threshold and top_k are the skills model's own (skills.json settings.semantic).
      const extraction = skills.extract(segmented, { expand: body.expand ?? true, threshold: body.threshold, topK: body.top_k }, embedSentences);
      extracting.add(extraction);
      try {
        return { model: model.modelId, results: await extraction };
      } catch (error) {
        if (!(error instanceof QueueFullError)) throw error;
        return refuse(reply, error);
      } finally {
        extracting.delete(extraction);
      }
    });
  }

  return app;
}

/**
 * Whether the Accept header ranks the raw float32 body above JSON. JSON wins ties, a missing
 * header and one that accepts neither (the default body, as before content negotiation).
 */
function prefersFloat32(request: FastifyRequest): boolean {
  if (request.headers.accept === undefined) return false;
  return request.accepts().type(['application/json', FLOAT32_MEDIA_TYPE]) === FLOAT32_MEDIA_TYPE;
}

/** Why a skills model cannot be served with this model (its index holds another model's vectors). */
function skillsModelMismatch(dir: string, skillsModelId: string, servedModelId: string): string {
  return `the skills model ${dir} was built with model ${skillsModelId}, but the served model is ${servedModelId}; leave out --model to serve the skills model's own (${join(dir, 'model')}), or rebuild it with \`kiln skills build --model\` and this model`;
}

export interface StartOptions extends ServerOptions {
  /** Exported model directory (`kiln export --out`); may be left out with `skillsDir`, whose own model is then served. */
  modelDir?: string;
  /** TCP port; 0 picks a free one (default 8080). */
  port?: number;
  /** Interface to bind (default 127.0.0.1: loopback only). */
  host?: string;
  /** onnxruntime intra-op threads (default: all cores). */
  threads?: number;
  /** Whether onnxruntime's idle threads spin-wait between runs (ExportedModel's LoadOptions.spinning). */
  spinning?: boolean;
  /**
   * Run `modelDir`'s model in a worker thread (./model-thread.ts), so the HTTP thread parses and
   * writes while the model computes (default true). False runs it on the HTTP thread.
   */
  modelThread?: boolean;
  /** A search index directory (`kiln index build --out`): adds POST /search. */
  indexDir?: string;
  /** Worker threads for the index's lexical ranker (default 1). */
  lexicalThreads?: number;
  /** A skills model directory (`kiln skills build --out`): adds POST /skills; built with `modelDir`'s model when both are given. */
  skillsDir?: string;
}

export interface RunningServer {
  readonly app: FastifyInstance;
  readonly model: ServedModel;
  readonly index: SearchIndex | undefined;
  readonly skills: SkillTagger | undefined;
  /** e.g. http://127.0.0.1:8080 (with the real port when 0 was asked for). */
  readonly url: string;
  readonly port: number;
  /** Stops accepting, answers everything in flight and queued, then releases the model, the index and the skills model. */
  close(): Promise<void>;
}

/**
 * Loads the model (and the index and skills model when given), builds the service and listens.
 * With `skillsDir` and no `modelDir`, the skills model's own copy of its model is the served one.
 */
export async function startServer(options: StartOptions): Promise<RunningServer> {
  if (options.modelDir === undefined && options.skillsDir === undefined) {
    throw new Error('nothing to serve: give a model directory (modelDir, --model) or a skills model directory (skillsDir, --skills)');
  }
  const maxBatch = options.maxBatch ?? SERVER_DEFAULTS.maxBatch;
  let model: ServedModel | undefined;
  let app: FastifyInstance;
  let index: SearchIndex | undefined;
  let skills: SkillTagger | undefined;
  try {
    if (options.modelDir !== undefined) {
      // One model call is one onnxruntime run: the batcher's batch is the model's batch.
      const load = { threads: options.threads, spinning: options.spinning, batchSize: maxBatch };
      model = (options.modelThread ?? true) ? await ModelThread.load(options.modelDir, load) : await ExportedModel.load(options.modelDir, load);
      // Before the skills model's index and workers are loaded: a mismatch is known from its manifest.
      if (options.skillsDir !== undefined) {
        const skillsModelId = readSkillsModelId(options.skillsDir);
        if (skillsModelId !== model.modelId) throw new Error(skillsModelMismatch(resolve(options.skillsDir), skillsModelId, model.modelId));
      }
    }
    if (options.skillsDir !== undefined) skills = await SkillTagger.load(options.skillsDir, { threads: options.threads, spinning: options.spinning, lexicalThreads: options.lexicalThreads });
    model ??= skills!.model;
    if (options.indexDir !== undefined) index = await SearchIndex.load(options.indexDir, { threads: options.threads, lexicalThreads: options.lexicalThreads });
    app = buildServer(model, { ...options, index, skills });
    await app.listen({ port: options.port ?? 8080, host: options.host ?? '127.0.0.1' });
  } catch (error) {
    await index?.release();
    await skills?.release();
    await model?.release();
    throw error;
  }
  const served = model;
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : (options.port ?? 8080);
  const host = options.host ?? '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closed: Promise<void> | undefined;
  return {
    app,
    model: served,
    index,
    skills,
    url,
    port,
    close: () =>
      (closed ??= (async () => {
        try {
          await app.close();
        } finally {
          await index?.release();
          // The tagger releases its own model, which is the served one when no modelDir was given.
          await skills?.release();
          if (served !== skills?.model) await served.release();
        }
      })()),
  };
}

/** The model id in a skills model directory's manifest (skills.json), read without loading the rest. */
function readSkillsModelId(dir: string): string {
  const file = join(resolve(dir), 'skills.json');
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { modelId: string }).modelId;
  } catch (error) {
    throw new Error(`${file}: cannot read it (${(error as Error).message}); expected a skills model directory written by \`kiln skills build\``);
  }
}

// --- helpers -----------------------------------------------------------------------------------

/**
 * An error reply: fastify's shape, or under /v1/ OpenAI's, where `details` fills its `param`
 * (the field at fault) and `code` (e.g. model_not_found).
 */
function sendError(reply: FastifyReply, statusCode: number, message: string, details: { param?: string | null; code?: string | null } = {}): FastifyReply {
  if (reply.request.url.startsWith(OPENAI_PATH_PREFIX)) {
    return reply.code(statusCode).send(openAiErrorBody(statusCode, message, details.param ?? null, details.code ?? null));
  }
  const error = { 400: 'Bad Request', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 404: 'Not Found', 500: 'Internal Server Error', 503: 'Service Unavailable' }[statusCode] ?? 'Error';
  return reply.code(statusCode).send({ statusCode, error, message });
}

/** A list of 1..max non-empty strings, with messages naming the bad index. */
function textList(field: string, max: number) {
  return z
    .array(
      z
        .string({ error: (iss) => `expected a non-empty string, got ${describe(iss.input)}` })
        .min(1, { error: 'expected a non-empty string, got an empty string' }),
      { error: (iss) => `expected an array of non-empty strings, got ${describe(iss.input)}` },
    )
    .min(1, { error: `expected at least one text` })
    .max(max, { error: (iss) => `${countOf(iss.input)} ${field} exceed the limit of ${max} per request (--max-texts); split the request` });
}

/** The parsed body, or a message naming the first bad field (and how many more there are). */
function parse<T>(schema: z.ZodType<T>, body: unknown): T | string {
  const result = schema.safeParse(body ?? undefined);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const first = issues[0]!;
  let message: string;
  if (first.code === 'unrecognized_keys' && first.path.length === 0) {
    const known = Object.keys((schema as unknown as { shape: Record<string, unknown> }).shape ?? {});
    message = `body: unknown field${first.keys.length > 1 ? 's' : ''} ${first.keys.map((k) => JSON.stringify(k)).join(', ')}; expected ${known.join(', ')}`;
  } else if (first.path.length === 0) {
    message = `body: expected a JSON object, got ${describe(body)}`;
  } else {
    message = `${formatPath(first.path)}: ${first.message}`;
  }
  return issues.length > 1 ? `${message} (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : message;
}

/** ['texts', 3] → 'texts[3]'; ['pairs', 2, 1] → 'pairs[2][1]'. */
function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${String(p)}`)).join('');
}

function countOf(value: unknown): number {
  return Array.isArray(value) ? value.length : 0;
}

/** An error message when `type` names no prompt of the model (a silent no-op would hide typos). */
function checkInputType(card: ModelCard, type: string | undefined): string | undefined {
  if (type === undefined || card.kind !== 'two-tower') return undefined;
  const known = Object.keys(card.prompts);
  if (Object.hasOwn(card.prompts, type)) return undefined;
  return known.length === 0
    ? `type: this model has no prompt types, got ${JSON.stringify(type)}; omit type`
    : `type: ${JSON.stringify(type)} is not a prompt type of this model; expected one of ${known.map((k) => JSON.stringify(k)).join(', ')} (or omit type)`;
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
