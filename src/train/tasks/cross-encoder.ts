/**
 * `task: cross-encoder`: a cross-encoder trained on the same (query, document) pairs as the
 * two-tower model, each positive against k negatives mined by BM25 or by a two-tower run
 * (../cross-encoder-negatives.ts). It is evaluated by re-ranking the top-k candidates of a
 * first-stage retriever on the same splits and metrics as the two-tower configs
 * (src/eval/rerank.ts), with BM25 beside it.
 */
import { noGrad, tidy } from '../../engine/index.js';
import { createWeightedLoss, LOSSES } from '../../losses/index.js';
import { CrossEncoderModel, loadRunModel, type CrossEncoderConfig, type KindedModel, type LoadedRunModel, type RunModelJsons } from '../../models/index.js';
import { ModelEmbedder } from '../../eval/embedder.js';
import { cachedFirstStage, CrossEncoderScorer, evaluateSplitsReranked, type FirstStage, type RerankOptions } from '../../eval/rerank.js';
import { lexicalRanker, CorpusEmbeddings, type EvalSplit } from '../../eval/splits.js';
import type { KilnConfig } from '../../config/schema.js';
import { ConfigError } from '../../config/errors.js';
import { loadRunData, prepareEncoder } from '../setup.js';
import { applyInitSource, formatInitReport, lineageOf } from '../init-from.js';
import { formatSummaryTable, lexicalBaselinesAfter } from '../summary.js';
import { createPairBatchSource, stepBatches } from '../data-adapters.js';
import { CandidateMiner, resolveRunSource } from '../cross-encoder-negatives.js';
import { CrossEncoderStrategy } from '../strategies/cross-encoder.js';
import type { Task } from '../task.js';
import { describePairData, tokenizePairs } from './two-tower.js';

/** The retriever whose candidates are re-ranked: BM25 on the split's corpus, or a two-tower run. */
function firstStageFor(config: KilnConfig, source = config.cross_encoder.rerank.first_stage): { stage: FirstStage; release: () => void; name: string } {
  if (source === 'bm25') {
    return {
      name: 'bm25',
      stage: cachedFirstStage((split) => {
        const ranker = lexicalRanker(split, 'bm25', config.eval.lexical);
        const queries = split.queries.map((q) => q.text);
        return { scoreRows: (start, end) => ranker.scoreMatrix(queries.slice(start, end)) };
      }),
      release: () => {},
    };
  }
  const run: LoadedRunModel = loadRunModel(resolveRunSource(source, 'cross_encoder.rerank.first_stage'));
  if (run.kind !== 'two-tower') {
    run.model.dispose();
    throw new Error(`cross_encoder.rerank.first_stage ${source}: a ${run.kind} run cannot retrieve; expected a two-tower run`);
  }
  const embedder = new ModelEmbedder(run.model, run.tokenizer, { maxLength: run.json.maxLength, batchSize: 256, precision: 'fp32', device: 'cpu' });
  return {
    name: source,
    stage: cachedFirstStage((split) => {
      const rows = tidy(() => {
        const corpora = new CorpusEmbeddings(embedder);
        try {
          const queries = embedder.embed('query', split.queryType, split.queries.map((q) => q.text));
          return embedder.scorer(queries, corpora.get(split)).scoreRows(0, split.queries.length);
        } finally {
          corpora.dispose();
        }
      });
      const n = split.corpus.length;
      return { scoreRows: (start, end) => rows.slice(start * n, end * n) };
    }),
    release: () => run.model.dispose(),
  };
}

function rerankOptions(config: KilnConfig, sampled: boolean): RerankOptions {
  const { top_k: topK, max_queries: maxQueries, fusion } = config.cross_encoder.rerank;
  return { topK, sampled, maxQueries, seed: config.seed, fusionWeight: fusion?.weight ?? null, residualTemperature: config.cross_encoder.residual?.temperature ?? null };
}

/**
 * A residual cross-encoder corrects one run's scores, so the run that mines its training
 * candidates and the first stage it re-ranks must be the same run, and every evaluation split
 * must be a retrieval split (a scored pair has no first-stage score to correct). Returns the run.
 */
