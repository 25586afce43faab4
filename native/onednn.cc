// oneDNN convolutions with their post-ops fused, as the operator
// torchface::conv2d_onednn: registered in the c10 dispatcher, so lib/ calls it,
// traces record it and replays run it like any aten operator (no JS entry of its own).
//
// Why not aten::mkldnn_convolution (libtorch 1.13): it builds the oneDNN primitive
// on every call (about 40 us of a 200 us convolution at batch 1), never picks
// Winograd, and has no fused add or relu, so a residual block pays two more passes
// over memory. Measured on the face recognition net (batch 1, 1 thread, AVX-512):
// its 29 convolutions took 6.0 ms through aten, 4.1 ms as cached direct primitives,
// 3.0 ms with Winograd F(2x2, 3x3) for the 3x3 stride-1 ones (batch 16: 66 -> 39 ms).
//
// Inference only (no autograd formula): lib/ uses it in frozen, fused networks.
// Layouts: the input is 4-D (NCHW or channels-last) or 5-D "blocked"
// [N, C / B, H, W, B], oneDNN's nChw16c / nChw8c as a plain tensor (B from
// torchface::onednn_block); the output is channels-last (layout 1) or blocked (2). Activation:
// 0 none, 1 relu, 2 relu6, applied after the residual add.
#ifdef TORCHFACE_WITH_DNNL

#include <ATen/ATen.h>
#include <torch/library.h>

#include <dnnl.hpp>
#include <omp.h>

