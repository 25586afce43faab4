// Generic access to every ATen operator through the c10 dispatcher, and the
// recording of "programs" (sequences of operator calls, replayed on a worker
// thread by program.cc) while a trace is open.
//
// Why the dispatcher: it is the registry behind torch.ops in Python. One
// boxed entry point serves all operators (with autograd, since the dispatcher
// routes through the Autograd key), so the TypeScript layer names ops by their
// schema ("aten::conv2d") and the C++ side stays a converter.
#include "program.h"

#include <ATen/ops/add_cpu_dispatch.h>
#include <ATen/ops/div_cpu_dispatch.h>
#include <ATen/ops/mul_cpu_dispatch.h>
#include <ATen/ops/sub_cpu_dispatch.h>

namespace torchface {

Instance::Instance() = default;
Instance::~Instance() { *alive = false; }

namespace {

// op(name, overload) -> id. Looked up once by lib/ at load time.
Napi::Value Op(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "op", [&]() -> Napi::Value {
    auto name = info[0].As<Napi::String>().Utf8Value();
    auto overload = info[1].As<Napi::String>().Utf8Value();
    auto key = name + "." + overload;
    auto& inst = instance(env);
    auto found = inst.opIndex.find(key);
    if (found != inst.opIndex.end()) return Napi::Number::New(env, found->second);
    auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
    if (!handle) throw Napi::Error::New(env, "op: no operator " + key + " in this libtorch");
    const auto& schema = handle->schema();
    OpEntry e{*handle, overload.empty() ? name : key, schema.arguments(), schema.returns().size()};
    e.swapsStorage = name == "aten::set_data" || name == "aten::set_";
    inst.ops.push_back(std::move(e));
    uint32_t id = static_cast<uint32_t>(inst.ops.size() - 1);
    inst.opIndex[key] = id;
    return Napi::Number::New(env, id);
  });
}

// schema(id) -> the operator's schema text (for documentation and debugging).
Napi::Value Schema(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto& inst = instance(env);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id >= inst.ops.size()) throw Napi::RangeError::New(env, "schema: unknown op id");
  std::ostringstream s;
  s << inst.ops[id].handle.schema();
  return Napi::String::New(env, s.str());
}

// call(id, ...args): runs one operator synchronously. Missing trailing
// arguments take the schema's defaults.
Napi::Value Call(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto& inst = instance(env);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id >= inst.ops.size()) throw Napi::RangeError::New(env, "call: unknown op id");
  const OpEntry& op = inst.ops[id];
  size_t given = info.Length() - 1;
  if (given > op.args.size()) throw Napi::TypeError::New(env, op.name + ": too many arguments");
  torch::jit::Stack stack;
  stack.reserve(op.args.size());
  try {
    for (size_t i = 0; i < op.args.size(); i++) {
      const auto& arg = op.args[i];
      Napi::Value v = i < given ? info[i + 1] : env.Undefined();
      if (v.IsUndefined() && arg.default_value()) stack.push_back(*arg.default_value());
      else if (v.IsUndefined() && arg.type()->kind() != c10::TypeKind::OptionalType)
        throw Napi::TypeError::New(env, "argument '" + arg.name() + "' is required");
      else {
        stack.push_back(toIValue(env, v, arg.type(), arg));
        checkEnumCode(env, stack.back(), arg);
      }
    }
  } catch (const Napi::Error& e) {
    throw Napi::TypeError::New(env, op.name + ": " + e.Message());
  } catch (const c10::Error& e) {
    // e.g. c10::Device("nonsense"): a C++ exception escaping here would abort the process.
    throw Napi::TypeError::New(env, op.name + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::TypeError::New(env, op.name + ": " + e.what());
  }
  Trace* trace = inst.trace.get();
  std::vector<RecordedArg> recorded;
  if (trace) {
    recorded.reserve(stack.size());
    for (const auto& v : stack) recorded.push_back(trace->record(v));
  }
  guarded(env, op.name.c_str(), [&] { op.handle.callBoxed(stack); });
  if (op.swapsStorage && given > 0) followStorage(env, info[1]);
  if (trace) {
    Instruction ins{static_cast<uint32_t>(trace->program.code.size()), std::move(recorded), {}};
    for (const auto& r : stack) {
      if (r.isTensor()) ins.outSlots.push_back(trace->addSlot(r.toTensor()));
      else if (r.isTuple()) {
        for (const auto& e : r.toTupleRef().elements()) ins.outSlots.push_back(e.isTensor() ? trace->addSlot(e.toTensor()) : -1);
      } else if (r.isTensorList()) {
        // split, chunk, unbind: each element is a computed value (recording
        // them as constants would freeze the replay's output to this call's).
        for (const auto& e : r.toTensorList()) ins.outSlots.push_back(trace->addSlot(e));
      } else ins.outSlots.push_back(-1);
    }
    trace->program.handles.push_back(op.handle);
    trace->program.names.push_back(op.name);
    trace->program.code.push_back(std::move(ins));
  }
  if (op.numReturns == 0) return env.Undefined();
  if (stack.size() == 1) return fromIValue(env, stack[0]);
  auto out = Napi::Array::New(env, stack.size());
  for (size_t i = 0; i < stack.size(); i++) out.Set(i, fromIValue(env, stack[i]));
  return out;
}

