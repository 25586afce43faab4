// Tensor handles (a slot table: plain numbers cross to JavaScript), creation
// from and copy to JavaScript memory, memory accounting and runtime settings. (PyTorch .pt files are read in TypeScript:
// lib/io/pickle.ts, since libtorch 1.13's unpickler drops OrderedDicts.)
#include "common.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/cuda.h>
#include <torch/version.h>


namespace torchface {

namespace {
constexpr double kIndexSpan = 16777216.0;  // 2^24 slots
constexpr uint32_t kMaxGeneration = 1u << 28;  // keeps handles below 2^52

int64_t nbytesOf(const at::Tensor& t) {
  return t.defined() ? static_cast<int64_t>(t.numel() * t.element_size()) : 0;
}

// What a tensor's memory is counted by: its storage, or the tensor itself when
// it has none (oneDNN's opaque tensors), with the bytes to count.
std::pair<const void*, int64_t> memoryOf(const at::Tensor& t) {
  if (!t.defined()) return {nullptr, 0};
  if (t.has_storage() && t.storage().unsafeGetStorageImpl() != nullptr) return {t.storage().unsafeGetStorageImpl(), static_cast<int64_t>(t.storage().nbytes())};
  return {t.unsafeGetTensorImpl(), nbytesOf(t)};
}

// The live slot a handle names, or nullptr.
TensorSlot* slotOf(Napi::Env env, const Napi::Value& v) {
  if (!v.IsNumber()) return nullptr;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d >= kIndexSpan * kMaxGeneration) return nullptr;
  // Integer arithmetic (fmod and floor were ~6% of a 4x4 add): index in the low 24 bits.
  auto u = static_cast<uint64_t>(d);
  if (static_cast<double>(u) != d) return nullptr;
  auto index = static_cast<size_t>(u & (static_cast<uint64_t>(kIndexSpan) - 1));
  auto generation = static_cast<uint32_t>(u >> 24);
  auto& inst = instance(env);
  if (index >= inst.slots.size()) return nullptr;
  auto& slot = inst.slots[index];
  if (slot.generation != generation || !slot.tensor.defined()) return nullptr;
  return &slot;
}
// Counts the slot's storage (once per storage, however many handles share it).
void holdMemory(Napi::Env env, Instance& inst, TensorSlot& slot) {
  auto [key, bytes] = memoryOf(slot.tensor);
  slot.memoryKey = key;
  if (!key) return;
  HeldMemory& m = inst.held.find(key);
  if (m.handles++ > 0) return;
  m.bytes = bytes;
  inst.liveBytes += bytes;
  if (inst.liveBytes > inst.peakBytes) inst.peakBytes = inst.liveBytes;
  // Tell V8 about native memory so that garbage collection (and with it the
  // FinalizationRegistry safety net in lib/core/tensor.ts) runs under memory pressure.
  if (bytes >= 4096) Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
}

// Undoes holdMemory: the storage's bytes go when its last handle does.
void releaseMemory(Napi::Env env, Instance& inst, TensorSlot& slot) {
  if (!slot.memoryKey) return;
  HeldMemory& m = inst.held.find(slot.memoryKey);
  if (--m.handles == 0) {
    int64_t bytes = m.bytes;
    inst.liveBytes -= bytes;
    if (bytes >= 4096) Napi::MemoryManagement::AdjustExternalMemory(env, -bytes);
    inst.held.erase(slot.memoryKey);
  }
  slot.memoryKey = nullptr;
}

}  // namespace

HeldMemory& HeldTable::find(const void* key) {
  // At most half full: probes stay short.
  if ((used_ + 1) * 2 > entries_.size()) grow();
  size_t mask = entries_.size() - 1;
  for (size_t i = slotOf(key);; i = (i + 1) & mask) {
    HeldMemory& e = entries_[i];
    if (e.key == key) return e;
    if (e.key == nullptr) {
      e.key = key;
      e.handles = 0;
      e.bytes = 0;
      used_++;
      return e;
    }
  }
}

