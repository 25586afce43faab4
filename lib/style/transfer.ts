// styleTransfer(): neural style transfer (Gatys et al.) with zod-validated
// options. The optimisation runs in a worker thread by default, so a service
// that embeds it keeps its event loop free; progress arrives through a
// callback and an async iterator, and the result is awaited:
//
//   const run = styleTransfer({ content: 'c.jpg', style: 's.jpg', iterations: 200 });
//   for await (const p of run) console.log(p.iteration, p.costs.total);
//   const { image } = await run;
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { z } from 'zod';
import { ArgumentError, TorchfaceError, invalid, parseOptions } from '../core/errors';
import { ImageInput, loadImage, resizeImage } from '../image';
import { Tensor, checkDevice } from '../core';
import { CancelledError, runStyleJob, type ScaleImages, type StyleJob, type StyleProgress, type StyleResult } from './engine';
import { networkLayerNames, networkPreset } from './features';

export type { StyleProgress, StyleResult, StyleCosts } from './engine';
export { CancelledError } from './engine';

const isImageInput = (v: unknown): boolean =>
  typeof v === 'string' || v instanceof Uint8Array || v instanceof Tensor || (!!v && typeof v === 'object' && 'data' in v && 'width' in v && 'height' in v);
const imageInput = z.custom<ImageInput>(isImageInput, { message: 'an image (file path, Buffer, raw pixels or Tensor)' });
const weightedStyle = z.object({ image: imageInput, weight: z.number().positive().finite() }).strict();
const styleInput = z.union([imageInput, weightedStyle]);

export const styleTransferOptions = z
  .object({
    content: imageInput,
    /** One style image, or several ({ image, weight } to weight them; weights are normalised to sum 1). */
    style: z.union([styleInput, z.array(styleInput).min(1)]),
    /** Feature network: 'mobilenet' (bundled face-api SSD backbone, default) or 'vgg19' (needs weights). */
    network: z.enum(['mobilenet', 'vgg19']).default('mobilenet'),
    /** VGG-19 weights: torchvision vgg19-*.pth or .safetensors with features.N names. */
    weights: z.string().min(1).optional(),
    /** Longest side of the generated image in pixels (default 256 on CPU, 512 on CUDA). */
    size: z.number().int().min(16).max(4096).optional(),
    iterations: z.number().int().min(1).max(100000).default(300),
    /** G's start: uniform noise ("initiate G randomly"), the content image, or noiseRatio * noise + (1 - noiseRatio) * content. */
    init: z.enum(['noise', 'content', 'mix']).default('content'),
    noiseRatio: z.number().min(0).max(1).default(0.6),
    optimizer: z.enum(['adam', 'lbfgs']).default('adam'),
    /** Adam: step in 0..255 pixel units (network preset by default); L-BFGS: step scale (default 1). */
    learningRate: z.number().positive().finite().optional(),
    contentLayer: z.string().min(1).optional(),
    /** Style layers and their lambda weights, e.g. { conv1_1: 0.2, ... }. */
    styleLayers: z.record(z.string(), z.number().nonnegative().finite()).optional(),
    alpha: z.number().nonnegative().finite().optional(),
    beta: z.number().nonnegative().finite().optional(),
    /** Weight of the total-variation smoothness term (0: off). */
    tvWeight: z.number().nonnegative().finite().default(0),
    /** Coarse-to-fine: optimise at size / 2^(scales-1), ..., size; iterations are split evenly. */
    scales: z.number().int().min(1).max(5).default(1),
    /** Include the current image in progress events every N iterations (0: never). */
    saveEvery: z.number().int().nonnegative().default(0),
    device: z.string().default('cpu'),
    seed: z.number().int().nonnegative().optional(),
    /** Run in a worker thread (default) or in this thread, yielding to the event loop between iterations. */
    worker: z.boolean().default(true),
    /** libtorch threads in the worker (default: cores - 1, leaving one to the embedding service; in-process: unchanged). */
    threads: z.number().int().positive().optional(),
    onProgress: z.function().optional(),
    signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, { message: 'an AbortSignal' }).optional(),
  })
  .strict();

export type StyleTransferOptions = Omit<z.input<typeof styleTransferOptions>, 'onProgress'> & { onProgress?: (p: StyleProgress) => void };

type Parsed = z.output<typeof styleTransferOptions>;

