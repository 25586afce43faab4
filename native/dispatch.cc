// Generic access to every ATen operator through the c10 dispatcher, and
// "programs": a recorded sequence of operator calls that can be replayed on a
// worker thread, so that a whole network forward is one async native call.
//
// Why the dispatcher: it is the registry behind torch.ops in Python. One
// boxed entry point serves all operators (with autograd, since the dispatcher
// routes through the Autograd key), so the TypeScript layer names ops by their
// schema ("aten::conv2d") and the C++ side stays a converter.
#include "common.h"

#include <ATen/Parallel.h>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <omp.h>  // omp_set_num_threads: resolved from the OpenMP runtime libtorch itself loads (no link of our own)

namespace torchface {

namespace {

bool isIntLike(c10::TypeKind k) {
  return k == c10::TypeKind::IntType || k == c10::TypeKind::SymIntType || k == c10::TypeKind::ScalarTypeType ||
         k == c10::TypeKind::LayoutType || k == c10::TypeKind::MemoryFormatType;
}

[[noreturn]] void argError(Napi::Env env, const c10::Argument& arg, const char* expected) {
  throw Napi::TypeError::New(env, "argument '" + arg.name() + "': expected " + expected);
}

int64_t toInt(Napi::Env env, const Napi::Value& v, const c10::Argument& arg) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(std::abs(d) <= 9007199254740992.0) || std::nearbyint(d) != d) argError(env, arg, "an integer");
    return static_cast<int64_t>(d);
  }
  if (v.IsBoolean()) return v.ToBoolean() ? 1 : 0;
  argError(env, arg, "an integer");
}

c10::IValue toIValue(Napi::Env env, const Napi::Value& v, const c10::TypePtr& type, const c10::Argument& arg);

c10::IValue listToIValue(Napi::Env env, const Napi::Value& v, const c10::TypePtr& elem, const c10::Argument& arg) {
  auto k = elem->kind();
  // PyTorch accepts a single int for "int[2] stride" and expands it.
  if (v.IsNumber() && isIntLike(k)) {
    size_t n = arg.N() ? *arg.N() : 1;
    return c10::IValue(std::vector<int64_t>(n, toInt(env, v, arg)));
  }
  if (!v.IsArray()) argError(env, arg, "an array");
  auto a = v.As<Napi::Array>();
  uint32_t n = a.Length();
  if (isIntLike(k)) {
    std::vector<int64_t> out(n);
    for (uint32_t i = 0; i < n; i++) out[i] = toInt(env, a.Get(i), arg);
    return c10::IValue(out);
  }
  if (k == c10::TypeKind::FloatType) {
    std::vector<double> out(n);
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value e = a.Get(i);
      if (!e.IsNumber()) argError(env, arg, "an array of numbers");
      out[i] = e.As<Napi::Number>().DoubleValue();
    }
    return c10::IValue(out);
  }
  if (k == c10::TypeKind::BoolType) {
    c10::List<bool> out;
    for (uint32_t i = 0; i < n; i++) out.push_back(a.Get(i).ToBoolean());
    return c10::IValue(out);
  }
  if (k == c10::TypeKind::TensorType) {
    c10::List<at::Tensor> out;
    out.reserve(n);
    for (uint32_t i = 0; i < n; i++) out.push_back(unwrapTensor(env, a.Get(i), arg.name().c_str()));
    return c10::IValue(out);
  }
  if (k == c10::TypeKind::OptionalType) {
    c10::List<c10::optional<at::Tensor>> out;
    for (uint32_t i = 0; i < n; i++) {
      Napi::Value e = a.Get(i);
      if (e.IsNull() || e.IsUndefined()) out.push_back(c10::nullopt);
      else out.push_back(unwrapTensor(env, e, arg.name().c_str()));
    }
    return c10::IValue(out);
  }
  argError(env, arg, ("a supported list, not " + elem->str()).c_str());
}

