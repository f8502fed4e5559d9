/**
 * The distillation strategy: a two-tower student learns from a frozen teacher on the labelled
 * pairs, with any weighted sum of the labelled losses and the distillation losses. It computes
 * only the inputs its losses read:
 *
 *   q = student.encode(prompt(query))                        [B, Hs]
 *   d = student.encode(prompt(docs))                         [C, Hs]; docs = the B positives, then,
 *                                                            for a cross-encoder teacher, k candidates
 *                                                            per query (mined on first use)
 *   scores          S = student.head.matrix(q, d)            the labelled losses (infonce, bce, …)
 *   embeddings      [q; d₊] ↔ teacher.embed(…)               bi-encoder teacher (embedding_mse)
 *   teacher_scores  bi-encoder: S[:, :B] ↔ teacher.matrix    in-batch similarities, same concept excluded
 *                   cross-encoder: S at (i, i) and (i, B + i·k + j) ↔ CE(query_i, doc_ij)
 *                                                            [B, 1 + k], the positive in column 0
 *                                                            (margin_mse, similarity_kl)
 *   layers          the student's and the teacher's hidden states and attention maps on the
 *                   query batch's token ids, through the layer map (hidden_mse, attention_kl)
 *
 * The teacher's embeddings and scores come through its content-hash cache (../teacher-cache.ts),
 * so an epoch after the first does not run it. The k candidates of step s are drawn from
 * Rng.derive(seed, `distill:s:m`), a pure function of the step, so a resumed run draws the same.
 */
import { cat, fromTypedArray, zeros, type Tensor } from '../../engine/index.js';
import { Rng } from '../../data/rng.js';
import { padToTensors } from '../../models/inputs.js';
import type { EncoderStates, TwoTowerModel } from '../../models/index.js';
import type { LayerDistillBatch, LossInputs, WeightedLoss } from '../../losses/index.js';
import type { Teacher } from '../teacher.js';
import { drawCandidates, type CandidateSource } from '../cross-encoder-negatives.js';
import type { StepContext, StepOutput, TrainStrategy } from '../strategy.js';
import { sameGroupExclusion, type NegativePool, type PairBatchSource, type TokenizedPairs } from './two-tower.js';

/** What the strategy knows of each training pair's texts (the teacher reads raw text; the student its prompted ids). */
export interface PairTexts {
  query: string;
  doc: string;
  queryType: string;
  docType: string;
}

export interface DistillStrategyOptions {
  student: TwoTowerModel;
  teacher: Teacher;
  loss: WeightedLoss;
  pairs: TokenizedPairs;
  texts: readonly PairTexts[];
  pool: NegativePool;
  batches: PairBatchSource;
  padId: number;
  device: 'cpu' | 'cuda';
  maskSameGroup: boolean;
  /** A cross-encoder teacher's candidates per pair (pool indices) and how many it scores per step. */
  candidates: { source: CandidateSource; k: number } | null;
  /** Mapped [student, teacher] layer pairs (0 = embeddings). */
  layerPairs: ReadonlyArray<readonly [number, number]>;
  seed: number;
}

export class DistillStrategy implements TrainStrategy {
  readonly modules;
  readonly #inputs: Set<string>;

  constructor(private readonly o: DistillStrategyOptions) {
    this.modules = [
      { name: 'model', module: o.student },
      { name: 'loss', module: o.loss },
    ];
    this.#inputs = new Set(o.loss.inputs);
    if (o.teacher.kind === 'cross-encoder' && o.candidates === null) throw new Error('a cross-encoder teacher needs mined candidates');
  }

