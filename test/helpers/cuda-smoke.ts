// CUDA smoke test: tensor round-trips through the GPU and a conv2d forward and
// backward on the GPU compared with the CPU. Prints the max abs differences
// and PASS / FAIL; without CUDA it prints SKIP and exits 0.
//
//   node dist/scripts/cuda-smoke.js
//
// scripts/gpu-check runs it after building the addon against a CUDA libtorch.
import { conv2d, cuda, distributed, DType, exportOnnx, loadOnnx, manualSeed, nn, noGrad, randn, resnet18, Tensor, tensor, tidy, trace, versions } from '../../lib';

export interface SmokeCheck {
  name: string;
  maxAbsDiff: number;
  tolerance: number;
  ok: boolean;
}

export interface SmokeResult {
  status: 'PASS' | 'FAIL' | 'SKIP';
  reason?: string;
  checks: SmokeCheck[];
}

function maxAbs(a: Tensor, b: Tensor): number {
  return tidy(() => a.cpu().double().sub(b.cpu().double()).abs().max().item());
}

/** Runs the checks; SKIP when this libtorch/machine has no CUDA device. */
export async function cudaSmoke(): Promise<SmokeResult> {
  if (!cuda.isAvailable() || cuda.deviceCount() === 0) return { status: 'SKIP', reason: `CUDA is not available (libtorch ${versions().libtorch})`, checks: [] };
  const checks: SmokeCheck[] = [];
  const check = (name: string, diff: number, tolerance: number) => checks.push({ name, maxAbsDiff: diff, tolerance, ok: diff <= tolerance });

  tidy(() => {
    // Round trip of every dtype: CPU -> GPU -> CPU must be exact.
    const dtypes: DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int32', 'int64', 'uint8', 'bool', 'int8', 'int16'];
    for (const dtype of dtypes) {
      const host = tensor([0, 1, 0, 1, 1, 0], { dtype, shape: [2, 3] });
      const dev = host.to('cuda');
      if (dev.device !== 'cuda:0') throw new Error(`expected a cuda:0 tensor, got ${dev.device}`);
      check(`round trip ${dtype}`, maxAbs(dev.cpu(), host), 0);
    }
    const direct = tensor([1.5, -2.5], { device: 'cuda' });
    check('tensor(data, { device: cuda })', Math.abs(direct.sum().item() + 1), 0);
  });

  // conv2d forward + backward at the seed shape and a larger one, GPU vs CPU in float32.
  for (const [xs, ws] of [
    [
      [1, 3, 14, 14],
      [16, 3, 5, 5],
    ],
    [
      [8, 64, 56, 56],
      [64, 64, 3, 3],
    ],
  ]) {
    tidy(() => {
      manualSeed(0);
      const x = randn(xs);
      const w = randn(ws).mul(0.1);
      const run = (device: 'cpu' | 'cuda') => {
        const xd = x.to(device).requiresGrad_(true);
        const wd = w.to(device).requiresGrad_(true);
        const y = conv2d(xd, wd);
        y.relu().square().sum().backward();
        return { y: y.detach(), gx: xd.grad!, gw: wd.grad! };
      };
      const cpu = run('cpu');
      const gpu = run('cuda');
      cuda.synchronize();
      const scale = (t: Tensor) => Math.max(1, t.abs().max().item());
      // cuDNN may use TF32 or other algorithms: relative tolerances
      check(`conv2d forward ${xs}*${ws}`, maxAbs(gpu.y, cpu.y) / scale(cpu.y), 1e-2);
      check(`conv2d grad input ${xs}*${ws}`, maxAbs(gpu.gx, cpu.gx) / scale(cpu.gx), 1e-2);
      check(`conv2d grad weight ${xs}*${ws}`, maxAbs(gpu.gw, cpu.gw) / scale(cpu.gw), 1e-2);
    });
  }

  // A traced program replayed on a worker thread with CUDA tensors.
  {
    const w = randn([4, 3, 3, 3]).to('cuda');
    const x = randn([2, 3, 8, 8]).to('cuda');
    const f = trace((t) => conv2d(t, w).relu().mean(), [x]);
    const [out] = await f(x);
    const eager = noGrad(() => conv2d(x, w).relu().mean());
    check('traced program on cuda', Math.abs(out.item() - eager.item()), 1e-5);
    for (const t of [w, x, out, eager]) t.dispose();
  }
  // An imported ONNX model on the GPU (eager and as a traced program) equals the CPU.
  {
    manualSeed(0);
    const src = resnet18({ outFeatures: 10 });
    src.eval();
    const x = randn([2, 3, 64, 64]);
    const net = await loadOnnx(exportOnnx(src, [x]));
    const cpu = noGrad(() => net.forward(x) as Tensor);
    net.to('cuda');
    const xg = x.to('cuda');
    check('onnx import on cuda (eager)', maxAbs(noGrad(() => net.forward(xg) as Tensor), cpu), 1e-3);
    const [ran] = await net.run(xg);
    check('onnx import on cuda (traced program)', maxAbs(ran, cpu), 1e-3);
  }
  // Distributed on the GPU: a world of one over NCCL (this machine has one GPU;
  // NCCL refuses two ranks on one device): an all-reduce of a CUDA tensor and a
  // DistributedDataParallel step whose gradients must equal the plain step's.
  if (distributed.isAvailable('nccl')) {
    const port = await distributed.freePort();
    const g = await distributed.newGroup({ backend: 'nccl', initMethod: `tcp://127.0.0.1:${port}`, rank: 0, worldSize: 1, timeoutMs: 60_000, groupName: 'smoke' });
    try {
      const t = tensor([1, 2, 3]).to('cuda');
      await g.allReduce(t, { op: 'sum' });
      check('nccl all-reduce (world of 1)', maxAbs(t, tensor([1, 2, 3])), 0);
      manualSeed(0);
      const net = new nn.Linear(8, 4);
      net.to('cuda');
      const x = randn([5, 8]).to('cuda');
      net.forward(x).square().sum().backward();
      const plain = net.weight.grad!.cpu();
      net.weight.grad = null;
      const ddp = new distributed.DistributedDataParallel(net, { group: g });
      (ddp.forward(x) as Tensor).square().sum().backward();
      check('nccl DistributedDataParallel gradient', maxAbs(net.weight.grad!, plain), 1e-6);
      ddp.release();
    } finally {
      g.destroy();
    }
  } else {
    console.log('note: this build has no NCCL (needs nccl.h when the addon is built): distributed GPU check skipped');
  }
  return { status: checks.every((c) => c.ok) ? 'PASS' : 'FAIL', checks };
}