// Schemas declare dtype, layout and memory format as ints. libtorch trusts the
// value: an out-of-range ScalarType code crashes inside its error path (seen
// in the fuzz test), so the code is checked against the enum here.
void checkEnumCode(Napi::Env env, const c10::IValue& v, const c10::Argument& arg) {
  if (!v.isInt()) return;
  auto real = arg.real_type();
  if (real->kind() == c10::TypeKind::OptionalType) real = real->castRaw<c10::OptionalType>()->getElementType();
  int64_t limit;
  switch (real->kind()) {
    case c10::TypeKind::ScalarTypeType: limit = static_cast<int64_t>(c10::ScalarType::NumOptions); break;
    case c10::TypeKind::LayoutType: limit = static_cast<int64_t>(c10::Layout::NumOptions); break;
    case c10::TypeKind::MemoryFormatType: limit = static_cast<int64_t>(c10::MemoryFormat::NumOptions); break;
    default: return;
  }
  int64_t code = v.toInt();
  if (code < 0 || code >= limit || (real->kind() == c10::TypeKind::ScalarTypeType && code == static_cast<int64_t>(c10::ScalarType::Undefined)))
    argError(env, arg, ("a valid " + real->str() + " code, not " + std::to_string(code)).c_str());
}

c10::IValue toIValue(Napi::Env env, const Napi::Value& v, const c10::TypePtr& type, const c10::Argument& arg) {
  auto k = type->kind();
  if (k == c10::TypeKind::OptionalType) {
    if (v.IsNull() || v.IsUndefined()) return c10::IValue();
    return toIValue(env, v, type->castRaw<c10::OptionalType>()->getElementType(), arg);
  }
  switch (k) {
    case c10::TypeKind::TensorType:
      return unwrapTensor(env, v, arg.name().c_str());
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
    case c10::TypeKind::ScalarTypeType:
    case c10::TypeKind::LayoutType:
    case c10::TypeKind::MemoryFormatType:
      return toInt(env, v, arg);
    case c10::TypeKind::FloatType:
    case c10::TypeKind::SymFloatType:
      if (!v.IsNumber()) argError(env, arg, "a number");
      return v.As<Napi::Number>().DoubleValue();
    case c10::TypeKind::BoolType:
      if (!v.IsBoolean()) argError(env, arg, "a boolean");
      return v.ToBoolean().Value();
    case c10::TypeKind::NumberType: {  // at::Scalar: integers stay integral, like Python literals
      if (v.IsBoolean()) return v.ToBoolean().Value();
      if (!v.IsNumber()) argError(env, arg, "a number");
      double d = v.As<Napi::Number>().DoubleValue();
      if (std::nearbyint(d) == d && std::abs(d) < 9007199254740992.0) return static_cast<int64_t>(d);
      return d;
    }
    case c10::TypeKind::StringType:
      if (!v.IsString()) argError(env, arg, "a string");
      return v.As<Napi::String>().Utf8Value();
    case c10::TypeKind::DeviceObjType:
      if (!v.IsString()) argError(env, arg, "a device string");
      return c10::Device(v.As<Napi::String>().Utf8Value());
    case c10::TypeKind::GeneratorType:
      return c10::IValue();
    case c10::TypeKind::ListType:
      return listToIValue(env, v, type->castRaw<c10::ListType>()->getElementType(), arg);
    default:
      argError(env, arg, ("a value of unsupported type " + type->str()).c_str());
  }
}

}  // namespace

Napi::Value fromIValue(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) {
    const auto& t = v.toTensor();
    return t.defined() ? wrapTensor(env, t) : env.Null();
  }
  if (v.isNone()) return env.Null();
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isScalar()) return Napi::Number::New(env, v.toScalar().toDouble());
  if (v.isTuple() || v.isList()) {
    auto elems = v.isTuple() ? v.toTupleRef().elements().vec() : v.toListRef().vec();
    auto out = Napi::Array::New(env, elems.size());
    for (size_t i = 0; i < elems.size(); i++) out.Set(i, fromIValue(env, elems[i]));
    return out;
  }
  throw Napi::TypeError::New(env, "cannot convert a result of type " + v.tagKind());
}

// Tracing ------------------------------------------------------------------------

