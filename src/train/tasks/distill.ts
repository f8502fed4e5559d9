/**
 * `task: distill`: a two-tower student learns from a frozen teacher (../teacher.ts) on the
 * labelled pairs, through any weighted sum of the labelled losses and the distillation losses
 * (strategies/distill.ts). Two uses, after the systems Kiln follows:
 *
 *   BERT → student     a larger bi-encoder (a Kiln run or a Hugging Face BERT) into a student
 *                      ≥ 80% smaller (LinkedIn's skill extraction): embedding_mse,
 *                      similarity_kl, hidden_mse, attention_kl
 *   cross-encoder →    a cross-encoder's scores on each query's mined candidates into the dual
 *   dual encoder       encoder (JUDE): margin_mse, similarity_kl
 *
 * The student is a two-tower model like any other (kiln eval, export, serve, embed read it).
 * At the end the summary reports the teacher's and the student's parameter counts, the
 * teacher's metrics, the student before distillation (`distill.baseline`: the same student
 * trained without the teacher), after it, the retention (after / teacher) and the gap bridged,
 * (after − before) / (teacher − before).
 */
import { DataError } from '../../data/types.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { noGrad } from '../../engine/index.js';
import { createWeightedLoss, LOSSES } from '../../losses/index.js';
import { readRunModelJson, TwoTowerModel, type EncoderConfig, type KindedModel, type RunModelJsons, type Side } from '../../models/index.js';
import type { PairExample } from '../../data/types.js';
import { ModelEmbedder } from '../../eval/embedder.js';
import { evaluateSplitsWithModel } from '../../eval/splits.js';
import { ConfigError } from '../../config/errors.js';
import type { KilnConfig } from '../../config/schema.js';
import { RunDirectory } from '../../track/run-dir.js';
import { loadRunData, prepareEncoder, twoTowerConfigFrom } from '../setup.js';
import { applyInitSource, formatInitReport, lineageOf, resolveInitSource } from '../init-from.js';
import { formatSummaryTable, lexicalBaselinesAfter } from '../summary.js';
import { createPairBatchSource, stepBatches } from '../data-adapters.js';
import { CandidateMiner } from '../cross-encoder-negatives.js';
import { loadTeacher, precomputeExportedTeacher, resolveTeacherPath, type Teacher } from '../teacher.js';
import { parseModelCard } from '../../export/card.js';
import { TEACHER_CACHE_DIR } from '../teacher-cache.js';
import { DistillStrategy } from '../strategies/distill.js';
import type { Task } from '../task.js';
import { describePairData, pairMaxLength, tokenizePairs, twoTowerTask } from './two-tower.js';

/** The [student, teacher] layer pairs: the config's, or uniform (0 ↔ 0, i ↔ i·Lt/Ls). */
export function layerPairs(map: KilnConfig['distill']['layer_map'], studentLayers: number, teacherLayers: number): Array<[number, number]> {
  if (map === 'uniform') {
    const pairs: Array<[number, number]> = [[0, 0]];
    for (let i = 1; i <= studentLayers; i++) pairs.push([i, Math.round((i * teacherLayers) / studentLayers)]);
    return pairs;
  }
  map.forEach(([s, t], i) => {
    if (s > studentLayers) throw new ConfigError([`distill.layer_map[${i}]: student layer ${s} does not exist; the student has layers 0 (embeddings) to ${studentLayers}`]);
    if (t > teacherLayers) throw new ConfigError([`distill.layer_map[${i}]: teacher layer ${t} does not exist; the teacher has layers 0 (embeddings) to ${teacherLayers}`]);
  });
  return map.map(([s, t]) => [s, t]);
}

/** The student's encoder for `student_init: teacher_layers`: the teacher's sizes with half its layers (DistilBERT). */
function halfOfTeacher(teacher: EncoderConfig, configured: EncoderConfig): EncoderConfig {
  return { ...teacher, numLayers: Math.max(1, Math.ceil(teacher.numLayers / 2)), hiddenDropout: configured.hiddenDropout, attentionDropout: configured.attentionDropout, initStd: configured.initStd };
}

