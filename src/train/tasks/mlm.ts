/**
 * `task: mlm`: BERT masked-language-model pretraining on a text corpus (the `domain-corpus`
 * recipe: ESCO, O*NET and SkillSpan training sentences). The texts are WordPiece-tokenised,
 * packed into full `data.max_length` sequences (no padding wasted), and `mlm.held_out` of
 * them are kept out of training to report `heldout/mlm_loss` and `heldout/mlm_accuracy`.
 * The run's encoder initialises later runs through `model.init_from: runs/<id>`.
 */
import { createWeightedLoss } from '../../losses/index.js';
import { MaskedLanguageModel, type KindedModel, type MaskedLmConfig, type RunModelJsons } from '../../models/index.js';
import { createContext } from '../../data/files.js';
import { loadRecipe } from '../../data/recipes/index.js';
import { continuationTable, packSequences, specialTokenIds, type MaskOptions } from '../../data/mlm.js';
import { Rng } from '../../data/rng.js';
import type { TextExample } from '../../data/types.js';
import { evaluateMaskedLm, maskHeldOut } from '../../eval/masked-lm.js';
import { prepareEncoder } from '../setup.js';
import { applyInitSource, formatInitReport, lineageOf } from '../init-from.js';
import { MlmStrategy, ShuffledBatches } from '../strategies/mlm.js';
import { stepBatches } from '../data-adapters.js';
import type { Task } from '../task.js';

export const mlmTask: Task = {
  async prepare({ config, dataRoot: dataRootFlag, write, saved }) {
    const base = prepareEncoder(config, dataRootFlag, saved);
    const { tokenizer } = base;
    const ctx = createContext({ dataRoot: base.dataRoot, onBadRow: config.data.on_bad_row, seed: config.seed });
    const texts: TextExample[] = [];
    const counts: Record<string, number> = {};
    for (const use of config.data.train) {
      const loaded = await loadRecipe(use.recipe, ctx, use.options);
      if (loaded.kind !== 'corpus') throw new Error(`data.train: recipe '${use.recipe}' yields ${loaded.kind}, not a text corpus`);
      for (const text of loaded.data) texts.push(text);
      counts[use.recipe] = (counts[use.recipe] ?? 0) + loaded.data.length;
    }
    const started = performance.now();
    const pieces = texts.map((t) => tokenizer.pieceIds(t.text));
    tokenizer.clearCache(); // a corpus is read once: caching every text would only hold memory
    const length = config.data.max_length;
    const packed = packSequences(pieces, length, { clsId: tokenizer.clsId, sepId: tokenizer.sepId });
    const tokenCount = pieces.reduce((n, p) => n + p.length, 0);
    // A seeded split: the held-out sequences are the same for every run with this seed and corpus.
    const order = Rng.derive(config.seed, 'mlm-heldout').permutation(packed.length);
    const heldOutCount = Math.min(config.mlm.held_out, Math.floor(packed.length / 10));
    const heldOut = Array.from(order.subarray(0, heldOutCount), (i) => packed[i]!);
    const training = Array.from(order.subarray(heldOutCount), (i) => packed[i]!);
    if (training.length < config.train.batch_size) throw new Error(`the corpus packs into ${training.length} training sequences of ${length} tokens, fewer than train.batch_size ${config.train.batch_size}`);
    const continuation = continuationTable(tokenizer);
    const mask: MaskOptions = {
      maskId: tokenizer.maskId,
      padId: tokenizer.padId,
      vocabSize: tokenizer.vocabSize,
      specialIds: specialTokenIds(tokenizer),
      maskProbability: config.mlm.probability,
      wholeWord: config.mlm.whole_word,
      isContinuation: (id) => continuation[id] === 1,
    };
    const modelConfig: MaskedLmConfig = { encoder: base.encoder };
    const tokenizeSeconds = (performance.now() - started) / 1000;
    const modelJson: RunModelJsons['masked-lm'] = { kind: 'masked-lm', ...modelConfig, maxLength: { sequence: length }, ...lineageOf(base.init) };
    return {
      modelJson,
      tokenizer,
      dataFiles: [...base.files, ...(ctx.filesRead ?? [])],
      describeData: () => [
        `${texts.length} texts (${Object.entries(counts).map(([r, n]) => `${r} ${n}`).join(', ')}), ${tokenCount} WordPiece tokens packed into ${packed.length} sequences of ≤${length} in ${tokenizeSeconds.toFixed(1)} s; ${heldOut.length} held out`,
      ],
      start({ resuming, parallel }) {
        const model = new MaskedLanguageModel(modelConfig);
        const kinded: KindedModel = { kind: 'masked-lm', model, json: modelJson };
        if (base.init !== null && !resuming) write(formatInitReport(applyInitSource(kinded, base.init)));
        const loss = createWeightedLoss(config.loss);
        const strategy = new MlmStrategy({
          model,
          loss,
          sequences: training,
          batches: stepBatches(new ShuffledBatches(training.length, config.train.batch_size, config.seed), config, parallel),
          mask,
          seed: config.seed,
          device: config.train.device,
        });
        const masked = maskHeldOut(heldOut, mask, config.seed);
        return {
          model: kinded,
          strategy,
          evaluate: heldOut.length === 0
            ? null
            : () => {
                const m = evaluateMaskedLm(model, masked, { batchSize: 64, precision: config.train.precision, device: config.train.device });
                return { 'heldout/mlm_loss': m.mlm_loss, 'heldout/mlm_accuracy': m.mlm_accuracy };
              },
          summarize(end, metrics, runId) {
            const rows = Object.entries(metrics).map(([k, v]) => `${k.padEnd(22)} ${k.endsWith('accuracy') ? `${(100 * v).toFixed(2)}%` : v.toFixed(4)}`);
            return {
              fields: { corpus: { texts: counts, tokens: tokenCount, sequences: packed.length, heldOut: heldOut.length, sequenceLength: length } },
              table: `run ${runId} (${end.status}):\n${rows.length === 0 ? 'no held-out evaluation' : rows.join('\n')}`,
            };
          },
          dispose() {
            strategy.dispose();
            loss.dispose();
          },
        };
      },
    };
  },
};