// An argument of a recorded call: a constant, a slot, or a list whose tensors
// may be slots.
struct RecordedArg {
  c10::IValue constant;
  int slot = -1;
  int constTensor = -1;  // index into Program::constTensors when `constant` is a tensor
  bool isTensorList = false, optionalList = false;
  std::vector<int> listSlots;         // -1 where the element is a constant
  std::vector<c10::IValue> listItems;  // the constant elements
  std::vector<int> listConstTensors;   // per element: index into Program::constTensors, or -1
};

struct Instruction {
  uint32_t op;
  std::vector<RecordedArg> args;
  std::vector<int> outSlots;  // one per tensor return
};

struct Program {
  std::vector<c10::OperatorHandle> handles;  // by instruction
  std::vector<std::string> names;
  std::vector<Instruction> code;
  int numInputs = 0, numSlots = 0;
  std::vector<RecordedArg> outputs;
  // The tensors the program captured (a module's weights, constants): JS can
  // change them while a replay runs (optimizer.step(), Module.to()), so each
  // replay works on its own snapshot of them (see ProgramWorker).
  std::vector<at::Tensor> constTensors;

  // Numbers the constant tensors of the recorded arguments (once, at traceEnd).
  void indexConstants() {
    std::unordered_map<const c10::TensorImpl*, int> index;
    auto number = [&](const at::Tensor& t) {
      auto [it, added] = index.emplace(t.unsafeGetTensorImpl(), static_cast<int>(constTensors.size()));
      if (added) constTensors.push_back(t);
      return it->second;
    };
    auto visit = [&](RecordedArg& a) {
      if (a.slot < 0 && !a.isTensorList && a.constant.isTensor() && a.constant.toTensor().defined()) a.constTensor = number(a.constant.toTensor());
      if (a.isTensorList) {
        a.listConstTensors.assign(a.listItems.size(), -1);
        for (size_t i = 0; i < a.listItems.size(); i++)
          if (a.listSlots[i] < 0 && a.listItems[i].isTensor() && a.listItems[i].toTensor().defined()) a.listConstTensors[i] = number(a.listItems[i].toTensor());
      }
    };
    for (auto& ins : code)
      for (auto& a : ins.args) visit(a);
    for (auto& a : outputs) visit(a);
  }
};

struct Trace {
  std::unordered_map<const c10::TensorImpl*, int> slotOf;
  std::vector<at::Tensor> keepAlive;  // so that no address is reused while recording
  Program program;

  int slotFor(const at::Tensor& t) {
    if (!t.defined()) return -1;
    auto it = slotOf.find(t.unsafeGetTensorImpl());
    return it == slotOf.end() ? -1 : it->second;
  }
  RecordedArg record(const c10::IValue& v) {
    RecordedArg a;
    if (v.isTensor()) {
      a.slot = slotFor(v.toTensor());
      if (a.slot < 0) a.constant = v;
    } else if (v.isTensorList() || (v.isList() && v.toListRef().size() > 0 && (v.toListRef()[0].isTensor() || v.toListRef()[0].isNone()))) {
      a.isTensorList = true;
      a.optionalList = !v.isTensorList();
      for (const auto& e : v.toListRef()) {
        int s = e.isTensor() ? slotFor(e.toTensor()) : -1;
        a.listSlots.push_back(s);
        a.listItems.push_back(s < 0 ? e : c10::IValue());
      }
    } else {
      a.constant = v;
    }
    return a;
  }
  int addSlot(const at::Tensor& t) {
    int s = program.numSlots++;
    slotOf[t.unsafeGetTensorImpl()] = s;
    keepAlive.push_back(t);
    return s;
  }
};

Instance::Instance() = default;
Instance::~Instance() { *alive = false; }

