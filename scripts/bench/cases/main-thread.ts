// Where the event loop's time goes while photos are embedded concurrently, as a
// service sees them: 4 demo photos with detection at once (Promise.all), `rounds`
// times, with V8's sampling profiler on the main thread and a 1 ms event-loop
// histogram. Reports the delay p99 and max, and the main thread's busy time by
// kind: garbage collection, native code called from the traced replays'
// dispatch (lib/core/jit.ts: what programRun does before it returns its promise),
// and the rest. A diagnostic, not a goal row.
//   node dist/scripts/bench/cases/main-thread.js [--rounds 10]
import * as fs from 'fs';
import { Session } from 'inspector';
import { monitorEventLoopDelay } from 'perf_hooks';
import { FaceModel } from '../../../lib';
import { cli, demoPhoto } from '../harness/common';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export async function profileMainThread(rounds = 10): Promise<Record<string, number>> {
  const photos = ['sample1.jpg', 'sample2.jpg', 'sample3.jpg', 'sample4.jpg'].map((f) => fs.readFileSync(demoPhoto(f)));
  const model = await FaceModel.pretrained();
  for (const p of photos) await model.embed(p, { detect: true }); // traces every shape first
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params?: object) => new Promise<T>((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r as T))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) await Promise.all(photos.map((p) => model.embed(p, { detect: true })));
  const wallMs = performance.now() - t0;
  loop.disable();
  const { profile } = await post<{ profile: Profile }>('Profiler.stop');
  session.disconnect();
  model.dispose();

  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Native code (no script URL) whose nearest JS caller is jit.ts's replay dispatch.
  const inReplayCall = (id: number) => {
    for (let p = parent.get(id); p !== undefined; p = parent.get(p)) {
      const f = byId.get(p)!.callFrame;
      if (f.url) return /core\/jit\.js$/.test(f.url);
    }
    return false;
  };
  const ms = { idle: 0, gc: 0, replayCalls: 0, other: 0 };
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') ms.idle += dt;
    else if (f.functionName === '(garbage collector)') ms.gc += dt;
    else if (!f.url && f.functionName === '' && inReplayCall(id)) ms.replayCalls += dt;
    else ms.other += dt;
  });
  const photosDone = rounds * photos.length;
  return {
    photos: photosDone,
    wallMs: +wallMs.toFixed(0),
    eventLoopP99Ms: +(loop.percentile(99) / 1e6).toFixed(1),
    eventLoopMaxMs: +(loop.max / 1e6).toFixed(1),
    busyMsPerPhoto: +((ms.gc + ms.replayCalls + ms.other) / photosDone).toFixed(2),
    gcMsPerPhoto: +(ms.gc / photosDone).toFixed(2),
    replayCallMsPerPhoto: +(ms.replayCalls / photosDone).toFixed(2),
    otherMsPerPhoto: +(ms.other / photosDone).toFixed(2),
  };
}

if (require.main === module) {
  const { flags } = cli(__filename, { rounds: 'number' });
  profileMainThread(flags.rounds ?? 10)
    .then((r) => console.log(JSON.stringify(r)))
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