/** Copies the teacher's embeddings and layers 0, 2, 4, … into the student's encoder; returns the names copied. */
function copyEveryOtherLayer(teacher: Teacher, student: TwoTowerModel): number {
  if (teacher.encoder === null) throw new Error(`${teacher.path}: an exported teacher has no encoder weights to copy`);
  const source = teacher.encoder.stateDict();
  let copied = 0;
  noGrad(() => {
    for (const [name, tensor] of student.queryEncoder.stateDict()) {
      const layer = /^encoder\.layer\.(\d+)\.(.*)$/.exec(name);
      const from = layer === null ? name : `encoder.layer.${2 * Number(layer[1])}.${layer[2]}`;
      const value = source.get(from);
      if (value === undefined || value.shape.join('x') !== tensor.shape.join('x')) throw new Error(`student_init teacher_layers: the teacher has no tensor '${from}' of shape [${tensor.shape.join(', ')}]`);
      tensor.copy_(value);
      copied++;
    }
  });
  return copied;
}

/** Each (side, input type)'s distinct training texts: what an exported teacher embeds before training. */
function trainingTexts(pairs: readonly PairExample[]): Array<{ side: Side; inputType: string; texts: string[] }> {
  const groups = new Map<string, { side: Side; inputType: string; texts: Set<string> }>();
  const add = (side: Side, inputType: string, text: string): void => {
    const key = `${side}\u0000${inputType}`;
    let group = groups.get(key);
    if (group === undefined) groups.set(key, (group = { side, inputType, texts: new Set() }));
    group.texts.add(text);
  };
  for (const p of pairs) {
    add('query', p.queryType, p.query);
    add('doc', p.docType, p.doc);
  }
  return [...groups.values()].map((g) => ({ side: g.side, inputType: g.inputType, texts: [...g.texts] }));
}

/** An exported model's encoder sizes, from its card. */
function exportedEncoder(path: string): EncoderConfig {
  const file = join(path, 'model.json');
  const card = parseModelCard(JSON.parse(readFileSync(file, 'utf8')), file);
  return { ...card.encoder, hiddenDropout: 0, attentionDropout: 0, initStd: 0.02 };
}

interface MetricsReport {
  teacher: Record<string, number>;
  before: Record<string, number> | null;
  after: Record<string, number>;
  retention: Record<string, number>;
  gapBridged: Record<string, number>;
}

/** Retention for every metric that the teacher and the student have; the gap bridged where the baseline has it too and the teacher is ahead of it. */
export function distillationReport(teacher: Record<string, number>, before: Record<string, number> | null, after: Record<string, number>): MetricsReport {
  const retention: Record<string, number> = {};
  const gapBridged: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    const t = teacher[key];
    if (t === undefined) continue;
    if (t !== 0) retention[key] = value / t;
    // A gap exists only where the teacher is ahead (every metric here is higher-is-better).
    const b = before?.[key];
    if (b !== undefined && t > b) gapBridged[key] = (value - b) / (t - b);
  }
  return { teacher, before, after, retention, gapBridged };
}

export function formatDistillationReport(report: MetricsReport, counts: { teacher: number; student: number }): string {
  const pct = (v: number | undefined): string => (v === undefined ? '-' : (100 * v).toFixed(2));
  const keys = Object.keys(report.retention);
  const width = Math.max(6, ...keys.map((k) => k.length));
  const head = ['metric'.padEnd(width), 'teacher', ' before', '  after', 'retention', 'gap bridged'].join('  ');
  const rows = keys.map((k) =>
    [k.padEnd(width), pct(report.teacher[k]).padStart(7), pct(report.before?.[k]).padStart(7), pct(report.after[k]).padStart(7), `${pct(report.retention[k])}%`.padStart(9), (report.gapBridged[k] === undefined ? '-' : `${pct(report.gapBridged[k])}%`).padStart(11)].join('  '),
  );
  const reduction = 1 - counts.student / counts.teacher;
  return [`distillation (×100): teacher ${(counts.teacher / 1e6).toFixed(2)}M parameters → student ${(counts.student / 1e6).toFixed(2)}M (${(100 * reduction).toFixed(1)}% fewer)`, head, ...rows].join('\n');
}

function baselineMetrics(reference: string | null): { path: string; metrics: Record<string, number> } | null {
  if (reference === null) return null;
  const path = RunDirectory.resolveReference(reference) ?? reference;
  const file = join(path, 'summary.json');
  if (!existsSync(file)) throw new ConfigError([`distill.baseline: ${file} is missing; expected a finished run of the same student trained without the teacher`]);
  const summary = JSON.parse(readFileSync(file, 'utf8')) as { metrics?: Record<string, number> };
  return { path, metrics: summary.metrics ?? {} };
}

