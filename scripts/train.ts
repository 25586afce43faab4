// npm run train -- --data DIR[,DIR...] --out model.safetensors [--from scratch|pretrained] [--mining semi-hard]
//   [--epochs N] [--batch-p P --batch-k K] [--lr LR] [--device cpu|cuda] [--detect] [--resume]
//   [--select-pairs FILE | --no-select] [--l2sp A] [--nproc N | --rank R --world-size W --master-addr A --master-port P] ...
// Triplet-loss training of a face embedding network (see lib/face/train/loop.ts);
// a progress bar with loss, triplets and images/s; per-epoch validation and
// checkpoints; at the end the model file, <out>.metrics.json and <out>.plot.png.
// With --select-pairs (the default for --from pretrained when LFW's
// pairsDevTrain.txt is in the shared face data) the output is the best of the
// starting weights and each epoch's weights on that pair list.
// Data parallel: --nproc N starts N local ranks (lib/distributed/launch.ts,
// like torchrun); --rank/--world-size/--master-addr/--master-port (or torchrun's
// RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) join a run across machines. Only
// rank 0 prints, checkpoints and writes the model.
import * as fs from 'fs';
import * as path from 'path';
import { z } from 'zod';
import * as distributed from '../lib/distributed';
import { ArgumentError, parseOptions } from '../lib/core/errors';
import { prepareAlignedDataset, scanIdentities } from '../lib/face/train/dataset';
import { EMBEDDING_ARCHITECTURES, EmbeddingArchitecture } from '../lib/models/embedding-net';
import { alignLargestFace } from '../lib/face/align';
import { loadTrainedModel, saveTrainedModel } from '../lib/face/model-file';
import { recognitionNetwork } from '../lib/face/trainable';
import { FaceRecognitionNet } from '../lib/models/face-recognition-net';
import { TrainEvent, trainFaceModelIter } from '../lib/face/train';
import { ProgressBar } from '../lib/util/progress';
import { facesDir } from '../lib/util/paths';
import { parseArgs } from './cli';
import { fail, usage } from './face-common';

const HELP = `
Usage: npm run train -- --data DIR[,DIR...] --out model.safetensors [options]
  --data DIRS          identity-folder data sets, comma-separated (e.g. celeba299,yaleb,att)
  --out FILE           model file to write (checkpoints: FILE.ckpt*.safetensors)
  --from               scratch (default) | pretrained (fine-tune face-api's recognition net)
  --architecture       ${Object.keys(EMBEDDING_ARCHITECTURES).join(' | ')} (scratch; default resnet10)
  --input-size N       network input side (scratch; default 96)
  --embedding-dim N    (scratch; default 128)
  --mining             semi-hard (default) | batch-hard | batch-all
  --margin M           triplet margin (default 0.2)
  --epochs N           (default 10)
  --batch-p P --batch-k K   identities per batch and images per identity (default 8 x 4)
  --steps-per-epoch N  (default: about one pass over the training images)
  --lr LR              peak learning rate (Adam; default 1e-3, warm-up 1 epoch, cosine decay)
  --freeze N           fine-tuning: keep the stem and the first N of 11 residual blocks fixed
  --select-pairs FILE  model selection on an LFW pair list of other identities: the output is the best of
                       the starting weights and each epoch's (10-fold accuracy, LFW central face region);
                       default for --from pretrained: <faces>/lfw-view1/pairsDevTrain.txt when it exists
  --no-select          no model selection (the output is the last epoch's weights)
  --select-z Z         a candidate replaces the best when b - c > Z * sqrt(b + c), b and c the pairs only it /
                       only the best decides right (one-sided McNemar; default 1.645 = 5%; 0: any net gain)
  --select-max-pairs N use N same + N different pairs of the selection list (seeded subset; default all)
  --l2sp A             L2-SP: add (A/2) * ||w - w_start||^2 to the loss (default 0)
  --device D           cpu (default) | cuda | cuda:N
  --detect             detect + align faces first (cached PNGs under --cache)
  --cache DIR          aligned-crop cache (default: <out dir>/.aligned)
  --max-per-identity N use at most N images per identity
  --resume             continue from the checkpoint next to --out
  --threads N          libtorch threads per process (default 1)
  --seed N             (default 0)
Data parallel (libtorch's c10d with Gloo; --batch-p is per rank, so the global batch is P x nproc):
  --nproc N            start N local ranks (like torchrun --nproc-per-node N)
  --rank R --world-size W --master-addr HOST --master-port PORT
                       join a run over several machines (or set torchrun's RANK, WORLD_SIZE,
                       MASTER_ADDR, MASTER_PORT); rank 0 listens on HOST:PORT
  --dist-timeout S     seconds to wait for the other ranks (default 1800)
  --backend B          gloo (default) | nccl (CUDA builds with NCCL)`;