// A tensor the CPU kernels take as is: dense, on the CPU, its dispatch keys no more than a
// plain CPU tensor's (not quantized, sparse, oneDNN, a wrapper subclass), unnamed, and not
// requiring grad (so that the autograd hop would only forward the call).
bool plainCpu(const at::Tensor& t) {
  static const c10::DispatchKeySet plain = c10::DispatchKeySet({c10::DispatchKey::CPU, c10::DispatchKey::AutogradCPU, c10::DispatchKey::ADInplaceOrView, c10::DispatchKey::AutocastCPU});
  return !t.requires_grad() && t.key_set().has(c10::DispatchKey::CPU) && plain.isSupersetOf(t.key_set()) && !t.has_names();
}

// binary(kind, a, b, alpha) -> handle | undefined: the hot elementwise ops on two
// tensors (0 add, 1 sub, 2 mul, 3 div) called unboxed, without the generic
// path's argument conversion and boxing (issue #18: add 4x4 was 1.22x Python's
// time, all of it in this layer). Same dispatcher, same autograd. Returns
// undefined while a trace records, so that the caller takes the generic path,
// which records the call.
Napi::Value Binary(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (instance(env).trace) return env.Undefined();
  int kind = info[0].As<Napi::Number>().Int32Value();
  const at::Tensor& a = unwrapTensor(env, info[1], "input");
  const at::Tensor& b = unwrapTensor(env, info[2], "other");
  // alpha as an integer Scalar when it is one (integer tensors refuse a floating alpha, as in PyTorch).
  double d = kind < 2 ? info[3].As<Napi::Number>().DoubleValue() : 1.0;
  c10::Scalar alpha = std::nearbyint(d) == d && std::abs(d) < 9007199254740992.0 ? c10::Scalar(static_cast<int64_t>(d)) : c10::Scalar(d);
  try {
    // Plain dense CPU tensors that autograd does not track: the CPU kernel directly
    // (at::cpu::*, the same structured kernel with its dtype promotion and checks), skipping
    // the dispatcher's Autograd and ADInplaceOrView hops; everything else through the dispatcher.
    if (plainCpu(a) && plainCpu(b)) {
      switch (kind) {
        case 0: return wrapTensor(env, at::cpu::add(a, b, alpha));
        case 1: return wrapTensor(env, at::cpu::sub(a, b, alpha));
        case 2: return wrapTensor(env, at::cpu::mul(a, b));
        case 3: return wrapTensor(env, at::cpu::div(a, b));
      }
    }
    switch (kind) {
      case 0: return wrapTensor(env, at::add(a, b, alpha));
      case 1: return wrapTensor(env, at::sub(a, b, alpha));
      case 2: return wrapTensor(env, at::mul(a, b));
      case 3: return wrapTensor(env, at::div(a, b));
      default: throw Napi::RangeError::New(env, "binary: unknown kind");
    }
  } catch (const c10::Error& e) {
    static const char* names[] = {"aten::add", "aten::sub", "aten::mul", "aten::div"};
    throw Napi::Error::New(env, std::string(names[kind & 3]) + ": " + e.what_without_backtrace());
  }
}

