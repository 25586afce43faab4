// The CUDA smoke check (scripts/gpu-check runs it on a GPU machine): test/helpers/cuda-smoke.ts's
// checks, printed one per line, then PASS, FAIL or SKIP.
import { cudaSmoke } from '../test/helpers/cuda-smoke';

async function main(): Promise<void> {
  const r = await cudaSmoke();
  if (r.status === 'SKIP') {
    console.log(`SKIP: ${r.reason}`);
    return;
  }
  for (const c of r.checks) console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: max abs diff ${c.maxAbsDiff.toExponential(3)} (tolerance ${c.tolerance})`);
  console.log(r.status);
  if (r.status !== 'PASS') process.exitCode = 1;
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    console.log('FAIL');
    process.exitCode = 1;
  });
}