  step(context: StepContext): StepOutput {
    const { student, teacher, pairs, texts } = this.o;
    const items = [...this.o.batches.next()];
    const b = items.length;
    const wantLayers = this.#inputs.has('layers');
    const studentStates: EncoderStates | undefined = wantLayers ? { hidden: [], attentions: [] } : undefined;
    const queries = padToTensors(items.map((i) => pairs.queryIds[i]!), this.o.padId, this.o.device);
    const q = student.encode('query', queries, studentStates);

    // The documents: the B positives, then k candidates per query for a cross-encoder teacher.
    const docSeqs = items.map((i) => pairs.docIds[i]!);
    const groups = items.map((i) => pairs.group[i]!);
    const candidateGroups = [...groups];
    const candidateDocs: number[][] = [];
    const candidates = this.o.candidates;
    if (candidates !== null) {
      const rng = Rng.derive(this.o.seed, `distill:${context.step}:${context.slice}`);
      const pools = candidates.source.candidatesOf(items);
      for (const [row, i] of items.entries()) {
        const pool = pools[row]!;
        if (pool.length === 0) throw new Error(`training pair ${i} (${JSON.stringify(texts[i]!.query)}) has no candidates`);
        const chosen = drawCandidates(rng, pool, candidates.k);
        candidateDocs.push(chosen);
        for (const doc of chosen) {
          docSeqs.push(this.o.pool.docIds[doc]!);
          candidateGroups.push(this.o.pool.group[doc]!);
        }
      }
    }
    const docs = padToTensors(docSeqs, this.o.padId, this.o.device);
    const d = student.encode('doc', docs);
    const inputs: LossInputs = {};
    const logs: Record<string, number> = {};

    let scores: Tensor | null = null;
    const studentScores = (): Tensor => (scores ??= student.head.matrix(q, d));
    const exclude = this.o.maskSameGroup ? sameGroupExclusion(groups, candidateGroups, this.o.device) : undefined;
    if (this.#inputs.has('scores')) inputs.scores = { scores: studentScores(), exclude, groups: Int32Array.from(groups) };

    if (teacher.kind === 'bi-encoder' && (this.#inputs.has('embeddings') || this.#inputs.has('teacher_scores'))) {
      const tq = this.#teacherEmbeddings('query', items);
      const td = this.#teacherEmbeddings('doc', items);
      if (this.#inputs.has('embeddings')) {
        const width = teacher.encoderConfig.hiddenSize;
        inputs.embeddings = {
          student: cat([q, d.narrow(0, 0, b)], 0),
          teacher: fromTypedArray(concat(tq, td), { shape: [2 * b, width], device: this.o.device }),
        };
      }
      if (this.#inputs.has('teacher_scores')) {
        const inBatchExclude = exclude?.narrow(1, 0, b);
        inputs.teacher_scores = { student: studentScores().narrow(1, 0, b), teacher: teacher.matrix(tq, td), exclude: inBatchExclude, positiveIndex: arange(b, this.o.device) };
      }
    }
    if (teacher.kind === 'cross-encoder' && this.#inputs.has('teacher_scores')) {
      const k = candidates!.k;
      const queryTexts: string[] = [];
      const docTexts: string[] = [];
      const gatherIndex = new BigInt64Array(b * (1 + k));
      items.forEach((item, i) => {
        queryTexts.push(texts[item]!.query);
        docTexts.push(texts[item]!.doc);
        gatherIndex[i * (1 + k)] = BigInt(i);
        candidateDocs[i]!.forEach((doc, j) => {
          queryTexts.push(texts[item]!.query);
          docTexts.push(this.o.pool.texts[doc]!);
          gatherIndex[i * (1 + k) + 1 + j] = BigInt(b + i * k + j);
        });
      });
      const teacherScores = teacher.score(queryTexts, docTexts);
      const index = fromTypedArray(gatherIndex, { shape: [b, 1 + k], dtype: 'int64', device: this.o.device });
      inputs.teacher_scores = {
        student: studentScores().gather(1, index),
        teacher: fromTypedArray(teacherScores, { shape: [b, 1 + k], device: this.o.device }),
        exclude: exclude?.gather(1, index),
        positiveIndex: zeros([b], { dtype: 'int64', device: this.o.device }),
      };
      logs.teacher_pair_accuracy = argmaxIsFirst(teacherScores, 1 + k);
    }
    if (wantLayers) inputs.layers = this.#layerBatch(queries, studentStates!);

    const { total, parts } = this.o.loss.forward(inputs);
    for (const [name, value] of Object.entries(parts)) logs[`loss_${name}`] = value.item();
    logs.teacher_cache_hit_rate = teacher.cache.hits / Math.max(1, teacher.cache.hits + teacher.cache.misses);
    return { loss: total, logs, examples: b, tokens: queries.inputIds.numel + docs.inputIds.numel };
  }

  #teacherEmbeddings(side: 'query' | 'doc', items: readonly number[]): Float32Array {
    const { teacher, texts } = this.o;
    if (teacher.kind !== 'bi-encoder') throw new Error('embeddings need a bi-encoder teacher');
    const width = teacher.encoderConfig.hiddenSize;
    const out = new Float32Array(items.length * width);
    // One call per input type (prompts differ by type); rows written back in batch order.
    const byType = new Map<string, number[]>();
    items.forEach((item, row) => {
      const type = side === 'query' ? texts[item]!.queryType : texts[item]!.docType;
      let rows = byType.get(type);
      if (rows === undefined) byType.set(type, (rows = []));
      rows.push(row);
    });
    for (const [type, rows] of byType) {
      const values = teacher.embed(side, type, rows.map((r) => (side === 'query' ? texts[items[r]!]!.query : texts[items[r]!]!.doc)));
      rows.forEach((row, j) => out.set(values.subarray(j * width, (j + 1) * width), row * width));
    }
    return out;
  }

  #layerBatch(queries: { inputIds: Tensor; attentionMask: Tensor }, student: EncoderStates): LayerDistillBatch {
    const teacher = this.o.teacher.states(queries);
    const pairs = this.o.layerPairs;
    const attentionPairs = pairs.filter(([s, t]) => s >= 1 && t >= 1);
    return {
      studentHidden: pairs.map(([s]) => student.hidden[s]!),
      teacherHidden: pairs.map(([, t]) => teacher.hidden[t]!),
      studentAttentions: attentionPairs.map(([s]) => student.attentions[s - 1]!),
      teacherAttentions: attentionPairs.map(([, t]) => teacher.attentions[t - 1]!),
      mask: queries.attentionMask,
    };
  }

  /**
   * Called when a checkpoint is written: the teacher outputs computed since the last one are
   * written first, so a checkpoint on disk always has its cache beside it. (The teacher's float
   * results depend on 1e-7 on which texts share its batch; a resumed run that recomputed them
   * in other batches would drift from an uninterrupted one.)
   */
  state(): unknown {
    this.o.teacher.cache.flush();
    return { batches: this.o.batches.state() };
  }

  restore(state: unknown): void {
    this.o.batches.restore((state as { batches: unknown }).batches);
  }

  dispose(): void {
    this.o.candidates?.source.dispose();
  }
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function arange(n: number, device: 'cpu' | 'cuda'): Tensor {
  return fromTypedArray(BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), { shape: [n], dtype: 'int64', device });
}

/** Share of rows whose first column is the row's maximum (the teacher ranks the positive first). */
function argmaxIsFirst(rowMajor: Float32Array, width: number): number {
  const rows = rowMajor.length / width;
  let first = 0;
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let j = 1; j < width; j++) if (rowMajor[r * width + j]! > rowMajor[r * width + best]!) best = j;
    if (best === 0) first++;
  }
  return first / Math.max(1, rows);
}
