// What a training run leaves behind: the model file's metadata (architecture,
// threshold and where it came from, the training options and outcome) and the
// report beside it (metrics JSON and a PNG plot of loss and validation ROC).
import * as path from 'path';
import { writeFileAtomic } from '../../io/atomic';
import { savePng } from '../../image';
import { renderTrainingPlot } from '../../util/plot';
import { outputBase, type EpochRecord, type SelectionResult, type TrainOptions, type TrainResult, type ValidationMetrics } from './options';

/** The output model file's metadata: the network's own, the threshold and its source, and the run's summary. */
export function modelFileMetadata(networkMetadata: Record<string, unknown>, o: TrainOptions, run: { dataDirs: string[]; epochs: number; inputSize: number; final: ValidationMetrics | null; selection: SelectionResult | null }): Record<string, unknown> {
  const sel = run.selection?.selected;
  const { final, selection } = run;
  return {
    ...networkMetadata,
    threshold: sel ? sel.threshold : final?.threshold ?? null,
    thresholdSource: sel ? `selection pairs best-accuracy (squared L2 distance, ${path.basename(o.selectPairs!)})` : final ? 'validation best-accuracy (squared L2 distance)' : null,
    training: {
      data: run.dataDirs, mining: o.mining, margin: o.margin, epochs: run.epochs, batchP: o.batchP, batchK: o.batchK, lr: o.lr, l2sp: o.l2sp, inputSize: run.inputSize, seed: o.seed, from: o.from,
      validation: final ? { accuracy: final.accuracy, auc: final.auc, tarAtFar1e3: final.tarAtFar1e3 } : null,
      selection: selection ? { pairsFile: selection.pairsFile, pairs: selection.pairs, criterion: selection.criterion, selectedAfterEpochs: selection.selectedAfterEpochs, history: selection.history.map(({ afterEpochs, accuracy, bestAccuracy, auc, eer, tarAtFar1e3, nonFinitePairs, versusBest, best }) => ({ afterEpochs, accuracy, bestAccuracy, auc, eer, tarAtFar1e3, nonFinitePairs, versusBest, best })) } : null,
    },
  };
}

/** Paths of the report files of a model file (null without a report). */
export function reportPaths(out: string, report: boolean): { metricsFile: string | null; plotFile: string | null } {
  const base = outputBase(out);
  return { metricsFile: report ? `${base}.metrics.json` : null, plotFile: report ? `${base}.plot.png` : null };
}

/** Writes the metrics JSON and the plot (training loss per step; validation ROC per epoch). */
export async function writeReport(result: TrainResult, o: TrainOptions, history: EpochRecord[]): Promise<void> {
  if (!result.metricsFile || !result.plotFile) return;
  await writeFileAtomic(result.metricsFile, JSON.stringify({ ...result, options: o }, null, 1));
  await savePng(result.plotFile, renderTrainingPlot(result.stepLoss, history.map((h) => h.validation?.roc ?? null)));
}
