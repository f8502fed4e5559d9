/**
 * `kiln serve --model DIR | --skills SKILLS_DIR [--index INDEX_DIR] [--port 8080] [--host 127.0.0.1] [--max-batch 64] [--max-wait-ms 5]
 *             [--max-body-bytes 1048576] [--max-texts 256] [--max-queue 4096] [--threads N] [--no-spin] [--no-model-thread] [--served-model-name NAME ...]
 *             [--quiet] [--json]`
 *
 * Serves an exported model (`kiln export --out DIR`) over HTTP: POST /embed, POST /score,
 * GET /healthz, GET /metrics, the OpenAI-compatible POST /v1/embeddings and GET /v1/models, with
 * --index POST /search, and with --skills POST /skills (see src/serve/server.ts).
 * --served-model-name adds names the OpenAI-compatible routes accept, beside the model id and
 * its run name (src/serve/openai-compat.ts). --skills alone serves the skills model's own copy of its model
 * (SKILLS_DIR/model); with --model too, both must hold the same model (same model id), else
 * exit 2. Binds loopback unless told otherwise.
 * Prints one line once listening, with the real port (so `--port 0` is usable by scripts).
 * --json prints that information as one JSON object on stdout instead (url, model id, the
 * OpenAI-compatible base URL, index and skills when served); the shutdown lines then go to
 * stderr, so stdout stays one JSON document. --quiet prints nothing but errors (and, with
 * --json, the JSON object, which a supervisor asked for explicitly).
 * SIGTERM or SIGINT stops accepting, answers every in-flight and queued request, releases the
 * model and exits 0; a second signal exits 1 at once.
 *
 * @example
 * $ kiln serve --model exports/twotower --port 8080
 * listening on http://127.0.0.1:8080 (model twotower-20261123-101500@3f2a9c01b2d4, two-tower cosine 256-d; max batch 64, max wait 5 ms)
 * OpenAI-compatible API: http://127.0.0.1:8080/v1 (model twotower-20261123-101500@3f2a9c01b2d4, twotower-20261123-101500; add :doc for the document side)
 * $ curl -s localhost:8080/embed -H 'content-type: application/json' -d '{"texts": ["data engineer"], "side": "query"}'
 * $ curl -s localhost:8080/v1/embeddings -H 'content-type: application/json' -d '{"input": "data engineer", "model": "twotower-20261123-101500"}'
 *
 * $ kiln serve --skills skills/twotower --port 8080
 * listening on http://127.0.0.1:8080 (model twotower-20261123-101500@3f2a9c01b2d4, two-tower cosine 256-d; max batch 64, max wait 5 ms; /skills over 13896 skills)
 * $ curl -s localhost:8080/skills -H 'content-type: application/json' -d '{"text": "Requirements:\n- Python and SQL"}'
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';

import { trainingRunGivenAsModel } from '../../track/run-dir.js';
import { UsageError } from '../usage.js';
import { SERVER_DEFAULTS, startServer, type RunningServer } from '../../serve/server.js';
import { servedModelNames } from '../../serve/openai-compat.js';

interface ServeArgs {
  model?: string;
  port: number;
  host: string;
  'max-batch': number;
  'max-wait-ms': number;
  'max-body-bytes': number;
  'max-texts': number;
  'max-queue': number;
  threads?: number;
  spin: boolean;
  'model-thread': boolean;
  index?: string;
  'lexical-threads': number;
  skills?: string;
  'served-model-name'?: string[];
  quiet: boolean;
  json: boolean;
}

export const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Serve an exported model over HTTP (/embed, /score, OpenAI-compatible /v1/embeddings, /search with --index, /skills with --skills, /healthz, /metrics)',
  builder: (y) =>
    y
      .option('model', { type: 'string', describe: 'Exported model directory (kiln export --out DIR); optional with --skills' })
      .option('skills', { type: 'string', describe: "A skills model (kiln skills build --out DIR): adds POST /skills; without --model, its own model is served" })
      .option('port', { type: 'number', default: 8080, describe: 'TCP port (0: any free port, printed at start)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Interface to bind (0.0.0.0 exposes the service to the network)' })
      .option('max-batch', { type: 'number', default: SERVER_DEFAULTS.maxBatch, describe: 'Most texts per model call' })
      .option('max-wait-ms', { type: 'number', default: SERVER_DEFAULTS.maxWaitMs, describe: 'Longest a request waits for others to share its model call' })
      .option('max-body-bytes', { type: 'number', default: SERVER_DEFAULTS.maxBodyBytes, describe: 'Largest request body (bigger: 413)' })
      .option('max-texts', { type: 'number', default: SERVER_DEFAULTS.maxTexts, describe: 'Most texts or pairs per request (more: 400)' })
      .option('max-queue', { type: 'number', default: SERVER_DEFAULTS.maxQueue, describe: 'Most texts waiting for the model (more: 503 with Retry-After)' })
      .option('threads', { type: 'number', describe: 'onnxruntime intra-op threads (default: all cores)' })
      .option('spin', { type: 'boolean', default: true, describe: "Let onnxruntime's idle threads spin-wait between model calls (--no-spin: they sleep, leaving the cores to the HTTP thread)" })
      .option('model-thread', {
        type: 'boolean',
        default: true,
        describe: 'Run the model in a worker thread, so requests are read and answered while it computes (--no-model-thread: on the HTTP thread)',
      })
      .option('index', { type: 'string', describe: 'A search index built with this model (kiln index build --out DIR): adds POST /search' })
      .option('lexical-threads', { type: 'number', default: 1, describe: "Worker threads for each lexical ranker (the index's, and with --skills BM25 and TF-IDF)" })
      .option('served-model-name', { type: 'string', array: true, describe: 'More names POST /v1/embeddings accepts for the model (beside its id and run name), e.g. one a client has hard-coded' })
      .option('quiet', { type: 'boolean', default: false, describe: 'Print nothing but errors: no "listening on" lines, no shutdown lines (with --json, the JSON object still prints)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the startup information (url, model id, OpenAI-compatible base URL, index, skills) as one JSON object on stdout instead of the text lines' })
      .check((args) => {
        const problem = checkArgs(args);
        if (problem !== undefined) throw new UsageError(problem);
        return true;
      }),
  handler: async (args) => {
    let server: RunningServer;
    try {
      server = await startServer({
        modelDir: args.model,
        skillsDir: args.skills,
        port: args.port,
        host: args.host,
        threads: args.threads,
        spinning: args.spin,
        modelThread: args['model-thread'],
        indexDir: args.index,
        lexicalThreads: args['lexical-threads'],
        maxBatch: args['max-batch'],
        maxWaitMs: args['max-wait-ms'],
        maxBodyBytes: args['max-body-bytes'],
        maxTexts: args['max-texts'],
        maxQueue: args['max-queue'],
        modelNames: aliases(args),
      });
    } catch (error) {
      // A bad card, a graph onnxruntime rejects, a port in use.
      process.stderr.write(`kiln serve: ${(error as Error).message}\n`);
      process.exitCode = 1;
      return;
    }
    announceListening(server, args);

    // Shutdown progress: stdout as always, but stderr under --json (stdout holds the one JSON
    // document) and nothing under --quiet.
    const say = (line: string): void => {
      if (args.quiet) return;
      (args.json ? process.stderr : process.stdout).write(`${line}\n`);
    };
    // Resolve when a signal has drained the server; the handler's return lets the process exit.
    await new Promise<void>((resolve) => {
      let stopping = false;
      const onSignal = (signal: NodeJS.Signals): void => {
        if (stopping) {
          process.stderr.write(`${signal} again: exiting without draining\n`);
          process.exit(1);
        }
        stopping = true;
        say(`${signal}: draining in-flight requests, then stopping`);
        server
          .close()
          .then(
            () => say('stopped'),
            (error: Error) => {
              process.stderr.write(`kiln serve: shutdown failed: ${error.message}\n`);
              process.exitCode = 1;
            },
          )
          .finally(() => {
            process.off('SIGTERM', onSignal);
            process.off('SIGINT', onSignal);
            resolve();
          });
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
  },
};

/**
 * The startup information, once listening: the text lines (tests and scripts match them, so
 * they stay as they are), or with --json one JSON object; nothing under --quiet alone.
 */