/** Resolves defaults from the network preset and checks layer names; throws ArgumentError naming the option. */
export function resolveStyleOptions(options: StyleTransferOptions): Parsed & { size: number; learningRate: number; contentLayer: string; styleLayers: Record<string, number>; alpha: number; beta: number } {
  if (options === null || typeof options !== 'object') invalid('options', 'an object with content and style', options);
  const o = parseOptions(styleTransferOptions, options, 'options');
  const device = checkDevice(o.device, 'options.device');
  const preset = networkPreset(o.network);
  const names = networkLayerNames(o.network);
  const contentLayer = o.contentLayer ?? preset.contentLayer;
  if (!names.includes(contentLayer)) invalid('options.contentLayer', `a layer of ${o.network} (${names.join(', ')})`, contentLayer);
  const styleLayers = o.styleLayers ?? { ...preset.styleLayers };
  if (Object.keys(styleLayers).length === 0) invalid('options.styleLayers', 'at least one layer with its lambda weight', styleLayers);
  for (const n of Object.keys(styleLayers)) if (!names.includes(n)) invalid(`options.styleLayers.${n}`, `a layer of ${o.network} (${names.join(', ')})`, n);
  if (o.network === 'vgg19' && !o.weights)
    throw new ArgumentError('options.weights', "a VGG-19 weights file (torchvision 'vgg19-*.pth' or .safetensors with features.N names; VGG-19 weights do not ship with torchface)", undefined);
  if (o.network !== 'vgg19' && o.weights) invalid('options.weights', "no weights file for the bundled 'mobilenet' network (weights are for network 'vgg19')", o.weights);
  const size = o.size ?? (device === 'cpu' ? 256 : 512);
  if (o.iterations < o.scales) invalid('options.iterations', `at least one iteration per scale (${o.scales})`, o.iterations);
  if (size / 2 ** (o.scales - 1) < 16) invalid('options.scales', `at most ${Math.floor(Math.log2(size / 16)) + 1} scales for size ${size} (the coarsest must be >= 16 px)`, o.scales);
  return {
    ...o,
    device,
    size,
    contentLayer,
    styleLayers,
    alpha: o.alpha ?? preset.alpha,
    beta: o.beta ?? preset.beta,
    learningRate: o.learningRate ?? (o.optimizer === 'lbfgs' ? 1 : preset.learningRate),
  };
}

async function buildJob(o: ReturnType<typeof resolveStyleOptions>): Promise<StyleJob> {
  const content = await loadImage(o.content);
  const styleList = (Array.isArray(o.style) ? o.style : [o.style]).map((s) => (s && typeof s === 'object' && 'weight' in s && 'image' in s ? s : { image: s as ImageInput, weight: 1 }));
  const styles = await Promise.all(styleList.map((s) => loadImage(s.image)));
  const wsum = styleList.reduce((a, s) => a + s.weight, 0);
  const aspect = content.width / content.height;
  const scales: ScaleImages[] = [];
  const per = Math.floor(o.iterations / o.scales);
  for (let k = o.scales - 1; k >= 0; k--) {
    const side = Math.max(16, Math.round(o.size / 2 ** k));
    const width = aspect >= 1 ? side : Math.max(16, Math.round(side * aspect));
    const height = aspect >= 1 ? Math.max(16, Math.round(side / aspect)) : side;
    const c = await resizeImage(content, width, height, 'fill');
    const st = await Promise.all(styles.map((s) => resizeImage(s, width, height, 'cover')));
    scales.push({ content: c, styles: st, iterations: k === 0 ? o.iterations - per * (o.scales - 1) : per });
  }
  return {
    network: o.network,
    weights: o.weights,
    device: o.device as StyleJob['device'],
    scales,
    styleWeights: styleList.map((s) => s.weight / wsum),
    contentLayer: o.contentLayer,
    styleLayers: o.styleLayers,
    alpha: o.alpha,
    beta: o.beta,
    tvWeight: o.tvWeight,
    init: o.init,
    noiseRatio: o.noiseRatio,
    optimizer: o.optimizer,
    learningRate: o.learningRate,
    saveEvery: o.saveEvery,
    seed: o.seed,
    threads: o.threads ?? (o.worker ? Math.max(1, os.availableParallelism() - 1) : undefined),
  };
}

