/**
 * The OpenAI-compatible part of `kiln serve`: request parsing, model names, errors and the
 * response body of POST /v1/embeddings and GET /v1/models, so that any OpenAI client (the
 * `openai` package, LangChain's OpenAIEmbeddings, LlamaIndex) can use a Kiln model by pointing
 * its base URL at the server. The routes themselves are in ./server.ts.
 *
 * Spec: OpenAI API reference, "Create embeddings" (https://platform.openai.com/docs/api-reference/embeddings/create),
 * "The embedding object" (https://platform.openai.com/docs/api-reference/embeddings/object),
 * "List models" (https://platform.openai.com/docs/api-reference/models/list) and the error shape of
 * "Error codes" (https://platform.openai.com/docs/guides/error-codes):
 *
 *   POST /v1/embeddings {"input": "text" | ["text", ...], "model": NAME, "encoding_format"?: "float"|"base64",
 *                        "dimensions"?: D, "user"?: string,
 *                        Kiln's own, optional: "side"?: "query"|"doc", "type"?: PROMPT_TYPE}
 *     → {"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...] | "base64"}],
 *        "model": MODEL_ID, "usage": {"prompt_tokens": n, "total_tokens": n}}
 *   GET /v1/models → {"object": "list", "data": [{"id": NAME, "object": "model", "created": t, "owned_by": "kiln"}]}
 *   errors        → {"error": {"message", "type", "param", "code"}} with the HTTP status
 *
 * Decisions where the spec leaves room:
 * - Model names. The model is served under its id (`run@hash`, the card's modelId), its run name
 *   (the id before "@", what a user typed to train it) and any `--served-model-name` aliases (as
 *   vLLM's flag of that name; for clients with a hard-coded model name). Any other name is a 404
 *   `model_not_found`, as vLLM answers: a client configured for another model should fail loudly,
 *   not get vectors from a different space. The response's `model` is always the model id, so a
 *   caller can tell exactly which weights answered.
 * - Side and prompt. A Kiln two-tower model embeds queries and documents with different towers
 *   or lengths, and may have prompt templates per input type. The default is the query side
 *   without a prompt (an OpenAI client usually embeds what a user typed). The document side is
 *   chosen by a model-name suffix, `NAME:doc` (and `NAME:query`, `NAME:doc:TYPE` for a prompt
 *   type), which works from clients that only let you set the model name (LangChain,
 *   LlamaIndex); or by the body fields `side` and `type` of POST /embed. Both at once must agree.
 * - Token arrays as `input` are refused with a 400: Kiln tokenizes text itself, and ids from
 *   another tokenizer (tiktoken) would be meaningless to the model.
 * - `dimensions` other than the model's is a 400: Kiln does not train Matryoshka-style models,
 *   so a truncated vector would not be a meaningful embedding.
 * - Too-long inputs are truncated to the side's maximum length, as POST /embed does.
 * - `usage` counts the token ids the model is fed: the prompt template applied, [CLS] and [SEP]
 *   included, after truncation, padding excluded (ExportedModel.tokenCounts).
 */
import type { ModelCard } from '../export/card.js';
import type { Side } from './exported-model.js';

/** Routes under this prefix answer errors in OpenAI's shape. */
export const OPENAI_PATH_PREFIX = '/v1/';

export type EncodingFormat = 'float' | 'base64';

/** OpenAI's error body. */
export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** The `type` OpenAI gives errors of each HTTP status. */
function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export function openAiErrorBody(status: number, message: string, param: string | null = null, code: string | null = null): OpenAiErrorBody {
  return { error: { message, type: errorType(status), param, code } };
}

/** A request the OpenAI-compatible routes refuse: its status, message, and the offending field. */
export class OpenAiRequestError extends Error {
  constructor(
    readonly status: 400 | 404,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'OpenAiRequestError';
  }
}

export interface EmbeddingsRequest {
  texts: string[];
  model: string;
  encodingFormat: EncodingFormat;
  dimensions: number | undefined;
  side: Side | undefined;
  type: string | undefined;
}

const OPENAI_FIELDS = ['input', 'model', 'encoding_format', 'dimensions', 'user'] as const;
const KILN_FIELDS = ['side', 'type'] as const;

/**
 * The body of POST /v1/embeddings, checked; throws OpenAiRequestError (400) naming the first bad
 * field, e.g. `input[2]: expected a non-empty string, got an empty string`.
 */
