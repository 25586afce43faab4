// Entry point of the torchface addon. Context-aware: all state lives in the
// per-environment Instance, so the addon loads in worker threads too.
#include "common.h"

namespace torchface {

Instance& instance(Napi::Env env) { return *env.GetInstanceData<Instance>(); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<Instance>(new Instance());
  initTensor(env, exports);
  initDispatch(env, exports);
  return exports;
}

}  // namespace torchface

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return torchface::Init(env, exports); }

NODE_API_MODULE(addon, InitAddon)