#include <array>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace torchface {
namespace {

using Tag = dnnl::memory::format_tag;
using Md = dnnl::memory::desc;


// The channel block oneDNN's fastest CPU kernels use here: 16 floats (a 512-bit
// register) with AVX-512, else 8.
dnnl::engine& cpuEngine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

// Per calling thread: the scratchpad (grow-only, reused by every primitive this thread runs: a fresh
// allocation per call was page-faulted in again after glibc returned it) and a stream.
struct ThreadScratch {
  at::Tensor buffer;
  void* get(size_t bytes) {
    if (!buffer.defined() || static_cast<size_t>(buffer.numel()) < bytes) buffer = at::empty({static_cast<int64_t>(bytes)}, at::TensorOptions().dtype(at::kByte));
    return buffer.data_ptr();
  }
};
thread_local ThreadScratch scratchpad;
dnnl::stream& threadStream() {
  thread_local dnnl::stream stream(cpuEngine());
  return stream;
}

int64_t blockSize() {
  static const int64_t b = [] {
    auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    auto avx512 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
    return (isa & avx512) == avx512 ? 16 : 8;
  }();
  return b;
}

enum Layout : int64_t { NCHW = 0, NHWC = 1, BLOCKED = 2 };

Tag tagOf(int64_t layout) {
  if (layout == NCHW) return Tag::nchw;
  if (layout == NHWC) return Tag::nhwc;
  return blockSize() == 16 ? Tag::nChw16c : Tag::nChw8c;
}

// One convolution problem: shapes, settings, layouts, post-ops, and the OpenMP thread count of
// the calling thread. Equal problems get the same primitive. The thread count is part of it
// because oneDNN splits a primitive's work for the threads it sees at creation and asks for
// the same count at execution (replays of one program run at 1 or 2 threads).
using Problem = std::array<int64_t, 21>;

// Fused activations (the schema's int activation).
enum Activation : int64_t { NONE = 0, RELU = 1, RELU6 = 2 };

struct Primitive {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward conv;
  uint64_t id;  // never reused, unlike the address once the cache is cleared
  Md src, weights, dst, bias, scratch;
};

// Per calling thread and primitive: memory objects bound to each call's buffers with
// set_data_handle, and the argument map that holds them, made once instead of at every call
// (each dnnl::memory and map node is an allocation; a small convolution's wrapper cost about
// 2.5 us a call, a third of it malloc/free).
struct Bound {
  dnnl::memory src, dst, bias, scratch;
  std::unordered_map<int, dnnl::memory> args;
};
thread_local std::unordered_map<uint64_t, Bound> bound;

// A weight reordered into a primitive's weight format. Keyed by the weight's storage,
// held weakly: the StorageImpl cannot be freed (and its address reused by another
// weight) while the entry exists, and a freed weight's entry is dropped on the next miss.
struct PackedWeight {
  c10::weak_intrusive_ptr<c10::StorageImpl> storage;
  int64_t offset;
  uint32_t version;  // an in-place change (load_state_dict) re-packs
  Md md;
  dnnl::memory memory;
};

std::mutex cacheMutex;
std::map<Problem, std::shared_ptr<const Primitive>> primitives;
std::vector<PackedWeight> packed;

// The weight's dims as oneDNN wants them: {O, I, kh, kw}, or {groups, O/g, I/g, kh, kw} when grouped.
dnnl::memory::dims weightDims(int64_t groups, int64_t o, int64_t c, int64_t kh, int64_t kw) {
  if (groups == 1) return {o, c, kh, kw};
  return {groups, o / groups, c / groups, kh, kw};
}

// p: n, c, h, w, o, kh, kw, stride h, w, padding top, left, bottom, right, groups, src and dst layout,
// bias, activation, sum, winograd, threads.
std::shared_ptr<const Primitive> primitiveFor(const Problem& p) {
  auto found = primitives.find(p);
  if (found != primitives.end()) return found->second;
  const int64_t n = p[0], c = p[1], h = p[2], w = p[3], o = p[4], kh = p[5], kw = p[6], sh = p[7], sw = p[8];
  const int64_t pt = p[9], pl = p[10], pb = p[11], pr = p[12], groups = p[13], srcLayout = p[14], dstLayout = p[15];
  const bool hasBias = p[16], sum = p[18], winograd = p[19];
  const int64_t activation = p[17];
  int64_t oh = (h + pt + pb - kh) / sh + 1, ow = (w + pl + pr - kw) / sw + 1;
  auto f32 = dnnl::memory::data_type::f32;
  Md src({n, c, h, w}, f32, tagOf(srcLayout)), weights(weightDims(groups, o, c, kh, kw), f32, Tag::any), bias({o}, f32, Tag::a), dst({n, o, oh, ow}, f32, tagOf(dstLayout));
  dnnl::post_ops ops;
  if (sum) ops.append_sum(1.f);
  if (activation == RELU) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  if (activation == RELU6) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_clip, 0.f, 6.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  // The scratchpad is ours, per call: oneDNN's own ("library" mode) belongs to the thread that
  // created the primitive, and a Winograd primitive made while tracing on the main thread and
  // replayed on a worker found a null one there (a crash at batch 16).
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  auto make = [&](dnnl::algorithm algorithm) {
    auto d = hasBias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, algorithm, src, weights, bias, dst, {sh, sw}, {pt, pl}, {pb, pr})
                     : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, algorithm, src, weights, dst, {sh, sw}, {pt, pl}, {pb, pr});
    return dnnl::convolution_forward::primitive_desc(d, attr, cpuEngine());
  };
  dnnl::convolution_forward::primitive_desc pd;
  bool made = false;
  // Winograd F(2x2, 3x3) (batch 1) computes 2x2 output tiles from weights transformed to 4x4
  // (16/9 the bytes), F(4x4, 3x3) (larger batches) 4x4 tiles from 6x6: on maps smaller than 4x4
  // it is mostly weight traffic and padding. Measured (256 channels, 1 thread): batch 1, 1x1 map
  // 236 us vs 102 direct; batch 16, 3x3 map 1.35 ms vs 0.88 in the face net; 4x4 maps about even
  // (1.2-1.6 ms either way), 8x8 maps (128 channels) gain at every batch (batch 16: 453 vs 1074 us).
  if (winograd && oh * ow >= 16) {
    try {
      pd = make(dnnl::algorithm::convolution_winograd);
      made = true;
    } catch (const dnnl::error&) {
      // No Winograd kernel for this shape or CPU: the direct one below.
    }
  }
  if (!made) pd = make(dnnl::algorithm::convolution_direct);
  // A reference kernel is hundreds of times slower (a layout pair no optimized kernel takes):
  // refused, so a wrong layout choice in lib/ shows up as an error, not as a slow model.
  std::string impl = pd.impl_info_str();
  TORCH_CHECK(impl.rfind("ref", 0) != 0, "torchface::conv2d_onednn: oneDNN has only its reference kernel (", impl, ") for this layout pair on this CPU");
  if (primitives.size() >= 1024) primitives.clear();
  static uint64_t ids = 0;
  auto entry = std::make_shared<const Primitive>(Primitive{pd, dnnl::convolution_forward(pd), ++ids, pd.src_desc(), pd.weights_desc(), pd.dst_desc(), hasBias ? pd.bias_desc() : Md(), pd.scratchpad_desc()});
  return primitives.emplace(p, std::move(entry)).first->second;
}

