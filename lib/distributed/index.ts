// torchface's torch.distributed: process groups and collectives over libtorch's
// c10d (Gloo on CPU, NCCL on CUDA builds that have it), DistributedDataParallel
// on c10d's Reducer, the P x K face sampler per rank, and a local launcher.
export {
  DistributedError,
  ProcessGroup,
  initProcessGroup,
  newGroup,
  isInitialized,
  isAvailable,
  getRank,
  getWorldSize,
  getLocalRank,
  getBackend,
  defaultProcessGroup,
  allReduce,
  broadcast,
  allGather,
  barrier,
  destroyProcessGroup,
  DEFAULT_TIMEOUT_MS,
} from './process-group';
export type { Backend, ReduceOp, InitProcessGroupOptions } from './process-group';
export { DistributedDataParallel } from './data-parallel';
export type { DistributedDataParallelOptions } from './data-parallel';
export { DistributedSampler } from '../face/train/dataset';
export { launch, freePort } from './launch';
export type { LaunchOptions, LaunchResult } from './launch';
