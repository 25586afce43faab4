#!/usr/bin/env python3
"""The PyTorch side of the machine record in bench/results.json (scripts/bench/harness/index.ts).
Prints {"torch": version, "threads": default thread count, "cuda": available}."""
import json

import torch

print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}))