export function parseEmbeddingsRequest(body: unknown, maxTexts: number): EmbeddingsRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new OpenAiRequestError(400, `body: expected a JSON object {"input": ..., "model": ...}, got ${describe(body)}`);
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !(OPENAI_FIELDS as readonly string[]).includes(k) && !(KILN_FIELDS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw new OpenAiRequestError(
      400,
      `body: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}; expected ${OPENAI_FIELDS.join(', ')} (OpenAI) or ${KILN_FIELDS.join(', ')} (Kiln)`,
      unknown[0]!,
    );
  }

  const texts = parseInput(fields['input'], maxTexts);

  const model = fields['model'];
  if (typeof model !== 'string' || model === '') throw new OpenAiRequestError(400, `model: expected the served model's name (GET /v1/models lists it), got ${describe(model)}`, 'model');

  const format = fields['encoding_format'] ?? 'float';
  if (format !== 'float' && format !== 'base64') throw new OpenAiRequestError(400, `encoding_format: expected "float" or "base64", got ${describe(format)}`, 'encoding_format');

  const dimensions = fields['dimensions'];
  if (dimensions !== undefined && (typeof dimensions !== 'number' || !Number.isInteger(dimensions) || dimensions < 1)) {
    throw new OpenAiRequestError(400, `dimensions: expected an integer ≥ 1, got ${describe(dimensions)}`, 'dimensions');
  }

  const user = fields['user'];
  if (user !== undefined && typeof user !== 'string') throw new OpenAiRequestError(400, `user: expected a string, got ${describe(user)}`, 'user');

  const side = fields['side'];
  if (side !== undefined && side !== 'query' && side !== 'doc') throw new OpenAiRequestError(400, `side: expected "query" or "doc", got ${describe(side)}`, 'side');

  const type = fields['type'];
  if (type !== undefined && typeof type !== 'string') throw new OpenAiRequestError(400, `type: expected a string (a prompt type of the model), got ${describe(type)}`, 'type');

  return { texts, model, encodingFormat: format, dimensions, side, type };
}

/** `input` as a list of 1..maxTexts non-empty strings. */
function parseInput(input: unknown, maxTexts: number): string[] {
  if (typeof input === 'string') {
    if (input === '') throw new OpenAiRequestError(400, 'input: expected a non-empty string, got an empty string', 'input');
    return [input];
  }
  if (!Array.isArray(input)) throw new OpenAiRequestError(400, `input: expected a string or an array of strings, got ${describe(input)}`, 'input');
  if (input.length === 0) throw new OpenAiRequestError(400, 'input: expected at least one text, got an empty array', 'input');
  if (typeof input[0] === 'number' || Array.isArray(input[0])) {
    throw new OpenAiRequestError(400, 'input: token-id arrays are not supported: kiln serve tokenizes text with the model\'s own tokenizer; send the text as a string or an array of strings', 'input');
  }
  if (input.length > maxTexts) throw new OpenAiRequestError(400, `input: ${input.length} inputs exceed the limit of ${maxTexts} per request (--max-texts); split the request`, 'input');
  input.forEach((text: unknown, i) => {
    if (typeof text !== 'string') throw new OpenAiRequestError(400, `input[${i}]: expected a non-empty string, got ${describe(text)}`, 'input');
    if (text === '') throw new OpenAiRequestError(400, `input[${i}]: expected a non-empty string, got an empty string`, 'input');
  });
  return input as string[];
}

/**
 * The names the model answers to, the model id first: the id, the run name (the id before "@")
 * and the aliases, without repeats.
 */
export function servedModelNames(modelId: string, aliases: readonly string[] = []): string[] {
  const at = modelId.lastIndexOf('@');
  return [...new Set([modelId, ...(at > 0 ? [modelId.slice(0, at)] : []), ...aliases])];
}

/** What a requested model name selects: the side and prompt type its suffix names, if any. */
export interface ModelSelection {
  side: Side | undefined;
  type: string | undefined;
}

/**
 * Resolves `NAME`, `NAME:SIDE` or `NAME:SIDE:TYPE` against the served names; throws a 404
 * `model_not_found` saying which names exist. A prompt type must be one of the card's.
 */
export function resolveModelName(requested: string, names: readonly string[], card: ModelCard): ModelSelection {
  if (names.includes(requested)) return { side: undefined, type: undefined };
  // Longest name first: with aliases "a" and "a:b", "a:b:doc" is alias "a:b" on the doc side.
  const base = [...names].sort((a, b) => b.length - a.length).find((name) => requested.startsWith(`${name}:`));
  const listed = names.map((n) => `\`${n}\``).join(', ');
  if (base === undefined) {
    throw new OpenAiRequestError(404, `The model \`${requested}\` does not exist: this server serves ${listed} (GET /v1/models); add :doc for the document side, e.g. \`${names[0]}:doc\``, 'model', 'model_not_found');
  }
  const rest = requested.slice(base.length + 1);
  const colon = rest.indexOf(':');
  const side = colon < 0 ? rest : rest.slice(0, colon);
  const type = colon < 0 ? undefined : rest.slice(colon + 1);
  if (side !== 'query' && side !== 'doc') {
    throw new OpenAiRequestError(404, `The model \`${requested}\` does not exist: after \`${base}:\` expected the side, query or doc (e.g. \`${base}:doc\`), got \`${side}\``, 'model', 'model_not_found');
  }
  if (type !== undefined) {
    const known = card.kind === 'two-tower' ? Object.keys(card.prompts) : [];
    if (!known.includes(type)) {
      const expected = known.length === 0 ? 'this model has no prompt types' : `its prompt types are ${known.map((k) => `\`${k}\``).join(', ')}`;
      throw new OpenAiRequestError(404, `The model \`${requested}\` does not exist: \`${type}\` is not a prompt type of \`${base}\`; ${expected}`, 'model', 'model_not_found');
    }
  }
  return { side, type };
}