export const distillTask: Task = {
  async prepare({ config, dataRoot: dataRootFlag, write, saved }) {
    const settings = config.distill;
    const teacherPath = resolveTeacherPath(settings.teacher!);
    const base = prepareEncoder(config, dataRootFlag, saved);
    // Before the run directory exists: the baseline, the teacher's sizes, the layer map.
    const baseline = baselineMetrics(settings.baseline);
    const exported = teacherPath.origin === 'onnx';
    const teacherSource = exported ? null : resolveInitSource(teacherPath.path);
    const teacherEncoder: EncoderConfig = teacherSource?.encoder ?? exportedEncoder(teacherPath.path);
    const teacherKind = teacherPath.origin !== 'kiln-run' || readRunModelJson(teacherPath.path).kind === 'two-tower' ? 'bi-encoder' : 'cross-encoder';
    config.loss.forEach((entry, i) => {
      const input = LOSSES[entry.name].input;
      if (teacherKind === 'cross-encoder' && input === 'embeddings') {
        throw new ConfigError([`loss[${i}].name: ${entry.name} compares embeddings, and a cross-encoder teacher has none; use margin_mse or similarity_kl on its scores`]);
      }
      if (input === 'layers' && teacherSource === null) {
        throw new ConfigError([`loss[${i}].name: ${entry.name} reads the teacher's layers, and an exported teacher (${teacherPath.path}) runs in onnxruntime without them; point distill.teacher at its run directory`]);
      }
      if (input === 'layers' && teacherSource!.tokenizer.vocabSize !== base.tokenizer.vocabSize) {
        throw new ConfigError([`loss[${i}].name: ${entry.name} feeds the student's token ids to the teacher, but their vocabularies differ (${base.tokenizer.vocabSize} and ${teacherSource!.tokenizer.vocabSize} tokens)`]);
      }
    });
    if (exported && settings.student_init === 'teacher_layers') {
      throw new ConfigError([`distill.student_init: teacher_layers copies the teacher's weights, and an exported teacher (${teacherPath.path}) has none that Kiln trains; point distill.teacher at its run directory`]);
    }
    const encoder = saved !== undefined ? base.encoder : settings.student_init === 'teacher_layers' ? halfOfTeacher(teacherEncoder, base.encoder) : base.encoder;
    if (settings.student_init === 'teacher_layers' && config.model.init_from !== null) {
      throw new ConfigError(['distill.student_init: teacher_layers and model.init_from both say where the student starts; keep one']);
    }
    const pairsOfLayers = layerPairs(settings.layer_map, encoder.numLayers, teacherEncoder.numLayers);
    const data = await loadRunData(config, base.dataRoot);
    // The distillation strategy scores in-batch and teacher candidates only; a triplet's own
    // negative would be read and then ignored, so it is refused instead.
    const withNegatives = data.pairs.find((p) => (p.negatives?.length ?? 0) > 0);
    if (withNegatives !== undefined) throw new DataError(withNegatives.source, undefined, 'task distill does not use explicit negatives (triplets); train on pairs, or use task twotower');
    if (data.pairs.length < config.train.batch_size) throw new Error(`only ${data.pairs.length} training pairs, fewer than train.batch_size ${config.train.batch_size}`);
    const maxLength = pairMaxLength(config);
    const modelConfig = twoTowerConfigFrom(config, encoder);
    const { tokenizer } = base;
    // An exported teacher runs in onnxruntime, which is asynchronous: every training text is embedded now.
    const precomputed = exported ? await precomputeExportedTeacher(teacherPath.path, trainingTexts(data.pairs)) : undefined;
    if (precomputed !== undefined) write(`teacher ${teacherPath.path} (onnxruntime): embedded ${precomputed.entries.size} training texts in ${precomputed.seconds.toFixed(1)} s`);
    // The student's start: model.init_from, or the teacher whose layers it copies.
    const modelJson: RunModelJsons['two-tower'] = { kind: 'two-tower', ...modelConfig, maxLength, ...lineageOf(settings.student_init === 'teacher_layers' ? teacherSource : base.init) };
    return {
      modelJson,
      tokenizer,
      dataFiles: [...base.files, ...data.filesRead],
      describeData: () => [...describePairData(data), `teacher ${teacherPath.path} (${teacherPath.origin})`],
      start({ resuming, runPath, parallel }) {
        const teacher = loadTeacher(teacherPath.path, { maxLength, cacheDirectory: join(runPath, TEACHER_CACHE_DIR), precomputed });
        try {
          const reused = teacher.cache.loadFromRuns(join(runPath, '..'));
          const model = new TwoTowerModel(modelConfig);
          const kinded: KindedModel = { kind: 'two-tower', model, json: modelJson };
          if (!resuming) {
            if (base.init !== null) write(formatInitReport(applyInitSource(kinded, base.init)));
            if (settings.student_init === 'teacher_layers') write(`student_init teacher_layers: copied ${copyEveryOtherLayer(teacher, model)} tensors (embeddings and teacher layers 0, 2, …)`);
          }
          const counts = { teacher: teacher.parameterCount, student: model.parameterCount() };
          write(
            `teacher: a ${teacher.kind} of ${(counts.teacher / 1e6).toFixed(2)}M parameters; student ${(counts.student / 1e6).toFixed(2)}M (${(100 * (1 - counts.student / counts.teacher)).toFixed(1)}% fewer)` +
              `; teacher cache: ${reused} entries reused from earlier runs`,
          );
          const loss = createWeightedLoss(config.loss, { distillDims: { student: encoder.hiddenSize, teacher: teacher.encoderConfig.hiddenSize }, layerPairs: pairsOfLayers.length });
          const { pairs, pool } = tokenizePairs(data, tokenizer, (type, text) => model.prompt(type, text), maxLength);
          const candidates =
            teacher.kind === 'cross-encoder'
              ? new CandidateMiner(data, pairs, pool, { source: settings.candidates.source, poolSize: settings.candidates.pool, k: settings.candidates.k, seed: config.seed, key: 'distill.candidates.source' })
              : null;
          if (candidates !== null) write(`${settings.candidates.k} candidates per positive for the teacher to score, from ${candidates.description}`);
          const embedder = new ModelEmbedder(model, tokenizer, { maxLength, batchSize: 256, precision: config.train.precision, device: config.train.device });
          const strategy = new DistillStrategy({
            student: model,
            teacher,
            loss,
            pairs,
            texts: data.pairs,
            pool,
            batches: stepBatches(createPairBatchSource(pairs, data.pairRanges, config), config, parallel),
            padId: tokenizer.padId,
            device: config.train.device,
            maskSameGroup: config.train.mask_same_group,
            candidates: candidates === null ? null : { source: candidates, k: settings.candidates.k },
            layerPairs: pairsOfLayers,
            seed: config.seed,
          });
          return {
            model: kinded,
            strategy,
            evaluate: data.evalSplits.length === 0 ? null : (step) => evaluateSplitsWithModel(data.evalSplits, embedder, { sampled: step < config.train.steps }),
            summarize(end, metrics, runId) {
              const lexical = lexicalBaselinesAfter(end.status, data.evalSplits);
              // A teacher without a summary (a Hugging Face model) is evaluated here, on the same splits.
              let teacherMetrics = teacher.metrics;
              if (Object.keys(teacherMetrics).length === 0 && teacher.kind === 'bi-encoder' && teacher.model !== null && data.evalSplits.length > 0) {
                const teacherEmbedder = new ModelEmbedder(teacher.model, teacher.tokenizer, { maxLength: teacher.maxLength, batchSize: 256, precision: 'fp32', device: config.train.device });
                teacherMetrics = evaluateSplitsWithModel(data.evalSplits, teacherEmbedder, { sampled: false });
              }
              const report = distillationReport(teacherMetrics, baseline?.metrics ?? null, metrics);
              return {
                fields: {
                  ...lexical,
                  trainingPairs: data.pairCounts,
                  badRows: data.badRows.toJSON(),
                  distillation: {
                    teacher: { path: teacher.path, kind: teacher.kind, origin: teacher.origin, parameters: counts.teacher, metrics: report.teacher },
                    student: { parameters: counts.student },
                    reduction: 1 - counts.student / counts.teacher,
                    baseline: baseline === null ? null : { path: baseline.path, metrics: baseline.metrics },
                    retention: report.retention,
                    gapBridged: report.gapBridged,
                    teacherCache: { entries: teacher.cache.size, hits: teacher.cache.hits, misses: teacher.cache.misses, reused },
                  },
                },
                table: `${formatSummaryTable({ runId, metrics, ...lexical })}\n${formatDistillationReport(report, counts)}`,
              };
            },
            dispose() {
              strategy.dispose();
              loss.dispose();
              teacher.dispose();
            },
          };
        } catch (error) {
          teacher.dispose();
          throw error;
        }
      },
    };
  },
  // The student is a two-tower model: `kiln eval` evaluates it as one.
  evaluator: (config, loaded) => twoTowerTask.evaluator!(config, loaded),
};