// conv(nd, input, weight, bias | null, stride[], padding[], dilation[], groups) -> handle |
// undefined: aten::conv1d/2d/3d called unboxed (issue #18: the seed-size convolutions were
// 1.04-1.09x Python's time; the generic path's boxing of three int lists was ~2 µs of a
// 26 µs conv2d). Same dispatcher, same autograd; undefined while a trace records, so that
// the caller takes the generic path, which records the call.
Napi::Value Conv(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (instance(env).trace) return env.Undefined();
  int nd = info[0].As<Napi::Number>().Int32Value();
  static const char* names[] = {"aten::conv1d", "aten::conv2d", "aten::conv3d"};
  if (nd < 1 || nd > 3) throw Napi::RangeError::New(env, "conv: nd must be 1, 2 or 3");
  return guarded(env, names[nd - 1], [&]() -> Napi::Value {
    const at::Tensor& x = unwrapTensor(env, info[1], "input");
    const at::Tensor& w = unwrapTensor(env, info[2], "weight");
    c10::optional<at::Tensor> b;
    if (!info[3].IsNull() && !info[3].IsUndefined()) b = unwrapTensor(env, info[3], "bias");
    auto stride = toIntVector(info[4]);
    auto padding = toIntVector(info[5]);
    auto dilation = toIntVector(info[6]);
    int64_t groups = toInt64(info[7], "groups");
    switch (nd) {
      case 1: return wrapTensor(env, at::conv1d(x, w, b, stride, padding, dilation, groups));
      case 2: return wrapTensor(env, at::conv2d(x, w, b, stride, padding, dilation, groups));
      default: return wrapTensor(env, at::conv3d(x, w, b, stride, padding, dilation, groups));
    }
  });
}

// traceBegin(inputs[]): start recording the ops applied to these tensors.
Napi::Value TraceBegin(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto& inst = instance(env);
  if (inst.trace) throw Napi::Error::New(env, "traceBegin: a trace is already being recorded");
  auto trace = std::make_unique<Trace>();
  auto inputs = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < inputs.Length(); i++) trace->addSlot(unwrapTensor(env, inputs.Get(i), "input"));
  trace->program.numInputs = static_cast<int>(inputs.Length());
  inst.trace = std::move(trace);
  return env.Undefined();
}

// traceEnd(outputs[] | null) -> program handle (or undefined when outputs is null: abort)
Napi::Value TraceEnd(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto& inst = instance(env);
  if (!inst.trace) throw Napi::Error::New(env, "traceEnd: no trace is being recorded");
  std::unique_ptr<Trace> trace = std::move(inst.trace);
  if (info[0].IsNull() || info[0].IsUndefined()) return env.Undefined();
  auto outputs = info[0].As<Napi::Array>();
  auto program = std::make_shared<Program>(std::move(trace->program));
  for (uint32_t i = 0; i < outputs.Length(); i++) program->outputs.push_back(trace->record(unwrapTensor(env, outputs.Get(i), "output")));
  program->finish();
  return wrapProgram(env, std::move(program));
}

}  // namespace

void initDispatch(Napi::Env env, Napi::Object exports) {
  exports.Set("op", Napi::Function::New(env, Op));
  exports.Set("schema", Napi::Function::New(env, Schema));
  exports.Set("call", Napi::Function::New(env, Call));
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("conv", Napi::Function::New(env, Conv));
  exports.Set("traceBegin", Napi::Function::New(env, TraceBegin));
  exports.Set("traceEnd", Napi::Function::New(env, TraceEnd));
  initProgram(env, exports);
}

}  // namespace torchface
