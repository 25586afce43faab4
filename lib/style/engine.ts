// The optimisation loop of style transfer, shared by the worker thread
// (worker.ts) and the in-process mode. Everything here is plain data in and
// out (pixels, numbers), so it can run on either side of a MessagePort.
import { TorchfaceError } from '../core/errors';
import type { RgbImage } from '../image';
import { imageToTensor, tensorToImage } from '../image';
import * as F from '../ops';
import { Device, Tensor, keep, manualSeed, noGrad, rand, tidy } from '../core';
import { contentCost, gramMatrix, layerStyleCost, totalCost, totalVariation } from './costs';
import { FeatureNetwork, loadFeatureNetwork, type FeatureNetworkName } from './features';
import { Adam, LBFGS, type Optimizer } from '../optim';

/** One scale of the pyramid: the content image and every style image at that size. */
export interface ScaleImages {
  content: RgbImage;
  styles: RgbImage[];
  iterations: number;
}

/** A fully resolved job (after option validation and image decoding). */
export interface StyleJob {
  network: FeatureNetworkName;
  weights?: string;
  device: Device;
  scales: ScaleImages[];
  styleWeights: number[];
  contentLayer: string;
  styleLayers: Record<string, number>;
  alpha: number;
  beta: number;
  tvWeight: number;
  init: 'noise' | 'content' | 'mix';
  noiseRatio: number;
  optimizer: 'adam' | 'lbfgs';
  learningRate: number;
  saveEvery: number;
  seed?: number;
  threads?: number;
}

export interface StyleCosts {
  total: number;
  content: number;
  style: number;
  tv: number;
}

export interface StyleProgress {
  /** 1-based, counted over all scales. */
  iteration: number;
  iterations: number;
  /** 0-based scale index (0 = coarsest) and the size being optimised. */
  scale: number;
  width: number;
  height: number;
  /** Each cost at the image before this iteration's update. */
  costs: StyleCosts;
  elapsedMs: number;
  msPerIteration: number;
  /** The current image, every saveEvery iterations (and at the last one) when saveEvery > 0. */
  image?: RgbImage;
}

export interface StyleResult {
  image: RgbImage;
  iterations: number;
  elapsedMs: number;
  /** Costs at the first and the last evaluated iteration (of the finest scale for final). */
  initialCosts: StyleCosts;
  finalCosts: StyleCosts;
  network: string;
}

export interface EngineHooks {
  progress(p: StyleProgress): void;
  cancelled(): boolean;
  /** Called between iterations: return a promise to yield (in-process mode). */
  pause?(): Promise<void> | void;
  /** A network already loaded (in-process mode may reuse one). */
  net?: FeatureNetwork;
}

/** A style transfer stopped by its cancel() (or an aborted signal). */
export class CancelledError extends TorchfaceError {
  override readonly code: string = 'ERR_CANCELLED';
  constructor() {
    super('style transfer was cancelled');
  }
}