dnnl::memory packedWeight(const at::Tensor& weight, const Md& md) {
  auto* storage = weight.storage().unsafeGetStorageImpl();
  uint32_t version = weight._version();
  for (auto& e : packed)
    if (e.storage._unsafe_get_target() == storage && !e.storage.expired() && e.offset == weight.storage_offset() && e.version == version && e.md == md) return e.memory;
  // A miss: drop the entries of freed weights, then reorder this one.
  packed.erase(std::remove_if(packed.begin(), packed.end(), [](const PackedWeight& e) { return e.storage.expired(); }), packed.end());
  if (packed.size() >= 4096) packed.clear();
  at::Tensor dense = weight.contiguous();
  auto f32 = dnnl::memory::data_type::f32;
  dnnl::memory plain(Md(md.dims(), f32, md.dims().size() == 5 ? Tag::goihw : Tag::oihw), cpuEngine(), dense.data_ptr());
  dnnl::memory out(md, cpuEngine());
  dnnl::stream stream(cpuEngine());
  dnnl::reorder(plain, out).execute(stream, plain, out);
  stream.wait();
  packed.push_back(PackedWeight{c10::weak_intrusive_ptr<c10::StorageImpl>(weight.storage().getWeakStorageImpl()), weight.storage_offset(), version, md, out});
  return out;
}