function announceListening(server: RunningServer, args: ServeArgs): void {
  const card = server.model.card;
  const openAiNames = card.kind === 'two-tower' ? servedModelNames(server.model.modelId, aliases(args)) : null;
  if (args.json) {
    const manifest = server.index?.manifest;
    const startup = {
      url: server.url,
      model: server.model.modelId,
      kind: card.kind,
      ...(card.kind === 'two-tower' ? { head: card.head, dimension: card.dimension } : {}),
      maxBatch: args['max-batch'],
      maxWaitMs: args['max-wait-ms'],
      // Only a two-tower model has the OpenAI-compatible embeddings routes.
      openai: openAiNames === null ? null : { baseUrl: `${server.url}/v1`, models: openAiNames },
      index: manifest === undefined ? null : { documents: manifest.documents, dense: manifest.dense.search, lexical: manifest.hybrid.lexical, method: manifest.hybrid.method },
      skills: server.skills === undefined ? null : { skills: server.skills.files.skills.length },
    };
    process.stdout.write(`${JSON.stringify(startup)}\n`);
    return;
  }
  if (args.quiet) return;
  const what = card.kind === 'two-tower' ? `two-tower ${card.head} ${card.dimension}-d` : 'cross-encoder';
  const searching = server.index === undefined ? '' : `; /search over ${server.index.manifest.documents} documents (${server.index.manifest.dense.search} dense, ${server.index.manifest.hybrid.lexical}, ${server.index.manifest.hybrid.method})`;
  const tagging = server.skills === undefined ? '' : `; /skills over ${server.skills.files.skills.length} skills`;
  process.stdout.write(`listening on ${server.url} (model ${server.model.modelId}, ${what}; max batch ${args['max-batch']}, max wait ${args['max-wait-ms']} ms${searching}${tagging})\n`);
  if (openAiNames !== null) process.stdout.write(`OpenAI-compatible API: ${server.url}/v1 (model ${openAiNames.join(', ')}; add :doc for the document side)\n`);
}