export async function runStyleJob(job: StyleJob, hooks: EngineHooks): Promise<StyleResult> {
  if (job.seed !== undefined) manualSeed(job.seed);
  const net = hooks.net ?? (await loadFeatureNetwork(job.network, { weights: job.weights, device: job.device }));
  const start = Date.now();
  const total = job.scales.reduce((n, s) => n + s.iterations, 0);
  const styleNames = Object.keys(job.styleLayers);
  const allLayers = [...new Set([job.contentLayer, ...styleNames])];
  let iteration = 0;
  let initialCosts: StyleCosts | null = null;
  let lastCosts: StyleCosts | null = null;
  let g: Tensor | null = null;
  try {
    for (let si = 0; si < job.scales.length; si++) {
      const sc = job.scales[si];
      const { width, height } = sc.content;
      const { contentAct, grams } = noGrad(() =>
        tidy(() => {
          const c = imageToTensor(sc.content, job.device);
          const contentAct = net.features(c, [job.contentLayer]).get(job.contentLayer)!;
          const grams = sc.styles.map((img) => {
            const s = imageToTensor(img, job.device);
            const acts = net.features(s, styleNames);
            return new Map(styleNames.map((n) => [n, gramMatrix(acts.get(n)!)]));
          });
          return { contentAct, grams };
        }),
      );
      // Initial image: noise, the content, or a mix; later scales upsample the previous result.
      const next: Tensor = noGrad(() =>
        tidy(() => {
          if (g) return F.interpolate(g, { size: [height, width], mode: 'bilinear', alignCorners: false }).clamp(0, 255);
          const c = imageToTensor(sc.content, job.device);
          const noise = rand(c.shape, { device: job.device }).mul(255);
          if (job.init === 'noise') return noise;
          if (job.init === 'content') return c;
          return F.add(noise.mul(job.noiseRatio), c.mul(1 - job.noiseRatio));
        }),
      );
      g?.dispose();
      g = keep(next.detach());
      next.dispose();
      g.requiresGrad_(true);
      const gx = g;
      let costs: StyleCosts = { total: NaN, content: NaN, style: NaN, tv: NaN };
      const closure = (): number => {
        gx.grad = null;
        tidy(() => {
          const acts = net.features(gx, allLayers);
          const jc = contentCost(contentAct, acts.get(job.contentLayer)!);
          let js: Tensor | null = null;
          for (let k = 0; k < grams.length; k++) {
            for (const name of styleNames) {
              const term = layerStyleCost({ gram: grams[k].get(name)! }, acts.get(name)!).mul(job.styleLayers[name] * job.styleWeights[k]);
              js = js ? F.add(js, term) : term;
            }
          }
          const tv = job.tvWeight > 0 ? totalVariation(gx) : null;
          const jt = totalCost(jc, js!, job.alpha, job.beta, tv ? { cost: tv, weight: job.tvWeight } : undefined);
          jt.backward();
          const v = F.stack([jt, jc, js!, tv ?? F.mul(jc, 0)]).data() as Float32Array;
          costs = { total: v[0], content: v[1], style: v[2], tv: v[3] };
        });
        return costs.total;
      };
      // One iteration = one cost evaluation: Adam steps once; L-BFGS keeps its history across steps of one iteration each (no line search), as torch.optim.LBFGS(max_iter=1).
      const opt: Optimizer = job.optimizer === 'adam' ? new Adam([gx], { lr: job.learningRate }) : new LBFGS([gx], { lr: job.learningRate, maxIter: 1, maxEval: 1 });
      try {
        for (let it = 0; it < sc.iterations; it++) {
          opt.zeroGrad();
          if (hooks.cancelled()) throw new CancelledError();
          opt.step(closure);
          noGrad(() => (F.callOp('aten::clamp_', '', gx, 0, 255) as Tensor).dispose()); // in place (the returned alias handle is released)
          iteration += 1;
          initialCosts ??= { ...costs };
          lastCosts = { ...costs };
          const elapsedMs = Date.now() - start;
          const p: StyleProgress = { iteration, iterations: total, scale: si, width, height, costs: { ...costs }, elapsedMs, msPerIteration: elapsedMs / iteration };
          if (job.saveEvery > 0 && (iteration % job.saveEvery === 0 || iteration === total)) p.image = noGrad(() => tidy(() => tensorToImage(gx.detach())));
          hooks.progress(p);
          const pause = hooks.pause?.();
          if (pause) await pause;
        }
      } finally {
        opt.dispose();
        contentAct.dispose();
        for (const m of grams) for (const t of m.values()) t.dispose();
      }
      gx.grad = null;
    }
    const image = noGrad(() => tidy(() => tensorToImage(g!.detach())));
    const nan = { total: NaN, content: NaN, style: NaN, tv: NaN };
    return { image, iterations: iteration, elapsedMs: Date.now() - start, initialCosts: initialCosts ?? nan, finalCosts: lastCosts ?? nan, network: net.name };
  } finally {
    g?.dispose();
    if (!hooks.net) net.dispose();
  }
}

