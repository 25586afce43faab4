# Peer of scripts/bench/cases/distributed.ts: all_reduce bandwidth of Python torch's
# torch.distributed with Gloo (the same libtorch c10d), one rank per process.
# Env: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; argv[1]: JSON {sizes_mb, reps, warmup}.
# Rank 0 prints one JSON line: {"ms": {"<mb>": [times...]}}.
import json
import os
import sys
import time

import torch
import torch.distributed as dist

o = json.loads(sys.argv[1])
torch.set_num_threads(1)
dist.init_process_group("gloo", rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
out = {}
for mb in o["sizes_mb"]:
    t = torch.ones(int(mb * 1024 * 1024 / 4))
    for _ in range(o["warmup"]):
        dist.all_reduce(t)
    times = []
    for _ in range(3):  # blocks of back-to-back calls after a barrier, as distributed.ts
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(o["reps"]):
            dist.all_reduce(t)
        times.append((time.perf_counter() - t0) * 1e3 / o["reps"])
    out[str(mb)] = times
if dist.get_rank() == 0:
    print(json.dumps({"ms": out}))
dist.destroy_process_group()
