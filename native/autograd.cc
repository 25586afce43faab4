// Autograd entry points: requires_grad, .grad, grad_fn, backward and
// torch.autograd.grad, and the (thread-local) grad mode.
#include "common.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>

namespace torchface {

namespace {

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

}  // namespace

void initAutograd(Napi::Env env, Napi::Object exports) {
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
}

}  // namespace torchface