/** --served-model-name's names, trimmed. */
function aliases(args: ServeArgs): string[] {
  return (args['served-model-name'] ?? []).map((name) => String(name).trim());
}

/** What is wrong with the arguments (a usage error: exit 2), or undefined. */
function checkArgs(args: ServeArgs): string | undefined {
  if (!Number.isInteger(args.port) || args.port < 0 || args.port > 65535) return `--port must be an integer in 0..65535, got ${String(args.port)}`;
  for (const key of ['max-batch', 'max-body-bytes', 'max-texts', 'max-queue'] as const) {
    if (!Number.isInteger(args[key]) || args[key] < 1) return `--${key} must be an integer ≥ 1, got ${String(args[key])}`;
  }
  if (!Number.isFinite(args['max-wait-ms']) || args['max-wait-ms'] < 0) return `--max-wait-ms must be a number ≥ 0, got ${String(args['max-wait-ms'])}`;
  if (args.threads !== undefined && (!Number.isInteger(args.threads) || args.threads < 1)) return `--threads must be an integer ≥ 1, got ${String(args.threads)}`;
  if (!Number.isInteger(args['lexical-threads']) || args['lexical-threads'] < 1) return `--lexical-threads must be an integer ≥ 1, got ${String(args['lexical-threads'])}`;
  if (args.host.trim() === '') return '--host must name an interface, e.g. 127.0.0.1';
  if (aliases(args).includes('')) return '--served-model-name must not be empty';
  if (args.index !== undefined && !existsSync(join(args.index, 'index.json'))) {
    return `--index ${args.index}: no index.json there; expected a directory written by \`kiln index build\` (e.g. npx kiln index build --model exports/twotower --corpus skills.csv --out indexes/skills)`;
  }
  if (args.model === undefined && args.skills === undefined) {
    return 'nothing to serve: give --model DIR (an exported model: kiln export --out DIR) or --skills DIR (a skills model: kiln skills build --out DIR), or both';
  }
  // Before the model.json check: a run has a model.json too (its model config), and the fix is
  // to export it, not to look for another directory.
  if (typeof args.model === 'string') {
    const trainingRun = trainingRunGivenAsModel('--model', args.model);
    if (trainingRun !== null) return trainingRun;
  }
  if (typeof args.model === 'string' && !existsSync(join(args.model, 'model.json'))) {
    return `--model ${args.model}: no model.json there; expected a directory written by \`kiln export\` (e.g. npx kiln export --run runs/<id> --out exports/twotower)`;
  }
  if (typeof args.skills === 'string' && !existsSync(join(args.skills, 'skills.json'))) {
    return `--skills ${args.skills}: no skills.json there; expected a directory written by \`kiln skills build\` (e.g. npx kiln skills build --model exports/twotower --out skills/twotower)`;
  }
  if (typeof args.model === 'string' && typeof args.skills === 'string') {
    // Its index holds one model's vectors of the skills: the served model must be that one.
    const modelId = readModelId(join(args.model, 'model.json'));
    const skillsModelId = readModelId(join(args.skills, 'skills.json'));
    if (modelId !== undefined && skillsModelId !== undefined && modelId !== skillsModelId) {
      return `--skills ${args.skills} was built with model ${skillsModelId}, but --model ${args.model} is ${modelId}; leave out --model to serve the skills model's own (${join(args.skills, 'model')}), or rebuild it with \`kiln skills build --model ${args.model}\``;
    }
  }
  return undefined;
}

/** The "modelId" of a model card or skills manifest; undefined when unreadable (loading reports that). */
function readModelId(file: string): string | undefined {
  try {
    const id = (JSON.parse(readFileSync(file, 'utf8')) as { modelId?: unknown }).modelId;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}