/** A style transfer in progress: await it for the result, iterate it for progress, cancel() to stop. */
export class StyleTransferRun implements PromiseLike<StyleResult>, AsyncIterable<StyleProgress> {
  private readonly events: StyleProgress[] = [];
  private finished = false;
  private failure: unknown = null;
  private waiters: (() => void)[] = [];
  private readonly cancelFlag = new Int32Array(new SharedArrayBuffer(4));
  readonly result: Promise<StyleResult>;

  /** @internal */
  constructor(run: (run: StyleTransferRun) => Promise<StyleResult>) {
    this.result = run(this).then(
      (r) => {
        this.finish(null);
        return r;
      },
      (e) => {
        this.finish(e);
        throw e;
      },
    );
    // Consumers may only iterate; keep an unobserved failure from crashing the process.
    this.result.catch(() => undefined);
  }

  /** @internal */
  get cancelBuffer(): SharedArrayBuffer {
    return this.cancelFlag.buffer as SharedArrayBuffer;
  }
  get isCancelled(): boolean {
    return Atomics.load(this.cancelFlag, 0) !== 0;
  }
  /** Stops after the current iteration; the result promise rejects with CancelledError. */
  cancel(): void {
    Atomics.store(this.cancelFlag, 0, 1);
  }

  /** @internal */
  push(p: StyleProgress): void {
    this.events.push(p);
    this.wake();
  }
  private finish(e: unknown): void {
    this.finished = true;
    this.failure = e;
    this.wake();
  }
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  then<A = StyleResult, B = never>(onFulfilled?: ((v: StyleResult) => A | PromiseLike<A>) | null, onRejected?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    return this.result.then(onFulfilled, onRejected);
  }
  catch<B = never>(onRejected?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<StyleResult | B> {
    return this.result.catch(onRejected);
  }

  /** Every progress event from the start, then ends when the run ends (throws if it failed). */
  async *[Symbol.asyncIterator](): AsyncIterator<StyleProgress> {
    let i = 0;
    for (;;) {
      while (i < this.events.length) yield this.events[i++];
      if (this.finished) {
        if (this.failure) throw this.failure;
        return;
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
}

function rebuildError(e: { name: string; message: string; stack?: string; parameter?: string }): Error {
  let err: Error;
  if (e.name === 'CancelledError') err = new CancelledError();
  else if (e.name === 'ArgumentError') {
    err = new ArgumentError(e.parameter ?? 'options', '', undefined);
    err.message = e.message;
  }
  else {
    err = new TorchfaceError(e.message);
    err.name = e.name;
  }
  if (e.stack) err.stack = e.stack;
  return err;
}

/**
 * Neural style transfer. Returns a StyleTransferRun: `await` it for
 * { image, costs, ... }, `for await` it for progress, or pass onProgress.
 * Invalid options throw an ArgumentError right away (synchronously).
 */
export function styleTransfer(options: StyleTransferOptions): StyleTransferRun {
  const o = resolveStyleOptions(options);
  const onProgress = o.onProgress as ((p: StyleProgress) => void) | undefined;
  return new StyleTransferRun(async (run) => {
    const abort = () => run.cancel();
    o.signal?.addEventListener('abort', abort);
    if (o.signal?.aborted) run.cancel();
    const report = (p: StyleProgress) => {
      run.push(p);
      onProgress?.(p);
    };
    try {
      const job = await buildJob(o);
      if (!o.worker) {
        return await runStyleJob(job, { progress: report, cancelled: () => run.isCancelled, pause: () => new Promise<void>((r) => setImmediate(r)) });
      }
      return await new Promise<StyleResult>((resolve, reject) => {
        const worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: { job, cancel: run.cancelBuffer } });
        let settled = false;
        worker.on('message', (m: { type: string; progress?: StyleProgress; result?: StyleResult; error?: { name: string; message: string } }) => {
          if (m.type === 'progress') report(m.progress!);
          else if (m.type === 'done') {
            settled = true;
            resolve(m.result!);
          } else if (m.type === 'error') {
            settled = true;
            reject(rebuildError(m.error!));
          }
        });
        worker.on('error', (e) => {
          if (!settled) reject(e);
          settled = true;
        });
        worker.on('exit', (code) => {
          if (!settled) reject(new TorchfaceError(`style transfer worker exited with code ${code}`));
          settled = true;
        });
      });
    } finally {
      o.signal?.removeEventListener('abort', abort);
    }
  });
}