function checkResidual(config: KilnConfig, evalSplits: readonly EvalSplit[]): string {
  const { negatives, rerank } = config.cross_encoder;
  const mining = resolveRunSource(negatives.source, 'cross_encoder.negatives.source');
  const first = resolveRunSource(rerank.first_stage, 'cross_encoder.rerank.first_stage');
  const problems: string[] = [];
  if (mining !== first) {
    problems.push(`cross_encoder.residual: corrects the scores of one run, but negatives.source is ${mining} and rerank.first_stage is ${first}; set both to the same run:<dir>`);
  }
  for (const split of evalSplits) {
    if (split.kind !== 'retrieval') problems.push(`data.eval ${split.spec.name}: a residual cross-encoder re-ranks a first stage's candidates, and a scored-pair split has none; remove the split or cross_encoder.residual`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return mining;
}

export const crossEncoderTask: Task = {
  async prepare({ config, dataRoot: dataRootFlag, write, saved }) {
    const base = prepareEncoder(config, dataRootFlag, saved);
    const { tokenizer } = base;
    const data = await loadRunData(config, base.dataRoot);
    if (data.pairs.length < config.train.batch_size) throw new Error(`only ${data.pairs.length} training pairs, fewer than train.batch_size ${config.train.batch_size}`);
    const maxLength = config.data.max_length;
    const { pairs, pool } = tokenizePairs(data, tokenizer, (_type, text) => text, { query: maxLength, doc: maxLength });
    // A first stage that names a missing run is a config error before the run directory exists.
    if (config.cross_encoder.rerank.first_stage !== 'bm25') resolveRunSource(config.cross_encoder.rerank.first_stage, 'cross_encoder.rerank.first_stage');
    const negatives = config.cross_encoder.negatives;
    const residual = config.cross_encoder.residual;
    const residualOf = residual === null ? null : checkResidual(config, data.evalSplits);
    const keepScores = residual !== null || config.loss.some((entry) => LOSSES[entry.name].input === 'teacher_scores');
    const mined = new CandidateMiner(data, pairs, pool, {
      source: negatives.source,
      poolSize: negatives.pool,
      k: negatives.k,
      seed: config.seed,
      keepScores,
      maxRelativeScore: negatives.max_relative_score,
    });
    const modelConfig: CrossEncoderConfig = { encoder: base.encoder, pooling: config.model.pooling };
    const json: RunModelJsons['cross-encoder'] = {
      kind: 'cross-encoder',
      ...modelConfig,
      maxLength: { pair: maxLength },
      ...lineageOf(base.init),
      ...(residual === null || residualOf === null ? {} : { residual: { run: residualOf, temperature: residual.temperature } }),
    };
    return {
      modelJson: json,
      tokenizer,
      dataFiles: [...base.files, ...data.filesRead],
      describeData: () => [
        ...describePairData(data),
        `${negatives.k} negatives per positive${negatives.random > 0 ? ` (${negatives.random} random)` : ''} from ${mined.description}` +
          (negatives.max_relative_score === null ? '' : `, dropping candidates it scores at ${negatives.max_relative_score} of the positive or above`),
        ...(residual === null ? [] : [`a residual over that run's scores: run/${residual.temperature} + cross-encoder`]),
      ],
      start({ resuming, parallel }) {
        const model = new CrossEncoderModel(modelConfig);
        const kinded: KindedModel = { kind: 'cross-encoder', model, json };
        if (base.init !== null && !resuming) write(formatInitReport(applyInitSource(kinded, base.init, { pairInput: true })));
        // A residual starts as the run it corrects: a zero classifier adds nothing to run/τ at step 0.
        if (residual !== null && !resuming) {
          noGrad(() => {
            model.classifier.weight.zero_();
            model.classifier.bias?.zero_();
          });
        }
        const loss = createWeightedLoss(config.loss);
        const strategy = new CrossEncoderStrategy({
          model,
          loss,
          pairs: data.pairs,
          candidates: mined,
          positivePoolIndex: pairs.docPoolIndex,
          randomNegatives: negatives.random,
          poolTexts: pool.texts,
          k: negatives.k,
          batches: stepBatches(createPairBatchSource(pairs, data.pairRanges, config), config, parallel),
          tokenizer,
          maxLength,
          seed: config.seed,
          device: config.train.device,
          residualTemperature: residual?.temperature ?? null,
        });
        const first = data.evalSplits.length === 0 ? null : firstStageFor(config);
        const scorer = new CrossEncoderScorer(model, tokenizer, { maxLength, batchSize: 128, precision: config.train.precision, device: config.train.device });
        return {
          model: kinded,
          strategy,
          evaluate:
            first === null ? null : (step) => evaluateSplitsReranked(data.evalSplits, first.stage, scorer, rerankOptions(config, step < config.train.steps)),
          summarize(end, metrics, runId) {
            const lexical = lexicalBaselinesAfter(end.status, data.evalSplits);
            return {
              fields: {
                ...lexical,
                firstStage: first?.name ?? null,
                rerankTopK: config.cross_encoder.rerank.top_k,
                trainingPairs: data.pairCounts,
                badRows: data.badRows.toJSON(),
                // Positive-aware mining: how many candidates it kept and dropped (this process's mining, since the last start).
                ...(negatives.max_relative_score === null ? {} : { positiveAwareMining: { ...mined.filtered } }),
              },
              table: `${formatSummaryTable({ runId, metrics, ...lexical })}\n(kiln = the cross-encoder re-ranking the top ${config.cross_encoder.rerank.top_k} of ${first?.name ?? '-'})`,
            };
          },
          dispose() {
            strategy.dispose();
            loss.dispose();
            first?.release();
          },
        };
      },
    };
  },
  evaluator(config, loaded) {
    if (loaded.kind !== 'cross-encoder') throw new Error(`${loaded.runPath}: a ${loaded.kind} model in a cross-encoder run`);
    // A residual model re-ranks the run it corrects, with its τ, whatever the evaluating config says.
    const residual = loaded.json.residual;
    const first = residual === undefined ? firstStageFor(config) : firstStageFor(config, `run:${residual.run}`);
    const scorer = new CrossEncoderScorer(loaded.model, loaded.tokenizer, { maxLength: loaded.json.maxLength.pair, batchSize: 128, precision: config.train.precision, device: config.train.device });
    const options = { ...rerankOptions(config, false), residualTemperature: residual?.temperature ?? null };
    return {
      evaluate: (splits) => evaluateSplitsReranked(splits, first.stage, scorer, options),
      dispose: () => first.release(),
    };
  },
};
