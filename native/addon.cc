// Entry point of the torchface addon. Context-aware: all state lives in the
// per-environment Instance, so the addon loads in worker threads too.
#include "common.h"

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace torchface {

Instance& instance(Napi::Env env) { return *env.GetInstanceData<Instance>(); }

// glibc hands large freed blocks straight back to the kernel (mmap threshold,
// trim threshold), so each training or style iteration page-faults its
// activations in again; measured here, that made a style-transfer iteration
// about 6% slower than the same loop in Python. Keep freed memory for reuse
// instead. Process-wide and idempotent; TORCHFACE_KEEP_MALLOC=1 opts out.
void tuneAllocator() {
#if defined(__GLIBC__)
  const char* optOut = std::getenv("TORCHFACE_KEEP_MALLOC");
  if (optOut && *optOut && std::string(optOut) != "0") return;
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

// releaseMemory() -> bool: hands the freed heap memory that tuneAllocator keeps
// back to the kernel (malloc_trim), e.g. once a burst of large images is over.
Napi::Value ReleaseMemory(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  tuneAllocator();
  exports.Set("releaseMemory", Napi::Function::New(env, ReleaseMemory));
  env.SetInstanceData<Instance>(new Instance());
  initTensor(env, exports);
  initAutograd(env, exports);
  initDispatch(env, exports);
  initDistributed(env, exports);
  return exports;
}

}  // namespace torchface

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return torchface::Init(env, exports); }

NODE_API_MODULE(addon, InitAddon)