/** The side and prompt type of a request: the model-name suffix and the body fields must agree; the query side by default. */
export function chooseSide(fromName: ModelSelection, body: { side: Side | undefined; type: string | undefined }): { side: Side; type: string | undefined } {
  if (fromName.side !== undefined && body.side !== undefined && fromName.side !== body.side) {
    throw new OpenAiRequestError(400, `side: the model name selects the ${fromName.side} side but side is "${body.side}"; give one of them`, 'side');
  }
  if (fromName.type !== undefined && body.type !== undefined && fromName.type !== body.type) {
    throw new OpenAiRequestError(400, `type: the model name selects prompt type "${fromName.type}" but type is "${body.type}"; give one of them`, 'type');
  }
  return { side: fromName.side ?? body.side ?? 'query', type: fromName.type ?? body.type };
}

/** The model as the OpenAI-compatible routes see it. */
export interface ServedModel {
  modelId: string;
  /** Embedding width (0 for a cross-encoder). */
  dimension: number;
  card: ModelCard;
  /** servedModelNames(): the names it answers to. */
  names: readonly string[];
}

/** What one POST /v1/embeddings asks the model to do. */
export interface EmbeddingsPlan {
  texts: string[];
  side: Side;
  /** A prompt type of the model, or undefined for the text as is. */
  type: string | undefined;
  encodingFormat: EncodingFormat;
}

/**
 * Everything checkable about a POST /v1/embeddings body before the model runs: the fields, the
 * model name, that the model has embeddings, `dimensions`, the prompt type. Returns the error
 * (400 or 404) for the first problem found.
 */
export function planEmbeddings(body: unknown, served: ServedModel, maxTexts: number): EmbeddingsPlan | OpenAiRequestError {
  try {
    const request = parseEmbeddingsRequest(body, maxTexts);
    const { side, type } = chooseSide(resolveModelName(request.model, served.names, served.card), request);
    const card = served.card;
    if (card.kind !== 'two-tower') {
      return new OpenAiRequestError(400, `model ${served.modelId} is a cross-encoder: it scores (query, doc) pairs and has no embeddings; use POST /score with {"pairs": [["query", "doc"], ...]}`, 'model', 'model_not_embedding');
    }
    if (request.dimensions !== undefined && request.dimensions !== served.dimension) {
      return new OpenAiRequestError(
        400,
        `dimensions: this model's embeddings have ${served.dimension} dimensions and cannot be shortened (Kiln models are not trained for truncated, Matryoshka-style vectors); omit dimensions or send ${served.dimension}`,
        'dimensions',
      );
    }
    // A type from the name suffix is checked by resolveModelName; this one came in the body.
    if (type !== undefined && !Object.hasOwn(card.prompts, type)) {
      const known = Object.keys(card.prompts);
      const expected = known.length === 0 ? 'this model has no prompt types; omit type' : `expected one of ${known.map((k) => JSON.stringify(k)).join(', ')} (or omit type)`;
      return new OpenAiRequestError(400, `type: ${JSON.stringify(type)} is not a prompt type of this model; ${expected}`, 'type');
    }
    return { texts: request.texts, side, type, encodingFormat: request.encodingFormat };
  } catch (error) {
    if (error instanceof OpenAiRequestError) return error;
    throw error;
  }
}

/** GET /v1/models/NAME: the model object for any name POST /v1/embeddings accepts, suffixes included. */
export function retrieveModel(name: string, served: ServedModel): ReturnType<typeof modelObject> | OpenAiRequestError {
  try {
    resolveModelName(name, served.names, served.card);
    return modelObject(name, served.card);
  } catch (error) {
    if (error instanceof OpenAiRequestError) return error;
    throw error;
  }
}

/** An embedding as OpenAI's base64 format has it: the float32 values, little-endian, base64. */
export function base64Embedding(vector: Float32Array): string {
  const bytes = Buffer.allocUnsafe(vector.length * 4);
  // writeFloatLE, not the array's own bytes: the format is little-endian whatever the machine is.
  for (let i = 0; i < vector.length; i++) bytes.writeFloatLE(vector[i]!, i * 4);
  return bytes.toString('base64');
}

/** GET /v1/models's entry for one name. `created` is the export time (Unix seconds), as OpenAI gives a model's creation time. */
export function modelObject(id: string, card: ModelCard): { id: string; object: 'model'; created: number; owned_by: string } {
  const exported = Date.parse(card.exportedAt);
  return { id, object: 'model', created: Number.isFinite(exported) ? Math.floor(exported / 1000) : 0, owned_by: 'kiln' };
}

/** A short description of a JSON value for error messages (shared with server.ts's request schemas). */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'string') return value.length > 40 ? `the string ${JSON.stringify(`${value.slice(0, 40)}…`)}` : `the string ${JSON.stringify(value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
