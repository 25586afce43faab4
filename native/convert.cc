// Conversions between JavaScript values and libtorch's: integers (never
// truncated), int lists, tensor lists, and the IValues of operator arguments and
// results, checked against the operator's schema.
#include "common.h"

namespace torchface {

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

}  // namespace

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

}  // namespace torchface
