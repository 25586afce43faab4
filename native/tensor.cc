// Tensor handles, creation from and copy to JavaScript memory, autograd entry
// points and runtime settings. (PyTorch .pt files are read in TypeScript:
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
  if (!(d >= 0) || d >= kIndexSpan * kMaxGeneration || d != std::floor(d)) return nullptr;
  auto index = static_cast<size_t>(std::fmod(d, kIndexSpan));
  auto generation = static_cast<uint32_t>(std::floor(d / kIndexSpan));
  auto& inst = instance(env);
  if (index >= inst.slots.size()) return nullptr;
  auto& slot = inst.slots[index];
  if (slot.generation != generation || !slot.tensor.defined()) return nullptr;
  return &slot;
}
}  // namespace

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
  auto [key, bytes] = memoryOf(slot.tensor);
  slot.memoryKey = key;
  if (key) {
    HeldMemory& m = inst.held[key];
    if (m.handles++ == 0) {
      m.bytes = bytes;
      inst.liveBytes += bytes;
      if (inst.liveBytes > inst.peakBytes) inst.peakBytes = inst.liveBytes;
      // Tell V8 about native memory so that garbage collection (and with it the
      // FinalizationRegistry safety net in lib/core/tensor.ts) runs under memory pressure.
      if (bytes >= 4096) Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
    }
  }
  return Napi::Number::New(env, slot.generation * kIndexSpan + static_cast<double>(index));
}

bool isTensorHandle(const Napi::Value& v) { return slotOf(v.Env(), v) != nullptr; }

bool releaseHandle(Napi::Env env, const Napi::Value& v) {
  TensorSlot* slot = slotOf(env, v);
  if (!slot) return false;
  auto& inst = instance(env);
  inst.liveTensors -= 1;
  if (slot->memoryKey) {
    auto it = inst.held.find(slot->memoryKey);
    if (it != inst.held.end() && --it->second.handles == 0) {
      int64_t bytes = it->second.bytes;
      inst.liveBytes -= bytes;
      if (bytes >= 4096) Napi::MemoryManagement::AdjustExternalMemory(env, -bytes);
      inst.held.erase(it);
    }
    slot->memoryKey = nullptr;
  }
  slot->tensor.reset();
  slot->generation = slot->generation + 1 < kMaxGeneration ? slot->generation + 1 : 1;
  inst.freeSlots.push_back(static_cast<uint32_t>(slot - inst.slots.data()));
  return true;
}

at::Tensor& unwrapTensor(Napi::Env env, const Napi::Value& v, const char* what) {
  TensorSlot* slot = slotOf(env, v);
  if (!slot) {
    if (v.IsNumber()) throw Napi::Error::New(env, std::string(what) + ": tensor was disposed");
    throw Napi::TypeError::New(env, std::string(what) + ": expected a tensor handle");
  }
  return slot->tensor;
}

int64_t toInt64(const Napi::Value& v, const char* what) {
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(std::abs(d) <= 9007199254740992.0) || std::nearbyint(d) != d)
    throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected an integer, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

std::vector<int64_t> toIntVector(const Napi::Value& v) {
  std::vector<int64_t> out;
  if (v.IsNumber()) {
    out.push_back(toInt64(v, "shape"));
    return out;
  }
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), "expected an array of integers");
  auto a = v.As<Napi::Array>();
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber()) throw Napi::TypeError::New(v.Env(), "expected an array of integers");
    out.push_back(toInt64(e, "shape"));
  }
  return out;
}

Napi::Array fromIntArray(Napi::Env env, at::IntArrayRef a) {
  auto out = Napi::Array::New(env, a.size());
  for (size_t i = 0; i < a.size(); i++) out.Set(i, Napi::Number::New(env, static_cast<double>(a[i])));
  return out;
}

std::vector<at::Tensor> tensorList(Napi::Env env, const Napi::Value& v, bool allowNull) {
  std::vector<at::Tensor> out;
  auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (allowNull && (e.IsNull() || e.IsUndefined())) out.emplace_back();
    else out.push_back(unwrapTensor(env, e));
  }
  return out;
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