namespace {

const napi_type_tag kProgramTag = {0x3c5d7e9f1a2b4c6dULL, 0x8e0f1a2b3c4d5e6fULL};

std::shared_ptr<Program> unwrapProgram(Napi::Env env, const Napi::Value& v) {
  if (!v.IsExternal() || !v.As<Napi::External<std::shared_ptr<Program>>>().CheckTypeTag(&kProgramTag))
    throw Napi::TypeError::New(env, "expected a program handle");
  return *v.As<Napi::External<std::shared_ptr<Program>>>().Data();
}

// An argument's value in a replay: slots for computed tensors, the replay's own
// snapshots for captured tensors, the recorded constant for everything else.
c10::IValue materialize(const RecordedArg& a, const std::vector<at::Tensor>& slots, const std::vector<at::Tensor>& consts) {
  if (a.slot >= 0) return slots[a.slot];
  if (a.constTensor >= 0) return consts[a.constTensor];
  if (!a.isTensorList) return a.constant;
  auto item = [&](size_t i) -> at::Tensor {
    if (a.listSlots[i] >= 0) return slots[a.listSlots[i]];
    return a.listConstTensors[i] >= 0 ? consts[a.listConstTensors[i]] : a.listItems[i].toTensor();
  };
  if (a.optionalList) {
    c10::List<c10::optional<at::Tensor>> out;
    for (size_t i = 0; i < a.listSlots.size(); i++) {
      if (a.listSlots[i] < 0 && a.listItems[i].isNone()) out.push_back(c10::nullopt);
      else out.push_back(item(i));
    }
    return out;
  }
  c10::List<at::Tensor> out;
  for (size_t i = 0; i < a.listSlots.size(); i++) out.push_back(item(i));
  return out;
}

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
  program->indexConstants();
  auto* holder = new std::shared_ptr<Program>(program);
  auto ext = Napi::External<std::shared_ptr<Program>>::New(env, holder, [](Napi::Env, std::shared_ptr<Program>* p) { delete p; });
  ext.TypeTag(&kProgramTag);
  return ext;
}

Napi::Value ProgramInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto program = unwrapProgram(env, info[0]);
  auto& p = *program;
  auto out = Napi::Object::New(env);
  out.Set("instructions", Napi::Number::New(env, static_cast<double>(p.code.size())));
  out.Set("inputs", Napi::Number::New(env, p.numInputs));
  out.Set("outputs", Napi::Number::New(env, static_cast<double>(p.outputs.size())));
  auto names = Napi::Array::New(env, p.names.size());
  for (size_t i = 0; i < p.names.size(); i++) names.Set(i, Napi::String::New(env, p.names[i]));
  out.Set("ops", names);
  return out;
}

