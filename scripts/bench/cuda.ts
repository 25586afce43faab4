// `npm run bench -- --device cuda`: a few cases on the GPU, torchface vs
// Python torch on the same device (synchronised before each clock read):
// per-op dispatch (4x4 add), conv2d forward + backward at a realistic size,
// and a 4096x4096 float32 matmul. Only runs where cuda.isAvailable().
import { cuda, conv2d, dispose, matmul, randn, tidy, type Device } from '../../lib';
import { BenchRow, Summary, runPythonInline, summarize } from './common';

const CASES = (quick: boolean) => [
  { name: 'add', label: 'add 4x4 float32', iterations: quick ? 2000 : 20000 },
  { name: 'conv', label: 'conv2d fwd+bwd 8x64x56x56 * 64x64x3x3', iterations: quick ? 10 : 50 },
  { name: 'matmul', label: 'matmul 4096x4096 float32', iterations: quick ? 10 : 50 },
];

const PY = `
import json, sys, time, torch
import torch.nn.functional as F
req = json.loads(sys.argv[1]); dev = req["device"]; out = {}
for c in req["cases"]:
    n = c["iterations"]
    if c["name"] == "add":
        a, b = torch.randn(4, 4, device=dev), torch.randn(4, 4, device=dev); f = lambda: a + b
    elif c["name"] == "conv":
        x = torch.randn(8, 64, 56, 56, device=dev); w = torch.randn(64, 64, 3, 3, device=dev, requires_grad=True)
        f = lambda: F.conv2d(x, w).sum().backward()
    else:
        a, b = torch.randn(4096, 4096, device=dev), torch.randn(4096, 4096, device=dev); f = lambda: a @ b
    ts = []
    for r in range(req["reps"] + 1):
        torch.cuda.synchronize(); t = time.perf_counter()
        for _ in range(n): f()
        torch.cuda.synchronize()
        if r: ts.append((time.perf_counter() - t) / n * 1e6)
    out[c["name"]] = ts
print(json.dumps(out))
`;

export function run(options: { device?: Device; quick?: boolean; reps?: number } = {}): (BenchRow & { torchfaceSpread: Summary; peerSpread: Summary | null })[] {
  const device = (options.device ?? 'cuda') as Device;
  const reps = options.reps ?? 5;
  const cases = CASES(!!options.quick);
  const py = runPythonInline<Record<string, number[]>>(PY, [JSON.stringify({ device, reps, cases })]);
  return cases.map((c) => {
    let f: () => void;
    let held: ReturnType<typeof randn>[];
    if (c.name === 'add') {
      held = [randn([4, 4], { device }), randn([4, 4], { device })];
      f = () => held[0].add(held[1]).dispose();
    } else if (c.name === 'conv') {
      held = [randn([8, 64, 56, 56], { device }), randn([64, 64, 3, 3], { device, requiresGrad: true })];
      f = () => tidy(() => conv2d(held[0], held[1]).sum().backward());
    } else {
      held = [randn([4096, 4096], { device }), randn([4096, 4096], { device })];
      f = () => matmul(held[0], held[1]).dispose();
    }
    const ts: number[] = [];
    for (let r = 0; r <= reps; r++) {
      cuda.synchronize();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < c.iterations; i++) f();
      cuda.synchronize();
      if (r) ts.push(Number(process.hrtime.bigint() - t0) / 1e3 / c.iterations);
    }
    dispose(...held);
    const s = summarize(ts);
    const p = py?.[c.name] ? summarize(py[c.name]) : null;
    return { case: `${c.label} on ${device}`, torchface: s.median, peer: p?.median ?? null, unit: 'µs/op', ratio: p ? s.median / p.median : null, goal: 1, torchfaceSpread: s, peerSpread: p };
  });
}