// Autograd ---------------------------------------------------------------------

Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "requiresGrad_", [&]() -> Napi::Value {
    unwrapTensor(env, info[0]).set_requires_grad(info[1].ToBoolean());
    return env.Undefined();
  });
}

Napi::Value Grad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "grad", [&]() -> Napi::Value {
    const auto& g = unwrapTensor(env, info[0]).grad();
    if (!g.defined()) return env.Null();
    return wrapTensor(env, g);
  });
}

// setGrad(handle, grad | null): what optimizer.zeroGrad(setToNone) needs.
Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "setGrad", [&]() -> Napi::Value {
    auto& t = unwrapTensor(env, info[0]);
    t.mutable_grad() = info[1].IsNull() || info[1].IsUndefined() ? at::Tensor() : unwrapTensor(env, info[1]);
    return env.Undefined();
  });
}

Napi::Value GradFn(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "gradFn", [&]() -> Napi::Value {
    auto& t = unwrapTensor(env, info[0]);
    auto fn = t.grad_fn();
    if (!fn) return env.Null();
    return Napi::String::New(env, fn->name());
  });
}

Napi::Value IsLeaf(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "isLeaf", [&]() -> Napi::Value { return Napi::Boolean::New(env, unwrapTensor(env, info[0]).is_leaf()); });
}

Napi::Value RetainGrad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "retainGrad", [&]() -> Napi::Value {
    unwrapTensor(env, info[0]).retain_grad();
    return env.Undefined();
  });
}


// backward(outputs[], grads[] (null entries allowed), retainGraph, createGraph)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "backward", [&]() -> Napi::Value {
    auto outputs = tensorList(env, info[0], false);
    auto grads = tensorList(env, info[1], true);
    bool retain = info[2].ToBoolean();
    bool create = info[3].ToBoolean();
    torch::autograd::backward(outputs, grads, retain, create);
    return env.Undefined();
  });
}

// grad(outputs[], inputs[], gradOutputs[], retainGraph, createGraph, allowUnused) -> (handle|null)[]
Napi::Value AutogradGrad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "grad", [&]() -> Napi::Value {
    auto outputs = tensorList(env, info[0], false);
    auto inputs = tensorList(env, info[1], false);
    auto gradOutputs = tensorList(env, info[2], true);
    bool create = info[4].ToBoolean();
    c10::optional<bool> retain;
    if (info[3].IsBoolean()) retain = info[3].ToBoolean().Value();
    auto res = torch::autograd::grad(outputs, inputs, gradOutputs, retain, create, info[5].ToBoolean());
    auto out = Napi::Array::New(env, res.size());
    for (size_t i = 0; i < res.size(); i++) out.Set(i, res[i].defined() ? wrapTensor(env, res[i]) : env.Null());
    return out;
  });
}

// Grad mode is thread-local in libtorch, so this affects only the calling thread.
Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  bool previous = at::GradMode::is_enabled();
  at::GradMode::set_enabled(info[0].ToBoolean());
  return Napi::Boolean::New(info.Env(), previous);
}

Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled()); }

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
  exports.Set("setRequiresGrad", Napi::Function::New(env, SetRequiresGrad));
  exports.Set("grad", Napi::Function::New(env, Grad));
  exports.Set("setGrad", Napi::Function::New(env, SetGrad));
  exports.Set("gradFn", Napi::Function::New(env, GradFn));
  exports.Set("isLeaf", Napi::Function::New(env, IsLeaf));
  exports.Set("retainGrad", Napi::Function::New(env, RetainGrad));
  exports.Set("backward", Napi::Function::New(env, Backward));
  exports.Set("autogradGrad", Napi::Function::New(env, AutogradGrad));
  exports.Set("setGradEnabled", Napi::Function::New(env, SetGradEnabled));
  exports.Set("isGradEnabled", Napi::Function::New(env, IsGradEnabled));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("cudaIsAvailable", Napi::Function::New(env, CudaIsAvailable));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCount));
  exports.Set("cudaSynchronize", Napi::Function::New(env, CudaSynchronize));
  exports.Set("versions", Napi::Function::New(env, Versions));
}

}  // namespace torchface