// programDescribe(program, named[]) -> the recorded program as data, for
// exporters (lib/io/onnx-export.ts): per instruction the operator, its schema
// argument names and values ({ slot } a computed tensor, { const } a captured
// tensor, { value } anything else, { list } a tensor list) and output slots;
// the captured tensors as new handles, each with the index of the `named`
// tensor (a module's parameters and buffers) it is, or -1.
Napi::Value ProgramDescribe(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "programDescribe", [&]() -> Napi::Value {
    auto program = unwrapProgram(env, info[0]);
    const auto& p = *program;
    std::vector<at::Tensor> named;
    auto namedArr = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < namedArr.Length(); i++) named.push_back(unwrapTensor(env, namedArr.Get(i), "named"));
    auto describeArg = [&](const RecordedArg& a, const std::string& name) {
      auto o = Napi::Object::New(env);
      o.Set("name", name);
      if (a.slot >= 0) o.Set("slot", a.slot);
      else if (a.constTensor >= 0) o.Set("const", a.constTensor);
      else if (a.isTensorList) {
        auto items = Napi::Array::New(env, a.listSlots.size());
        for (size_t i = 0; i < a.listSlots.size(); i++) {
          auto e = Napi::Object::New(env);
          if (a.listSlots[i] >= 0) e.Set("slot", a.listSlots[i]);
          else if (a.listConstTensors.size() > i && a.listConstTensors[i] >= 0) e.Set("const", a.listConstTensors[i]);
          else e.Set("value", env.Null());
          items.Set(i, e);
        }
        o.Set("list", items);
      } else if (a.constant.isDevice()) {
        o.Set("value", a.constant.toDevice().str());
      } else if (a.constant.isScalar() || a.constant.isNone() || a.constant.isIntList() || a.constant.isBool() || a.constant.isString() || a.constant.isDoubleList() || a.constant.isBoolList()) {
        o.Set("value", fromIValue(env, a.constant));
      } else {
        std::ostringstream text;  // what an exporter has no use for (layouts, memory formats...): described only
        text << a.constant;
        o.Set("value", text.str());
      }
      return o;
    };
    auto code = Napi::Array::New(env, p.code.size());
    for (size_t k = 0; k < p.code.size(); k++) {
      const auto& ins = p.code[k];
      const auto& schemaArgs = p.handles[k].schema().arguments();
      auto o = Napi::Object::New(env);
      o.Set("op", p.names[k]);
      auto args = Napi::Array::New(env, ins.args.size());
      for (size_t i = 0; i < ins.args.size(); i++) args.Set(i, describeArg(ins.args[i], i < schemaArgs.size() ? schemaArgs[i].name() : ""));
      o.Set("args", args);
      auto outs = Napi::Array::New(env, ins.outSlots.size());
      for (size_t i = 0; i < ins.outSlots.size(); i++) outs.Set(i, ins.outSlots[i]);
      o.Set("outs", outs);
      code.Set(k, o);
    }
    auto outputs = Napi::Array::New(env, p.outputs.size());
    for (size_t i = 0; i < p.outputs.size(); i++) outputs.Set(i, describeArg(p.outputs[i], ""));
    auto consts = Napi::Array::New(env, p.constTensors.size());
    auto constOf = Napi::Array::New(env, p.constTensors.size());
    for (size_t i = 0; i < p.constTensors.size(); i++) {
      const auto& t = p.constTensors[i];
      consts.Set(i, wrapTensor(env, t));
      int match = -1;
      for (size_t j = 0; j < named.size() && match < 0; j++) {
        const auto& n = named[j];
        if (n.unsafeGetTensorImpl() == t.unsafeGetTensorImpl() ||
            (n.defined() && t.defined() && n.data_ptr() == t.data_ptr() && n.sizes() == t.sizes() && n.strides() == t.strides()))
          match = static_cast<int>(j);
      }
      constOf.Set(i, match);
    }
    auto out = Napi::Object::New(env);
    out.Set("inputs", p.numInputs);
    out.Set("code", code);
    out.Set("outputs", outputs);
    out.Set("consts", consts);
    out.Set("constOf", constOf);
    return out;
  });
}

// What a replay reads, owned by the replay (as sharp's pipeline owns its baton):
// JS may change a tensor while the worker thread runs (setData_, resize_,
// Module.to(), optimizer.step()). Inputs are copied (resize_ can free the
// memory an alias would share); captured weights are detached aliases, which
// keep their storage alive when Module.to() swaps it, and whose version
// counters and storages are compared when the replay ends: a change means the
// replay may have read half-updated weights, and its result is refused.
struct Snapshot {
  std::vector<at::Tensor> originals;  // the tensors JS holds
  std::vector<at::Tensor> owned;      // what the worker reads
  std::vector<uint32_t> versions;     // originals' version counters at queue time

  static Snapshot inputs(const std::vector<at::Tensor>& ts) {
    Snapshot s;
    for (const auto& t : ts) s.owned.push_back(t.detach().clone());
    return s;
  }
  static Snapshot captured(const std::vector<at::Tensor>& ts) {
    Snapshot s;
    s.originals = ts;
    for (const auto& t : ts) {
      s.owned.push_back(t.detach());
      s.versions.push_back(t._version());
    }
    return s;
  }
  // Empty when nothing changed, else a description of the first change.
  std::string changed() const {
    for (size_t i = 0; i < originals.size(); i++) {
      const auto& t = originals[i];
      // Opaque tensors (oneDNN's blocked-format weights: aten::to_mkldnn) have no storage to
      // compare (storage() throws); their version counter still tells an in-place change.
      bool sameStorage = t.defined() && (!t.has_storage() ? !owned[i].has_storage()
                                                          : t.storage().unsafeGetStorageImpl() == owned[i].storage().unsafeGetStorageImpl());
      if (!sameStorage || t._version() != versions[i])
        return "captured tensor " + std::to_string(i) + " (shape " + c10::str(t.sizes()) + ") was " + (sameStorage ? "modified in place" : "replaced");
    }
    return "";
  }
};