void HeldTable::erase(const void* key) {
  size_t mask = entries_.size() - 1;
  size_t i = slotOf(key);
  while (entries_[i].key != key) i = (i + 1) & mask;
  // Backward-shift deletion: move later entries of the probe run into the hole, so
  // that no tombstones are needed and every key stays reachable from its home slot.
  for (size_t j = (i + 1) & mask; entries_[j].key != nullptr; j = (j + 1) & mask) {
    size_t home = slotOf(entries_[j].key);
    // entries_[j] may move to i when its home is not in (i, j] (cyclically).
    bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!between) {
      entries_[i] = entries_[j];
      i = j;
    }
  }
  entries_[i] = HeldMemory{};
  used_--;
}

void HeldTable::grow() {
  std::vector<HeldMemory> old(entries_.size() * 2);
  old.swap(entries_);
  used_ = 0;
  for (const HeldMemory& e : old)
    if (e.key) {
      HeldMemory& n = find(e.key);
      n.handles = e.handles;
      n.bytes = e.bytes;
    }
}

Napi::Value wrapTensor(Napi::Env env, at::Tensor t) {
  auto& inst = instance(env);
  size_t index;
  if (!inst.freeSlots.empty()) {
    index = inst.freeSlots.back();
    inst.freeSlots.pop_back();
  } else {
    if (inst.slots.size() >= static_cast<size_t>(kIndexSpan)) throw Napi::RangeError::New(env, "too many live tensors (16,777,216); dispose some");
    index = inst.slots.size();
    inst.slots.emplace_back();
  }
  auto& slot = inst.slots[index];
  slot.tensor = std::move(t);
  inst.liveTensors += 1;
  holdMemory(env, inst, slot);
  return Napi::Number::New(env, slot.generation * kIndexSpan + static_cast<double>(index));
}

bool isTensorHandle(const Napi::Value& v) { return slotOf(v.Env(), v) != nullptr; }

bool releaseHandle(Napi::Env env, const Napi::Value& v) {
  TensorSlot* slot = slotOf(env, v);
  if (!slot) return false;
  auto& inst = instance(env);
  inst.liveTensors -= 1;
  releaseMemory(env, inst, *slot);
  slot->tensor.reset();
  slot->generation = slot->generation + 1 < kMaxGeneration ? slot->generation + 1 : 1;
  inst.freeSlots.push_back(static_cast<uint32_t>(slot - inst.slots.data()));
  return true;
}

void followStorage(Napi::Env env, const Napi::Value& handle) {
  TensorSlot* slot = slotOf(env, handle);
  if (!slot || memoryOf(slot->tensor).first == slot->memoryKey) return;
  auto& inst = instance(env);
  releaseMemory(env, inst, *slot);
  holdMemory(env, inst, *slot);
}

at::Tensor& unwrapTensor(Napi::Env env, const Napi::Value& v, const char* what) {
  TensorSlot* slot = slotOf(env, v);
  if (!slot) {
    if (v.IsNumber()) throw Napi::Error::New(env, std::string(what) + ": tensor was disposed");
    throw Napi::TypeError::New(env, std::string(what) + ": expected a tensor handle");
  }
  return slot->tensor;
}

namespace {

// fromBuffer(view: ArrayBufferView, shape: number[], dtype: number) -> handle
// Copies the bytes (the JS buffer may be reused or collected afterwards).
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "fromBuffer", [&]() -> Napi::Value {
    auto view = info[0].As<Napi::TypedArray>();
    auto shape = toIntVector(info[1]);
    // libtorch trusts a ScalarType code: 17 would make a QUInt2x4 tensor, 99 reaches its "please report" path.
    int64_t code = toInt64(info[2], "fromBuffer dtype");
    if (code < 0 || code >= static_cast<int64_t>(c10::ScalarType::NumOptions) || code == static_cast<int64_t>(c10::ScalarType::Undefined) ||
        c10::isQIntType(static_cast<at::ScalarType>(code)))
      throw Napi::TypeError::New(env, "fromBuffer: not a supported dtype code: " + std::to_string(code));
    auto dtype = static_cast<at::ScalarType>(code);
    auto ab = view.ArrayBuffer();
    auto* data = static_cast<uint8_t*>(ab.Data()) + view.ByteOffset();
    auto t = at::empty(shape, at::TensorOptions().dtype(dtype));
    if (static_cast<size_t>(t.nbytes()) != view.ByteLength())
      throw Napi::RangeError::New(env, "fromBuffer: byte length does not match shape and dtype");
    if (t.nbytes() > 0) std::memcpy(t.data_ptr(), data, t.nbytes());
    return wrapTensor(env, std::move(t));
  });
}