const schema = z
  .object({
    data: z.string(),
    out: z.string(),
    from: z.enum(['scratch', 'pretrained']).default('scratch'),
    architecture: z.enum(Object.keys(EMBEDDING_ARCHITECTURES) as [EmbeddingArchitecture, ...EmbeddingArchitecture[]]).default('resnet10'),
    'input-size': z.coerce.number().int().min(32).max(256).default(96),
    'embedding-dim': z.coerce.number().int().min(2).max(4096).default(128),
    mining: z.enum(['semi-hard', 'batch-hard', 'batch-all']).default('semi-hard'),
    margin: z.coerce.number().positive().default(0.2),
    epochs: z.coerce.number().int().positive().default(10),
    'batch-p': z.coerce.number().int().min(2).default(8),
    'batch-k': z.coerce.number().int().min(2).default(4),
    'steps-per-epoch': z.coerce.number().int().positive().optional(),
    lr: z.coerce.number().positive().default(1e-3),
    'warmup-epochs': z.coerce.number().nonnegative().default(1),
    'weight-decay': z.coerce.number().nonnegative().default(5e-4),
    freeze: z.coerce.number().int().min(0).max(11).default(0),
    'select-pairs': z.string().optional(),
    select: z.boolean().default(true),
    'select-max-pairs': z.coerce.number().int().positive().optional(),
    'select-z': z.coerce.number().nonnegative().default(1.645),
    l2sp: z.coerce.number().nonnegative().default(0),
    device: z.string().default('cpu'),
    detect: z.boolean().default(false),
    cache: z.string().optional(),
    'max-per-identity': z.coerce.number().int().positive().optional(),
    'validation-fraction': z.coerce.number().min(0).max(0.9).default(0.15),
    resume: z.boolean().default(false),
    threads: z.coerce.number().int().positive().default(1),
    seed: z.coerce.number().int().nonnegative().default(0),
    nproc: z.coerce.number().int().min(1).max(64).default(1),
    rank: z.coerce.number().int().nonnegative().optional(),
    'world-size': z.coerce.number().int().positive().optional(),
    'master-addr': z.string().optional(),
    'master-port': z.coerce.number().int().min(1).max(65535).optional(),
    'dist-timeout': z.coerce.number().positive().default(1800),
    backend: z.enum(['gloo', 'nccl']).default('gloo'),
    help: z.boolean().optional(),
  })
  .strict();

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (usage(HELP, args)) return;
  const o = parseOptions(schema, args, 'args');
  if (o.nproc > 1 && !process.env.TORCHFACE_LAUNCHED) {
    // The launcher: N copies of this script with the same arguments, minus --nproc.
    const argv = process.argv.slice(2);
    const i = argv.findIndex((a) => a === '--nproc' || a.startsWith('--nproc='));
    argv.splice(i, argv[i].includes('=') ? 1 : 2);
    console.log(`launching ${o.nproc} ranks (OMP_NUM_THREADS ${process.env.OMP_NUM_THREADS ?? 'per rank: cores / nproc'}, --threads ${o.threads}); rank 0 reports`);
    await distributed.launch({ nproc: o.nproc, script: __filename, args: argv, masterAddr: o['master-addr'], masterPort: o['master-port'] });
    return;
  }
  const worldSize = o['world-size'] ?? (process.env.WORLD_SIZE ? Number(process.env.WORLD_SIZE) : 1);
  let group: distributed.ProcessGroup | undefined;
  if (worldSize > 1) {
    const addr = o['master-addr'] ?? process.env.MASTER_ADDR;
    const port = o['master-port'] ?? (process.env.MASTER_PORT ? Number(process.env.MASTER_PORT) : undefined);
    if (!addr || !port) throw new ArgumentError('args', '--master-addr and --master-port (or MASTER_ADDR, MASTER_PORT) for a distributed run', { addr, port });
    group = await distributed.initProcessGroup({ backend: o.backend, initMethod: `tcp://${addr}:${port}`, rank: o.rank, worldSize, timeoutMs: Math.round(o['dist-timeout'] * 1000) });
  }
  const lead = !group || group.rank === 0;
  // One GPU per local rank, as torchrun runs do.
  const device = group && o.device === 'cuda' ? `cuda:${distributed.getLocalRank()}` : o.device;
  // Ranks other than 0 stay quiet; their errors still reach stderr.
  const log = lead ? console.log : () => undefined;
  let dirs = o.data.split(',').map((d) => d.trim()).filter(Boolean);
  const inputSize = o.from === 'pretrained' ? 150 : o['input-size'];
  if (o.detect) {
    // Rank 0 aligns into the cache while the others wait; then all read it.
    if (!lead) await group!.barrier();
    const cache = o.cache ?? path.join(path.dirname(path.resolve(o.out)), '.aligned');
    const aligned: string[] = [];
    for (const d of dirs) {
      const ids = scanIdentities(d, { maxPerIdentity: o['max-per-identity'] });
      const total = ids.reduce((n, i) => n + i.files.length, 0);
      const dst = path.join(cache, `${path.basename(path.resolve(d))}-${inputSize}`);
      const bar = lead ? new ProgressBar({ total, label: `align ${path.basename(d)}` }) : null;
      const r = await prepareAlignedDataset(ids, dst, async (f) => (await alignLargestFace(f, { size: Math.round(inputSize * 1.15) })).aligned, { onProgress: () => bar?.tick(1) });
      bar?.done({ aligned: r.aligned, cached: r.cached, noFace: r.failed.length });
      aligned.push(dst);
    }
    dirs = aligned;
    if (lead) await group?.barrier();
  }
  let embedder;
  if (o.from === 'pretrained') {
    const net = await FaceRecognitionNet.load();
    net.train();
    embedder = recognitionNetwork(net, { freeze: o.freeze });
  }
  let selectPairs = o.select ? o['select-pairs'] : undefined;
  if (o.select && !selectPairs && o.from === 'pretrained') {
    const devTrain = path.join(facesDir() ?? '', 'lfw-view1', 'pairsDevTrain.txt');
    if (facesDir() && fs.existsSync(devTrain)) selectPairs = devTrain;
  }
  if (o['select-pairs'] && !o.select) throw new ArgumentError('args', '--select-pairs or --no-select, not both', 'both');
  log(selectPairs ? `model selection on ${selectPairs} (candidates: the starting weights and each epoch's)` : 'no model selection: the output is the last epoch\'s weights');
  let bar: ProgressBar | null = null;
  const it = trainFaceModelIter({
    data: dirs as [string, ...string[]],
    out: o.out,
    from: o.from,
    embedder,
    architecture: o.architecture,
    inputSize,
    embeddingDim: o['embedding-dim'],
    mining: o.mining,
    margin: o.margin,
    epochs: o.epochs,
    batchP: o['batch-p'],
    batchK: o['batch-k'],
    stepsPerEpoch: o['steps-per-epoch'],
    lr: o.lr,
    warmupEpochs: o['warmup-epochs'],
    weightDecay: o['weight-decay'],
    device,
    validationFraction: o['validation-fraction'],
    maxPerIdentity: o.detect ? undefined : o['max-per-identity'],
    resume: o.resume,
    threads: o.threads,
    seed: o.seed,
    validateInitial: true,
    selectPairs,
    selectMaxPairs: o['select-max-pairs'],
    selectZ: o['select-z'],
    l2sp: o.l2sp,
    processGroup: group,
  });
  let result;
  for (;;) {
    const n = await it.next();
    if (n.done) {
      result = n.value;
      break;
    }
    const ev: TrainEvent = n.value;
    if (!lead) continue;
    if (ev.type === 'step') {
      bar ??= new ProgressBar({ total: ev.stepsPerEpoch, label: `epoch ${ev.epoch + 1}/${o.epochs}` });
      bar.tick(1, { loss: ev.loss, triplets: ev.triplets, 'img/s': Math.round(ev.imagesPerSecond), lr: ev.lr });
    } else if (ev.type === 'selection') {
      bar?.done();
      bar = null;
      const c = ev.candidate;
      console.log(`selection: after ${c.afterEpochs} epoch(s): 10-fold accuracy ${c.accuracy.toFixed(3)}  AUC ${c.auc.toFixed(3)}` + (c.versusBest ? `  vs best: +${c.versusBest.candidateOnly} -${c.versusBest.bestOnly} pairs` : '') + `  (${c.seconds.toFixed(0)} s)${c.best ? '  -> best' : `  (best stays: after ${ev.bestAfterEpochs})`}`);
    } else if (ev.type === 'epoch') {
      bar?.done();
      bar = null;
      const v = ev.validation;
      console.log(`epoch ${ev.epoch + 1}: loss ${ev.trainLoss.toFixed(4)}  ${Math.round(ev.imagesPerSecond)} img/s  ${ev.seconds.toFixed(0)} s` + (v ? `  validation: accuracy ${v.accuracy.toFixed(3)}  AUC ${v.auc.toFixed(3)}  TAR@FAR1e-3 ${v.tarAtFar1e3.toFixed(3)} (FAR ${v.achievedFar.toFixed(4)})` : ''));
    }
  }
  if (group) {
    distributed.destroyProcessGroup();
    if (!lead) return;
  }
  if (o.from === 'pretrained') {
    // Rewrite the output through saveTrainedModel so the file names its architecture (faceapi-recognition).
    const m = await loadTrainedModel(o.out);
    await saveTrainedModel(o.out, m);
  }
  const init = result.initial;
  console.log(JSON.stringify({ ranks: worldSize, model: result.modelFile, metrics: result.metricsFile, plot: result.plotFile, seconds: result.seconds, imagesPerSecond: result.imagesPerSecond, maxBlockMs: result.maxBlockMs, identities: result.identities, images: result.images, initialValidation: init ? { accuracy: init.accuracy, auc: init.auc } : null, finalValidation: result.final ? { accuracy: result.final.accuracy, auc: result.final.auc, tarAtFar1e3: result.final.tarAtFar1e3 } : null, selection: result.selection ? { pairs: result.selection.pairsFile, selectedAfterEpochs: result.selection.selectedAfterEpochs, accuracies: result.selection.history.map((c) => c.accuracy) } : null }, null, 1));
}

main().catch((e) => (e instanceof ArgumentError ? (console.error(`${e.message}\n${HELP}`), process.exit(2)) : fail(e)));
