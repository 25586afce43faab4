// npm run stylize -- --content c.jpg --style s.jpg [--style s2.jpg --style-weights 1,2] --out g.png
//   [--size 256] [--iterations 300] [--init noise|content|mix] [--optimizer adam|lbfgs] [--lr N]
//   [--network mobilenet|vgg19 --weights vgg19.pth] [--content-layer L] [--style-layers a:0.2,b:0.2]
//   [--alpha N] [--beta N] [--tv N] [--scales N] [--save-every N] [--device cpu|cuda] [--seed N]
// Writes the result (and every --save-every iterations OUT-00050.png ...), with a progress bar.
import * as path from 'path';
import { ArgumentError, TorchfaceError } from '../lib/core/errors';
import { savePng } from '../lib/image';
import { styleTransfer, type StyleTransferOptions } from '../lib/style';
import { ProgressBar } from '../lib/util/progress';

const USAGE = `usage: npm run stylize -- --content IMAGE --style IMAGE [--style IMAGE ...] --out OUT.png [options]
  --size N            longest side in pixels (default 256 on CPU, 512 on CUDA)
  --iterations N      optimisation steps (default 300)
  --init MODE         noise | content | mix (default content)
  --optimizer NAME    adam | lbfgs (default adam)
  --lr N              learning rate
  --network NAME      mobilenet (bundled, default) | vgg19 (needs --weights)
  --weights FILE      VGG-19 weights: torchvision vgg19-*.pth or .safetensors
  --content-layer L   e.g. conv_7 (mobilenet) or conv4_2 (vgg19)
  --style-layers S    e.g. conv1_1:0.2,conv2_1:0.2
  --style-weights W   weights of several --style images, e.g. 1,3
  --alpha N --beta N  content and style weights; --tv N total-variation weight
  --scales N          coarse-to-fine scales (default 1)
  --save-every N      also write OUT-<iteration>.png every N iterations
  --device D          cpu | cuda; --seed N; --threads N`;

/** argv with repeatable --style. */
function parse(argv: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new ArgumentError('arguments', '--name value pairs', a);
    const [k, inline] = a.slice(2).split(/=(.*)/s);
    const v = inline ?? (i + 1 < argv.length && !argv[i + 1].startsWith('--') ? argv[++i] : 'true');
    (out[k] ??= []).push(v);
  }
  return out;
}

const num = (v: string | undefined, name: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new ArgumentError(`--${name}`, 'a number', v);
  return n;
};

export function optionsFromArgs(a: Record<string, string[]>): { options: StyleTransferOptions; out: string } {
  const one = (k: string) => a[k]?.[a[k].length - 1];
  const known = new Set(['content', 'style', 'out', 'size', 'iterations', 'init', 'optimizer', 'lr', 'network', 'weights', 'content-layer', 'style-layers', 'style-weights', 'alpha', 'beta', 'tv', 'scales', 'save-every', 'device', 'seed', 'threads', 'help']);
  for (const k of Object.keys(a)) if (!known.has(k)) throw new ArgumentError(`--${k}`, `one of --${[...known].join(', --')}`, k);
  if (!one('content')) throw new ArgumentError('--content', 'an image file', undefined);
  if (!a.style?.length) throw new ArgumentError('--style', 'an image file (repeat --style for several)', undefined);
  const out = one('out') ?? 'stylized.png';
  const sw = one('style-weights')?.split(',').map((w) => num(w, 'style-weights')!);
  if (sw && sw.length !== a.style.length) throw new ArgumentError('--style-weights', `${a.style.length} comma-separated numbers (one per --style)`, one('style-weights'));
  const styleLayers = one('style-layers')
    ? Object.fromEntries(
        one('style-layers')!.split(',').map((p) => {
          const [n, w] = p.split(':');
          return [n, w === undefined ? 1 : num(w, 'style-layers')!];
        }),
      )
    : undefined;
  const options: StyleTransferOptions = {
    content: one('content')!,
    style: a.style.length === 1 ? a.style[0] : a.style.map((s, i) => ({ image: s, weight: sw ? sw[i] : 1 })),
    size: num(one('size'), 'size'),
    iterations: num(one('iterations'), 'iterations'),
    init: one('init') as never,
    optimizer: one('optimizer') as never,
    learningRate: num(one('lr'), 'lr'),
    network: one('network') as never,
    weights: one('weights'),
    contentLayer: one('content-layer'),
    styleLayers,
    alpha: num(one('alpha'), 'alpha'),
    beta: num(one('beta'), 'beta'),
    tvWeight: num(one('tv'), 'tv'),
    scales: num(one('scales'), 'scales'),
    saveEvery: num(one('save-every'), 'save-every'),
    device: one('device'),
    seed: num(one('seed'), 'seed'),
    threads: num(one('threads'), 'threads'),
  };
  for (const k of Object.keys(options) as (keyof StyleTransferOptions)[]) if (options[k] === undefined) delete options[k];
  return { options, out };
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const { options, out } = optionsFromArgs(args);
  const run = styleTransfer(options);
  let bar: ProgressBar | null = null;
  const pending: Promise<void>[] = [];
  const ext = path.extname(out);
  for await (const p of run) {
    bar ??= new ProgressBar({ total: p.iterations, label: 'stylize' });
    bar.update(p.iteration, { total: p.costs.total, content: p.costs.content, style: p.costs.style, 'ms/it': Math.round(p.msPerIteration), size: `${p.width}x${p.height}` });
    if (p.image && p.iteration < p.iterations) pending.push(savePng(`${out.slice(0, out.length - ext.length)}-${String(p.iteration).padStart(5, '0')}${ext || '.png'}`, p.image));
  }
  const r = await run;
  if (process.stderr.isTTY) bar?.done();
  await Promise.all(pending);
  await savePng(out, r.image);
  console.log(`${out}: ${r.image.width}x${r.image.height}, ${r.iterations} iterations in ${(r.elapsedMs / 1000).toFixed(1)} s (${r.network}); total cost ${r.initialCosts.total.toPrecision(4)} -> ${r.finalCosts.total.toPrecision(4)}`);
}

if (require.main === module) {
  main().catch((e) => {
    if (e instanceof ArgumentError || e instanceof TorchfaceError) console.error(`stylize: ${e.message}\n\n${USAGE}`);
    else console.error(e);
    process.exit(1);
  });
}
