// Stand-in for a header Debian's libtorch-dev leaves out (the distributed
// autograd context of torch.distributed.rpc), which c10d/reducer.hpp includes
// only to name the type of a shared_ptr member. torchface never uses RPC: a
// forward declaration gives the Reducer the same layout as libtorch's own
// build (a shared_ptr's size does not depend on its element type). Found only
// when the real header is absent (see CMakeLists.txt).
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

namespace torch {
namespace distributed {
namespace autograd {
// Only the member type reducer.hpp checks with a static_assert; never built.
class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor&)>;
};
using ContextPtr = std::shared_ptr<DistAutogradContext>;
}  // namespace autograd
}  // namespace distributed
}  // namespace torch