// libgomp spins between parallel regions only while its threads, summed over every OS
// thread's pool (the main thread's, each libuv worker's), fit in the cores; past that it
// throttles: idle team threads sleep at once and every region pays a futex wake-up.
// Replays on whichever libuv worker came next each grew a pool of their own: measured, a
// batch-1 descriptor at 2 threads took 6-8 ms (CPU/wall 1.0) instead of 2.5 ms on one
// thread. So every replay of more than one thread runs on this one thread (in turn; each
// such replay uses the cores anyway), and 1-thread replays, which make no pool, stay on
// the libuv workers, side by side.
class WideReplayThread {
 public:
  static WideReplayThread& get() {
    static WideReplayThread* t = new WideReplayThread();  // never destroyed: the thread lives as long as the process
    return *t;
  }
  // Runs job on the wide thread and waits for it (the calling libuv worker is blocked meanwhile).
  void run(const std::function<void()>& job) {
    std::promise<void> done;
    auto finished = done.get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back([&] {
        job();
        done.set_value();
      });
    }
    ready_.notify_one();
    finished.wait();
  }

 private:
  WideReplayThread() {
    std::thread([this] {
      for (;;) {
        std::function<void()> job;
        {
          std::unique_lock<std::mutex> lock(mutex_);
          ready_.wait(lock, [this] { return !jobs_.empty(); });
          job = std::move(jobs_.front());
          jobs_.pop_front();
        }
        job();  // never throws: the replay catches its own errors
      }
    }).detach();
  }
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
};