// padding: top, left, bottom, right (TensorFlow's SAME pads more at the bottom and right).
at::Tensor conv2dOnednn(const at::Tensor& input, const at::Tensor& weight, const c10::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding, int64_t groups, int64_t layout, int64_t activation, const c10::optional<at::Tensor>& residual, bool winograd) {
  TORCH_CHECK(input.device().is_cpu() && input.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat, "torchface::conv2d_onednn: float32 CPU tensors only");
  TORCH_CHECK(weight.dim() == 4 && stride.size() == 2 && padding.size() == 4 && groups >= 1 && (layout == NHWC || layout == BLOCKED) && activation >= NONE && activation <= RELU6, "torchface::conv2d_onednn: a 4-D weight, 2 strides, 4 paddings, groups >= 1, layout 1 or 2, activation 0-2");
  const int64_t B = blockSize();
  at::Tensor x = input;
  int64_t srcLayout, n = x.size(0), c, h, w;
  if (x.dim() == 5) {
    TORCH_CHECK(x.size(4) == B && x.is_contiguous(), "torchface::conv2d_onednn: a blocked input is a contiguous [N, C/", B, ", H, W, ", B, "] tensor");
    srcLayout = BLOCKED, c = x.size(1) * B, h = x.size(2), w = x.size(3);
  } else {
    TORCH_CHECK(x.dim() == 4, "torchface::conv2d_onednn: a 4-D or blocked 5-D input");
    // A tensor both layouts describe (1x1 maps, one channel) counts as channels-last for a
    // channels-last output: oneDNN has only its reference kernel for nchw in, nhwc out.
    if (x.is_contiguous(at::MemoryFormat::ChannelsLast) && (!x.is_contiguous() || layout == NHWC)) srcLayout = NHWC;
    else x = x.contiguous(), srcLayout = NCHW;
    c = x.size(1), h = x.size(2), w = x.size(3);
  }
  const int64_t o = weight.size(0), kh = weight.size(2), kw = weight.size(3);
  TORCH_CHECK(weight.size(1) * groups == c && o % groups == 0 && (layout != BLOCKED || o % B == 0), "torchface::conv2d_onednn: weight ", weight.sizes(), " in ", groups, " group(s) for ", c, " input channels", layout == BLOCKED ? " (and output channels a multiple of the block)" : "");
  const int64_t oh = (h + padding[0] + padding[2] - kh) / stride[0] + 1, ow = (w + padding[1] + padding[3] - kw) / stride[1] + 1;
  TORCH_CHECK(oh > 0 && ow > 0, "torchface::conv2d_onednn: the input is smaller than the kernel");
  const std::vector<int64_t> outSizes = layout == BLOCKED ? std::vector<int64_t>{n, o / B, oh, ow, B} : std::vector<int64_t>{n, o, oh, ow};
  // Checked before any path reads it (the channels-last detour below reorders it, the copy below reads its bytes).
  if (residual)
    TORCH_CHECK(residual->sizes() == at::IntArrayRef(outSizes) && residual->scalar_type() == at::kFloat && residual->device().is_cpu(), "torchface::conv2d_onednn: residual of shape ", residual->sizes(), " (", residual->scalar_type(), " on ", residual->device(), ") for a float32 CPU output of ", at::IntArrayRef(outSizes));
  // A blocked problem of one image with at most 16 output pixels (the face net's 256-channel stage
  // at batch 1: 4x4, 3x3 and 1x1 maps) runs channels-last, where oneDNN has its brgemm kernel, its
  // tensors reordered there and back (16 KB each). Measured at batch 1, 1 thread, in the face net
  // (DNNL_VERBOSE): 4x4 Winograd 135-145 us -> 112-140, 3x3 144 -> 82, 8x8 stride 2 82 -> 52,
  // 4x4 stride 2 84 -> 48, the 1x1 map 31 -> 8. From batch 2 the blocked direct kernel is as fast
  // or faster (one conv by itself: 4x4 stride 2, batch 2: 34 vs 46 us; batch 16: 264 vs 382).
  if (layout == BLOCKED && srcLayout == BLOCKED && groups == 1 && n == 1 && oh * ow <= 16) {
    auto toChannelsLast = [&](const at::Tensor& t) {
      at::Tensor d = t.permute({0, 2, 3, 1, 4}).contiguous();
      return d.view({t.size(0), t.size(2), t.size(3), t.size(1) * B}).permute({0, 3, 1, 2});
    };
    c10::optional<at::Tensor> r;
    if (residual) r = toChannelsLast(*residual);
    at::Tensor y = conv2dOnednn(toChannelsLast(x), weight, bias, stride, padding, groups, NHWC, activation, r, false);
    return y.permute({0, 2, 3, 1}).view({n, oh, ow, o / B, B}).permute({0, 3, 1, 2, 4}).contiguous();
  }
  const auto outFormat = layout == BLOCKED ? at::MemoryFormat::Contiguous : at::MemoryFormat::ChannelsLast;
  // The sum post-op adds the convolution onto what dst holds: the residual's values. A residual
  // nothing else can see (its only reference is this call's: a replay hands over a tensor at its
  // last use, Program::moveArg) is written in place: no allocation, no copy (the face net's
  // 32-channel blocks copied 157 KB per convolution at batch 1, 2.5 MB at batch 16).
  const bool donated = residual && residual->use_count() == 1 && residual->storage().use_count() == 1 && residual->storage_offset() == 0 &&
                       residual->is_contiguous(outFormat) && residual->nbytes() == residual->storage().nbytes();
  at::Tensor out = donated ? *residual : at::empty(outSizes, x.options().memory_format(outFormat));
  if (residual && !donated) {
    if (residual->is_contiguous(outFormat)) std::memcpy(out.data_ptr(), residual->data_ptr(), out.nbytes());
    else out.copy_(*residual);
  }
  const bool hasBias = bias.has_value() && bias->defined();
  at::Tensor b = hasBias ? bias->contiguous() : at::Tensor();
  Problem p{n, c, h, w, o, kh, kw, stride[0], stride[1], padding[0], padding[1], padding[2], padding[3], groups, srcLayout, layout, hasBias, activation, residual.has_value(), winograd, omp_get_max_threads()};
  std::shared_ptr<const Primitive> prim;  // held: a full cache is cleared by the next miss, maybe on another thread
  dnnl::memory weights;
  {
    std::lock_guard<std::mutex> lock(cacheMutex);
    try {
      prim = primitiveFor(p);
      weights = packedWeight(weight, prim->weights);
    } catch (const dnnl::error& e) {
      TORCH_CHECK(false, "torchface::conv2d_onednn: oneDNN: ", e.what());
    }
  }
  try {
    auto& engine = cpuEngine();
    // A cleared primitive's entry (keyed by id, never reused) is just never looked up again.
    auto found = bound.find(prim->id);
    if (found == bound.end()) {
      if (bound.size() >= 4096) bound.clear();
      Bound fresh{dnnl::memory(prim->src, engine, nullptr), dnnl::memory(prim->dst, engine, nullptr), {}, {}, {}};
      fresh.args = {{DNNL_ARG_SRC, fresh.src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, fresh.dst}};
      if (hasBias) fresh.bias = dnnl::memory(prim->bias, engine, nullptr), fresh.args.emplace(DNNL_ARG_BIAS, fresh.bias);
      if (prim->scratch.get_size()) fresh.scratch = dnnl::memory(prim->scratch, engine, nullptr), fresh.args.emplace(DNNL_ARG_SCRATCHPAD, fresh.scratch);
      found = bound.emplace(prim->id, std::move(fresh)).first;
    }
    Bound& mem = found->second;
    mem.src.set_data_handle(x.data_ptr());
    mem.dst.set_data_handle(out.data_ptr());
    if (hasBias) mem.bias.set_data_handle(b.data_ptr());
    if (mem.scratch) mem.scratch.set_data_handle(scratchpad.get(prim->scratch.get_size()));
    mem.args[DNNL_ARG_WEIGHTS] = weights;
    auto& stream = threadStream();
    prim->conv.execute(stream, mem.args);
    stream.wait();
    // Not left pointing at this call's tensors (freed after it), nor holding a packed weight the
    // cache may drop.
    mem.src.set_data_handle(nullptr), mem.dst.set_data_handle(nullptr);
    mem.args[DNNL_ARG_WEIGHTS] = dnnl::memory();
  } catch (const dnnl::error& e) {
    TORCH_CHECK(false, "torchface::conv2d_onednn: oneDNN: ", e.what());
  }
  return out;
}