// toBuffer(handle) -> ArrayBuffer with the tensor's elements, contiguous, on CPU.
Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "toBuffer", [&]() -> Napi::Value {
    auto t = unwrapTensor(env, info[0]).detach().to(at::kCPU).contiguous();
    auto ab = Napi::ArrayBuffer::New(env, t.nbytes());
    if (t.nbytes() > 0) std::memcpy(ab.Data(), t.data_ptr(), t.nbytes());
    return ab;
  });
}

// meta(handle) -> [shape, dtype, device, requiresGrad]: one call for what the
// Tensor class caches.
Napi::Value Meta(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "meta", [&]() -> Napi::Value {
    auto& t = unwrapTensor(env, info[0]);
    auto out = Napi::Array::New(env, 4);
    out.Set(0u, fromIntArray(env, t.sizes()));
    out.Set(1u, Napi::Number::New(env, static_cast<int>(t.scalar_type())));
    out.Set(2u, Napi::String::New(env, t.device().str()));
    out.Set(3u, Napi::Boolean::New(env, t.requires_grad()));
    return out;
  });
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  releaseHandle(env, info[0]);
  return env.Undefined();
}

Napi::Value IsDisposed(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return Napi::Boolean::New(env, !isTensorHandle(info[0]));
}

Napi::Value Memory(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto& inst = instance(env);
  auto out = Napi::Object::New(env);
  out.Set("tensors", Napi::Number::New(env, static_cast<double>(inst.liveTensors)));
  out.Set("bytes", Napi::Number::New(env, static_cast<double>(inst.liveBytes)));
  out.Set("peakBytes", Napi::Number::New(env, static_cast<double>(inst.peakBytes)));
  return out;
}

// Runtime --------------------------------------------------------------------

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "manualSeed", [&]() -> Napi::Value {
    auto seed = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
    at::manual_seed(seed);
    return env.Undefined();
  });
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "setNumThreads", [&]() -> Napi::Value {
    at::set_num_threads(info[0].As<Napi::Number>().Int32Value());
    return env.Undefined();
  });
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), at::get_num_threads()); }

Napi::Value CudaIsAvailable(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), "cuda.isAvailable", [&]() -> Napi::Value { return Napi::Boolean::New(info.Env(), torch::cuda::is_available()); });
}

Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), "cuda.deviceCount", [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(torch::cuda::device_count()));
  });
}

Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), "cuda.synchronize", [&]() -> Napi::Value {
    if (torch::cuda::is_available()) torch::cuda::synchronize();
    return info.Env().Undefined();
  });
}

Napi::Value Versions(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("libtorch", Napi::String::New(env, TORCH_VERSION));
  out.Set("parallel", Napi::String::New(env, at::get_parallel_info()));
  return out;
}

}  // namespace

void initTensor(Napi::Env env, Napi::Object exports) {
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer));
  exports.Set("toBuffer", Napi::Function::New(env, ToBuffer));
  exports.Set("meta", Napi::Function::New(env, Meta));
  exports.Set("dispose", Napi::Function::New(env, Dispose));
  exports.Set("isDisposed", Napi::Function::New(env, IsDisposed));
  exports.Set("memory", Napi::Function::New(env, Memory));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("cudaIsAvailable", Napi::Function::New(env, CudaIsAvailable));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCount));
  exports.Set("cudaSynchronize", Napi::Function::New(env, CudaSynchronize));
  exports.Set("versions", Napi::Function::New(env, Versions));
}

}  // namespace torchface