// Replays a program on a libuv worker thread, without autograd.
class ProgramWorker : public Napi::AsyncWorker {
 public:
  ProgramWorker(Napi::Env env, std::shared_ptr<Program> program, const std::vector<at::Tensor>& inputs, int threads)
      : Napi::AsyncWorker(env),
        threads_(threads),
        deferred_(Napi::Promise::Deferred::New(env)),
        program_(std::move(program)),
        inputs_(Snapshot::inputs(inputs)),
        consts_(Snapshot::captured(program_->constTensors)),
        alive_(instance(env).alive) {}

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    if (threads_ > 1)
      WideReplayThread::get().run([this] { compute(); });
    else
      compute();
  }

  void compute() {
    try {
      // The scheduler's choice for this replay (lib/jit.ts, lib/threads.ts), else libtorch's
      // setting. OpenMP thread counts are per calling thread, so this sets only this thread's:
      // at::get_num_threads() first runs libtorch's lazy per-thread init (which would otherwise
      // reset the count to the global one at the first parallel op), then omp_set_num_threads.
      // Not at::set_num_threads: it also re-creates libtorch's global pthreadpool on every call,
      // whose fresh thread spins for milliseconds; measured, every 2-thread replay was then
      // slower than at 1 thread (a 512x512 matmul 9.1 ms vs 1.8 ms eager at 2 threads).
      (void)at::get_num_threads();
      if (threads_ > 0) omp_set_num_threads(threads_);
      at::NoGradGuard noGrad;
      const Program& p = *program_;
      std::vector<at::Tensor> slots(p.numSlots);
      for (size_t i = 0; i < inputs_.owned.size(); i++) slots[i] = std::move(inputs_.owned[i]);
      inputs_.owned.clear();
      const auto& consts = consts_.owned;
      torch::jit::Stack stack;
      for (size_t k = 0; k < p.code.size(); k++) {
        const auto& ins = p.code[k];
        stack.clear();
        for (const auto& a : ins.args) stack.push_back(materialize(a, slots, consts));
        try {
          p.handles[k].callBoxed(stack);
        } catch (const c10::Error& e) {
          throw std::runtime_error(p.names[k] + ": " + e.what_without_backtrace());
        }
        size_t o = 0;
        for (auto& r : stack) {
          if (r.isTensor()) {
            int s = ins.outSlots[o++];
            if (s >= 0) slots[s] = r.toTensor();
          } else if (r.isTuple()) {
            for (const auto& e : r.toTupleRef().elements()) {
              int s = ins.outSlots[o++];
              if (s >= 0) slots[s] = e.toTensor();
            }
          } else if (r.isTensorList()) {
            auto list = r.toTensorList();
            if (o + list.size() > ins.outSlots.size())
              throw std::runtime_error(p.names[k] + ": returned " + std::to_string(list.size()) +
                                       " tensors, more than when the program was recorded (trace it for this input shape)");
            for (const auto& e : list) {
              int s = ins.outSlots[o++];
              if (s >= 0) slots[s] = e;
            }
          } else {
            o++;
          }
        }
      }
      for (const auto& a : p.outputs) results_.push_back(a.slot >= 0 ? slots[a.slot] : materialize(a, slots, consts).toTensor());
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }

  // Replaces node-addon-api's completion, which lets a C++ exception escape
  // (std::terminate: SIGABRT) when the environment is being torn down, e.g. a
  // worker_thread terminated with replays still queued. Then nothing can
  // receive the result: drop it without touching the environment's state.
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    if (status != napi_cancelled && alive_->load()) {
      try {
        Napi::HandleScope scope(env);
        // Any failure here rejects the promise: one left pending would hang its caller forever.
        try {
          if (error_.empty()) {
            std::string changed = consts_.changed();
            if (!changed.empty())
              error_ = "programRun: the program's weights changed while the program ran (" + changed +
                       "): its result may mix old and new values; run it again after the change";
          }
        } catch (const std::exception& e) {
          error_ = std::string("programRun: checking the program's weights failed: ") + e.what();
        }
        if (error_.empty()) {
          auto out = Napi::Array::New(env, results_.size());
          for (size_t i = 0; i < results_.size(); i++) out.Set(i, wrapTensor(env, results_[i]));
          deferred_.Resolve(out);
        } else {
          deferred_.Reject(Napi::Error::New(env, error_).Value());
        }
      } catch (...) {
        // The environment is going away (JS can no longer run there).
      }
    }
    Destroy();
  }

 private:
  int threads_;
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Program> program_;
  Snapshot inputs_, consts_;
  std::shared_ptr<std::atomic<bool>> alive_;
  std::vector<at::Tensor> results_;
  std::string error_;
};

// programRun(program, inputs[], threads = 0) -> Promise<handle[]>; threads 0: libtorch's setting
Napi::Value ProgramRun(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "programRun", [&]() -> Napi::Value {
    auto program = unwrapProgram(env, info[0]);
    auto arr = info[1].As<Napi::Array>();
    if (static_cast<int>(arr.Length()) != program->numInputs)
      throw Napi::TypeError::New(env, "programRun: expected " + std::to_string(program->numInputs) + " inputs");
    std::vector<at::Tensor> inputs;
    for (uint32_t i = 0; i < arr.Length(); i++) inputs.push_back(unwrapTensor(env, arr.Get(i), "input"));
    int threads = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 0;
    auto* worker = new ProgramWorker(env, program, inputs, threads);
    auto promise = worker->promise();
    worker->Queue();
    return promise;
  });
}

}  // namespace

void initDispatch(Napi::Env env, Napi::Object exports) {
  exports.Set("op", Napi::Function::New(env, Op));
  exports.Set("schema", Napi::Function::New(env, Schema));
  exports.Set("call", Napi::Function::New(env, Call));
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("traceBegin", Napi::Function::New(env, TraceBegin));
  exports.Set("traceEnd", Napi::Function::New(env, TraceEnd));
  exports.Set("programInfo", Napi::Function::New(env, ProgramInfo));
  exports.Set("programDescribe", Napi::Function::New(env, ProgramDescribe));
  exports.Set("programRun", Napi::Function::New(env, ProgramRun));
}

}  // namespace torchface
