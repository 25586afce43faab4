// Shared declarations of the torchface addon.
//
// The addon is deliberately thin: tensors cross to JavaScript as handles —
// numbers naming a slot of a per-environment table of at::Tensor, with a
// generation count so that a stale handle is recognised; every ATen
// operator is reached generically through the c10 dispatcher (dispatch.cc), so
// adding an op to the TypeScript API needs no C++ at all. Argument checking
// that TypeScript can do happens in lib/; what remains here is conversion and
// turning every C++ exception into a JavaScript Error.
#pragma once

#include <napi.h>
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace torchface {

// One slot of the handle table. A handle is the number generation * 2^24 +
// index: plain numbers cost JavaScript nothing to create (no object, no
// finalizer), which matters for per-op overhead. lib/ releases slots through
// dispose(), explicitly or from a FinalizationRegistry when a Tensor wrapper is
// collected; disposing bumps the generation, so old handles are refused.
struct TensorSlot {
  at::Tensor tensor;
  const void* memoryKey = nullptr;  // the storage it holds (Instance::held)
  uint32_t generation = 1;
};

// Memory held through handles, counted once per storage: views, `.grad` read
// twice and in-place results share their storage with another handle, and
// counting each handle's elements counted the same bytes again.
struct HeldMemory {
  const void* key = nullptr;  // the storage (nullptr: an empty entry)
  int64_t handles = 0;
  int64_t bytes = 0;  // the storage's size when first seen
};

// Storage -> HeldMemory, consulted on every wrap and release (the per-op hot
// path): open addressing with linear probing in one array, no allocation per
// entry (std::unordered_map's node per insert cost ~0.1 us of a 1.2 us add).
class HeldTable {
 public:
  // The entry of key, made (empty: handles 0) when missing.
  HeldMemory& find(const void* key);
  // Removes the entry of key (which must be present).
  void erase(const void* key);

 private:
  std::vector<HeldMemory> entries_ = std::vector<HeldMemory>(1024);
  size_t used_ = 0;
  size_t slotOf(const void* key) const { return (reinterpret_cast<uintptr_t>(key) >> 4) * 0x9E3779B97F4A7C15ull >> 20 & (entries_.size() - 1); }
  void grow();
};

struct Program;  // dispatch.cc

// Cached view of one dispatcher operator: the handle plus argument kinds, so a
// call does not re-inspect the schema.
struct OpEntry {
  c10::OperatorHandle handle;
  std::string name;  // "aten::add.Tensor", used in error messages
  std::vector<c10::Argument> args;
  size_t numReturns;
  // set_data / set_ give `self` another storage: the handle's memory entry must follow.
  bool swapsStorage = false;
};

// Per-environment state (the addon is context-aware: it loads in worker threads).
struct Instance {
  std::vector<OpEntry> ops;
  std::unordered_map<std::string, uint32_t> opIndex;
  std::vector<TensorSlot> slots;
  std::vector<uint32_t> freeSlots;
  int64_t liveTensors = 0;
  int64_t liveBytes = 0;
  HeldTable held;
  int64_t peakBytes = 0;
  std::unique_ptr<struct Trace> trace;  // non-null while a trace is recorded
  // False once the environment is torn down (a worker thread terminated): async
  // work that completes afterwards must not touch this Instance or call into JS.
  std::shared_ptr<std::atomic<bool>> alive = std::make_shared<std::atomic<bool>>(true);
  Instance();
  ~Instance();  // both in dispatch.cc, where Trace is complete (program.h)
};

Instance& instance(Napi::Env env);

// Handles --------------------------------------------------------------------
Napi::Value wrapTensor(Napi::Env env, at::Tensor t);
// The tensor behind a handle; throws a JS TypeError for anything else and for
// a disposed handle.
at::Tensor& unwrapTensor(Napi::Env env, const Napi::Value& v, const char* what = "tensor");
bool isTensorHandle(const Napi::Value& v);
// After an op gave the tensor behind a handle another storage (set_data, set_):
// moves its memory accounting to the new storage. Else the old storage's entry
// would outlive it, and a new storage at the same address would go uncounted.
void followStorage(Napi::Env env, const Napi::Value& handle);
// Releases the slot behind a handle; false if it was not a live handle.
bool releaseHandle(Napi::Env env, const Napi::Value& v);

// Errors ---------------------------------------------------------------------
// Runs fn, converting libtorch and standard exceptions into JS errors.
template <typename F>
auto guarded(Napi::Env env, const char* where, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, std::string(where) + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string(where) + ": " + e.what());
  }
}

// Conversions ----------------------------------------------------------------
// An integer from a JS number; non-integers and non-finite values are refused
// (never truncated: ones([2.7]) must not make shape [2]).
int64_t toInt64(const Napi::Value& v, const char* what);
std::vector<int64_t> toIntVector(const Napi::Value& v);
Napi::Array fromIntArray(Napi::Env env, at::IntArrayRef a);
// The tensors behind an array of handles (null entries allowed, as undefined tensors, when allowNull).
std::vector<at::Tensor> tensorList(Napi::Env env, const Napi::Value& v, bool allowNull);
Napi::Value fromIValue(Napi::Env env, const c10::IValue& v);
// An operator argument from JS, converted by its schema type (convert.cc), and
// the check of dtype / layout / memory-format codes libtorch would trust.
c10::IValue toIValue(Napi::Env env, const Napi::Value& v, const c10::TypePtr& type, const c10::Argument& arg);
void checkEnumCode(Napi::Env env, const c10::IValue& v, const c10::Argument& arg);

// Module parts ---------------------------------------------------------------
void initTensor(Napi::Env env, Napi::Object exports);  // handles.cc
void initAutograd(Napi::Env env, Napi::Object exports);
void initDispatch(Napi::Env env, Napi::Object exports);
void initProgram(Napi::Env env, Napi::Object exports);
void initDistributed(Napi::Env env, Napi::Object exports);

}  // namespace torchface