// Max or average pooling of a blocked tensor (average: padding excluded, as ceil_mode=false
// PyTorch with no padding). aten's pooling on this layout (viewed as channels-last with 16
// channels) took 166 us for the face net's 3x3 max pool where oneDNN takes a tenth.
std::map<Problem, dnnl::pooling_forward> pools;

at::Tensor pool2dOnednn(const at::Tensor& input, at::IntArrayRef kernel, at::IntArrayRef stride, bool average) {
  const int64_t B = blockSize();
  TORCH_CHECK(input.device().is_cpu() && input.scalar_type() == at::kFloat && input.dim() == 5 && input.size(4) == B && input.is_contiguous(), "torchface::pool2d_onednn: a contiguous blocked float32 [N, C/", B, ", H, W, ", B, "] CPU tensor");
  TORCH_CHECK(kernel.size() == 2 && stride.size() == 2 && kernel[0] > 0 && kernel[1] > 0 && stride[0] > 0 && stride[1] > 0, "torchface::pool2d_onednn: 2 positive kernel sizes and strides");
  const int64_t n = input.size(0), c = input.size(1) * B, h = input.size(2), w = input.size(3);
  TORCH_CHECK(h >= kernel[0] && w >= kernel[1], "torchface::pool2d_onednn: the input is smaller than the kernel");
  const int64_t oh = (h - kernel[0]) / stride[0] + 1, ow = (w - kernel[1]) / stride[1] + 1;
  at::Tensor out = at::empty({n, c / B, oh, ow, B}, input.options());
  Problem p{n, c, h, w, kernel[0], kernel[1], stride[0], stride[1], average, omp_get_max_threads()};
  dnnl::pooling_forward pool;
  Md src({n, c, h, w}, dnnl::memory::data_type::f32, tagOf(BLOCKED)), dst({n, c, oh, ow}, dnnl::memory::data_type::f32, tagOf(BLOCKED));
  try {
    {
      std::lock_guard<std::mutex> lock(cacheMutex);
      auto found = pools.find(p);
      if (found == pools.end()) {
        auto algorithm = average ? dnnl::algorithm::pooling_avg_exclude_padding : dnnl::algorithm::pooling_max;
        dnnl::pooling_forward::desc d(dnnl::prop_kind::forward_inference, algorithm, src, dst, {stride[0], stride[1]}, {kernel[0], kernel[1]}, {0, 0}, {0, 0});
        dnnl::primitive_attr attr;
        attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
        dnnl::pooling_forward::primitive_desc pd(d, attr, cpuEngine());
        TORCH_CHECK(pd.scratchpad_desc().get_size() == 0, "torchface::pool2d_onednn: a pooling kernel that needs a scratchpad");
        if (pools.size() >= 256) pools.clear();
        found = pools.emplace(p, dnnl::pooling_forward(pd)).first;
      }
      pool = found->second;
    }
    auto& engine = cpuEngine();
    auto& stream = threadStream();
    pool.execute(stream, {{DNNL_ARG_SRC, dnnl::memory(src, engine, input.data_ptr())}, {DNNL_ARG_DST, dnnl::memory(dst, engine, out.data_ptr())}});
    stream.wait();
  } catch (const dnnl::error& e) {
    TORCH_CHECK(false, "torchface::pool2d_onednn: oneDNN: ", e.what());
  }
  return out;
}

int64_t onednnBlock() { return blockSize(); }

}  // namespace

TORCH_LIBRARY(torchface, m) {
  m.def("conv2d_onednn(Tensor input, Tensor weight, Tensor? bias, int[2] stride, int[4] padding, int groups, int layout, int activation=0, Tensor? residual=None, bool winograd=False) -> Tensor");
  m.def("pool2d_onednn(Tensor input, int[2] kernel_size, int[2] stride, bool average=False) -> Tensor");
  m.def("onednn_block() -> int", onednnBlock);
}

TORCH_LIBRARY_IMPL(torchface, CPU, m) {
  m.impl("conv2d_onednn", conv2dOnednn);
  m.impl("pool2d_onednn", pool2dOnednn);
}

}  // namespace torchface

#endif  // TORCHFACE_WITH_DNNL
