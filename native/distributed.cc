// Distributed data parallelism over libtorch's own c10d: a rendezvous store
// (TCPStore or FileStore), a ProcessGroupGloo (CPU) or ProcessGroupNCCL (CUDA
// builds that have NCCL), collectives waited for on a worker thread, and
// c10d::Reducer, the engine under PyTorch's DistributedDataParallel (gradient
// buckets all-reduced from autograd hooks while backward still runs).
//
// Thin like the rest of the addon: lib/distributed/ validates options, reads
// torchrun's environment variables, names dead ranks and holds the policy.
#include "common.h"

#include <chrono>
#include <mutex>
#include <thread>

#if defined(TORCHFACE_WITH_GLOO)
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#if defined(TORCHFACE_WITH_NCCL)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

namespace torchface {

#if defined(TORCHFACE_WITH_GLOO)
namespace {

// One process group with its store. The heartbeat thread writes
// "torchface/heartbeat/<rank>" (milliseconds since the epoch) through its own
// store client every heartbeatMs, so that after a failed collective the
// survivors can say which rank stopped answering.
struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  int rank = 0, worldSize = 1;
  std::string backend;
  std::thread heartbeat;
  std::shared_ptr<std::atomic<bool>> stop = std::make_shared<std::atomic<bool>>(false);

  void destroy() {
    stop->store(true);
    if (heartbeat.joinable()) heartbeat.join();
    pg.reset();
    store.reset();
  }
  ~Group() { destroy(); }
};

const napi_type_tag kGroupTypeTag = {0x7466646973740001ULL, 0x67726f7570000001ULL};
const napi_type_tag kReducerTypeTag = {0x7466646973740002ULL, 0x7265647563657201ULL};

std::shared_ptr<Group> unwrapGroup(Napi::Env env, const Napi::Value& v) {
  if (!v.IsExternal() || !v.As<Napi::External<std::shared_ptr<Group>>>().CheckTypeTag(&kGroupTypeTag))
    throw Napi::TypeError::New(env, "expected a process group handle");
  auto g = *v.As<Napi::External<std::shared_ptr<Group>>>().Data();
  if (!g->pg) throw Napi::Error::New(env, "the process group was destroyed");
  return g;
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::vector<uint8_t> bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

struct StoreSpec {
  std::string kind, host, path;
  int port = 0;
  bool isServer = false;
  std::chrono::milliseconds timeout{30000};
};

// The store fields of a DistStoreSpec (binding.d.ts).
StoreSpec storeSpec(const Napi::Object& o) {
  StoreSpec spec;
  spec.kind = o.Get("store").ToString();
  spec.host = o.Get("host").ToString();
  spec.path = o.Get("path").ToString();
  spec.port = static_cast<int>(toInt64(o.Get("port"), "port"));
  spec.isServer = o.Get("isServer").ToBoolean();
  spec.timeout = std::chrono::milliseconds(toInt64(o.Get("timeoutMs"), "timeoutMs"));
  return spec;
}

c10::intrusive_ptr<c10d::Store> openStore(const StoreSpec& s, int worldSize, bool client) {
  if (s.kind == "file") return c10::make_intrusive<c10d::FileStore>(s.path, worldSize);
  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(s.port);
  o.isServer = s.isServer && !client;
  o.numWorkers = client ? c10::nullopt : c10::optional<std::size_t>(worldSize);
  o.waitWorkers = false;  // lib/ waits for the ranks itself, to name the missing ones
  o.timeout = s.timeout;
  return c10::make_intrusive<c10d::TCPStore>(s.host, o);
}

bool isLoopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1"; }

// Runs fn on a libuv worker thread; resolves with what `done` makes of it on
// the JS thread. Drops the result when the environment is gone (as ProgramWorker).
class Task : public Napi::AsyncWorker {
 public:
  using Done = std::function<Napi::Value(Napi::Env)>;
  using Decorate = std::function<void(Napi::Env, Napi::Error&)>;
  Task(Napi::Env env, std::function<void()> fn, Done done, Decorate decorate = nullptr)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fn_(std::move(fn)), done_(std::move(done)),
        decorate_(std::move(decorate)), alive_(instance(env).alive) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      fn_();
    } catch (const c10::Error& e) {
      error_ = e.what_without_backtrace();
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    if (status != napi_cancelled && alive_->load()) {
      try {
        Napi::HandleScope scope(env);
        if (error_.empty()) deferred_.Resolve(done_ ? done_(env) : env.Undefined());
        else {
          auto err = Napi::Error::New(env, error_);
          if (decorate_) decorate_(env, err);
          deferred_.Reject(err.Value());
        }
      } catch (...) {
      }
    }
    Destroy();
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> fn_;
  Done done_;
  Decorate decorate_;
  std::shared_ptr<std::atomic<bool>> alive_;
  std::string error_;
};

// distInit({ backend, store: 'tcp'|'file', host, port, path, isServer, rank,
//            worldSize, timeoutMs, heartbeatMs }) -> Promise<group>
// Opens the store, records this rank as joined, waits until every rank has
// joined (lib/ reads the joined keys to name the missing ones on timeout),
// then builds the process group.
Napi::Value DistInit(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "initProcessGroup", [&]() -> Napi::Value {
    auto o = info[0].As<Napi::Object>();
    StoreSpec spec = storeSpec(o);
    auto group = std::make_shared<Group>();
    group->backend = o.Get("backend").ToString();
    group->rank = static_cast<int>(toInt64(o.Get("rank"), "rank"));
    group->worldSize = static_cast<int>(toInt64(o.Get("worldSize"), "worldSize"));
    int64_t heartbeatMs = toInt64(o.Get("heartbeatMs"), "heartbeatMs");
    std::string prefix = o.Get("prefix").ToString();
#if !defined(TORCHFACE_WITH_NCCL)
    if (group->backend == "nccl")
      throw Napi::Error::New(env, "initProcessGroup: this build of torchface has no NCCL (it needs a CUDA libtorch with NCCL headers at build time)");
#endif
    // Ranks that had not joined when the wait timed out (set as err.missingRanks).
    auto missing = std::make_shared<std::vector<int>>();
    auto work = [group, spec, heartbeatMs, prefix, missing]() {
      auto base = openStore(spec, group->worldSize, false);
      base->setTimeout(spec.timeout);
      auto store = c10::make_intrusive<c10d::PrefixStore>(prefix, base);
      store->set("torchface/joined/" + std::to_string(group->rank), bytes(std::to_string(nowMs())));
      store->set("torchface/heartbeat/" + std::to_string(group->rank), bytes(std::to_string(nowMs())));
      std::vector<std::string> keys;
      for (int r = 0; r < group->worldSize; r++) keys.push_back("torchface/joined/" + std::to_string(r));
      try {
        store->wait(keys, spec.timeout);
      } catch (...) {
        try {
          for (int r = 0; r < group->worldSize; r++)
            if (!store->check({keys[r]})) missing->push_back(r);
        } catch (...) {
        }
        // The host keeps the store up a little longer, so that ranks whose own
        // wait started later time out against it too and can say who is
        // missing, instead of finding the store gone.
        if (spec.isServer) std::this_thread::sleep_for(std::min(spec.timeout, std::chrono::milliseconds(3000)));
        throw;
      }
      if (group->backend == "nccl") {
#if defined(TORCHFACE_WITH_NCCL)
        auto opts = c10d::ProcessGroupNCCL::Options::create();
        opts->timeout = spec.timeout;
        group->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, group->rank, group->worldSize, opts);
#endif
      } else {
        auto opts = c10d::ProcessGroupGloo::Options::create(spec.timeout);
        const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
        if (ifname && *ifname) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
        else if (spec.kind == "file" || isLoopback(spec.host)) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
        else opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        group->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, group->rank, group->worldSize, opts);
      }
      group->store = store;
      // The heartbeat has its own client: a c10d store client is not thread-safe.
      if (heartbeatMs > 0) {
        auto hbBase = spec.kind == "file" ? base : openStore(spec, group->worldSize, true);
        auto hb = c10::make_intrusive<c10d::PrefixStore>(prefix, hbBase);
        auto stop = group->stop;
        std::string key = "torchface/heartbeat/" + std::to_string(group->rank);
        group->heartbeat = std::thread([hb, stop, key, heartbeatMs]() {
          while (!stop->load()) {
            try {
              hb->set(key, bytes(std::to_string(nowMs())));
            } catch (...) {
              return;  // the store is gone (its host, rank 0, ended): nothing left to tell
            }
            for (int64_t t = 0; t < heartbeatMs && !stop->load(); t += 50) std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
        });
      }
    };
    auto* task = new Task(env, work, [group](Napi::Env env) -> Napi::Value {
      auto holder = new std::shared_ptr<Group>(group);
      auto ext = Napi::External<std::shared_ptr<Group>>::New(env, holder, [](Napi::Env, std::shared_ptr<Group>* g) { delete g; });
      ext.TypeTag(&kGroupTypeTag);
      return ext;
    }, [missing](Napi::Env env, Napi::Error& err) {
      if (missing->empty()) return;
      auto arr = Napi::Array::New(env, missing->size());
      for (size_t i = 0; i < missing->size(); i++) arr.Set(i, Napi::Number::New(env, (*missing)[i]));
      err.Set("missingRanks", arr);
    });
    auto promise = task->promise();
    task->Queue();
    return promise;
  });
}

c10d::ReduceOp reduceOp(Napi::Env env, const std::string& op) {
  if (op == "sum") return c10d::ReduceOp::SUM;
  if (op == "product") return c10d::ReduceOp::PRODUCT;
  if (op == "max") return c10d::ReduceOp::MAX;
  if (op == "min") return c10d::ReduceOp::MIN;
  throw Napi::TypeError::New(env, "unknown reduce op " + op);
}

// Collectives work in place on the storage: a non-contiguous view's result
// would be lost in a copy (is_contiguous is no dispatcher op, so this check
// cannot live in lib/).
std::vector<at::Tensor> contiguousHandles(Napi::Env env, const Napi::Value& v) {
  auto out = tensorList(env, v, false);
  for (const auto& t : out)
    if (!t.is_contiguous())
      throw Napi::TypeError::New(env, "Expected a contiguous tensor (collectives work in place; call .contiguous() first) but received a non-contiguous view of shape " + c10::str(t.sizes()));
  return out;
}

// A promise settled when every work's future completes: the last future's
// callback (on a Gloo thread) hands over to the JS thread through a
// thread-safe function. No libuv pool thread sits blocked in wait(), which
// measured ~0.5 ms per call at 1 MB (and a long wait would hold a pool thread
// that sharp and fs need).
struct Completion {
  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction tsfn;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;  // keep the works (and their tensors) alive
  std::atomic<int> remaining{0};
  std::mutex mutex;
  std::string error;
  explicit Completion(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

Napi::Value completion(Napi::Env env, const std::vector<c10::intrusive_ptr<c10d::Work>>& works) {
  auto c = std::make_shared<Completion>(env);
  c->works = works;
  c->remaining = static_cast<int>(works.size());
  c->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "torchface.distributed", 0, 1);
  auto promise = c->deferred.Promise();
  auto alive = instance(env).alive;
  for (const auto& w : works) {
    w->getFuture()->addCallback([c, alive](c10::ivalue::Future& f) {
      if (f.hasError()) {
        std::lock_guard<std::mutex> lock(c->mutex);
        if (c->error.empty()) c->error = f.tryRetrieveErrorMessage();
      }
      if (--c->remaining != 0) return;
      auto* holder = new std::shared_ptr<Completion>(c);
      auto status = c->tsfn.BlockingCall(holder, [alive](Napi::Env env, Napi::Function, std::shared_ptr<Completion>* h) {
        auto done = std::move(*h);
        delete h;
        done->works.clear();
        if (!alive->load()) return;
        try {
          if (done->error.empty()) done->deferred.Resolve(env.Undefined());
          else done->deferred.Reject(Napi::Error::New(env, done->error).Value());
        } catch (...) {
        }
      });
      if (status != napi_ok) delete holder;  // the environment is gone
      c->tsfn.Release();
    });
  }
  return promise;
}

// distCollective(group, kind, tensors[], outputs[], op, root, wait) ->
// Promise<void> (or undefined with wait=true: waited on the calling thread,
// for the few small tensors DistributedDataParallel syncs inside forward).
// kind: allreduce (in place, op) | broadcast (in place, from root) |
// allgather (outputs[i] <- rank i's tensors[0]) | barrier.
Napi::Value DistCollective(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "distributed", [&]() -> Napi::Value {
    auto group = unwrapGroup(env, info[0]);
    std::string kind = info[1].ToString();
    auto tensors = contiguousHandles(env, info[2]);
    auto outputs = contiguousHandles(env, info[3]);
    std::string op = info[4].ToString();
    int root = static_cast<int>(toInt64(info[5], "root"));
    bool wait = info[6].ToBoolean();
    // Gloo reduces or broadcasts the tensors of one call together (they must
    // have one shape: that API is for one tensor per GPU), so each tensor gets
    // its own collective; they run concurrently and are all waited for.
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    if (kind == "allreduce") {
      c10d::AllreduceOptions o;
      o.reduceOp = reduceOp(env, op);
      for (const auto& t : tensors) {
        std::vector<at::Tensor> one{t};
        works.push_back(group->pg->allreduce(one, o));
      }
    } else if (kind == "broadcast") {
      c10d::BroadcastOptions o;
      o.rootRank = root;
      for (const auto& t : tensors) {
        std::vector<at::Tensor> one{t};
        works.push_back(group->pg->broadcast(one, o));
      }
    } else if (kind == "allgather") {
      std::vector<std::vector<at::Tensor>> outs{outputs};
      works.push_back(group->pg->allgather(outs, tensors));
    } else if (kind == "barrier") {
      works.push_back(group->pg->barrier());
    } else {
      throw Napi::TypeError::New(env, "unknown collective " + kind);
    }
    auto waitAll = [works]() {
      for (const auto& w : works) w->wait();
    };
    if (wait) {
      waitAll();
      return env.Undefined();
    }
    return completion(env, works);
  });
}

// distStoreGet(group, key) -> string | null (null when absent; never waits)
Napi::Value DistStoreGet(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "distributed store", [&]() -> Napi::Value {
    auto group = unwrapGroup(env, info[0]);
    std::string key = info[1].ToString();
    if (!group->store->check({key})) return env.Null();
    auto v = group->store->get(key);
    return Napi::String::New(env, std::string(v.begin(), v.end()));
  });
}

// distStoreSet(group, key, value)
Napi::Value DistStoreSet(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "distributed store", [&]() -> Napi::Value {
    auto group = unwrapGroup(env, info[0]);
    group->store->set(info[1].ToString(), bytes(info[2].ToString()));
    return env.Undefined();
  });
}

// distStoreProbe({ store, host, port, path, timeoutMs, prefix }, keys[]) -> Promise<(string|null)[]>
// Reads keys through a fresh client, for diagnosing an init that timed out
// (then there is no group yet).
Napi::Value DistStoreProbe(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "distributed store", [&]() -> Napi::Value {
    auto o = info[0].As<Napi::Object>();
    StoreSpec spec = storeSpec(o);
    spec.isServer = false;
    std::string prefix = o.Get("prefix").ToString();
    int worldSize = static_cast<int>(toInt64(o.Get("worldSize"), "worldSize"));
    std::vector<std::string> keys;
    auto arr = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) keys.push_back(arr.Get(i).ToString());
    auto values = std::make_shared<std::vector<c10::optional<std::string>>>();
    auto* task = new Task(
        env,
        [spec, prefix, keys, values, worldSize]() {
          auto store = c10::make_intrusive<c10d::PrefixStore>(prefix, openStore(spec, worldSize, true));
          for (const auto& k : keys) {
            if (store->check({k})) {
              auto v = store->get(k);
              values->emplace_back(std::string(v.begin(), v.end()));
            } else {
              values->emplace_back(c10::nullopt);
            }
          }
        },
        [values](Napi::Env env) -> Napi::Value {
          auto out = Napi::Array::New(env, values->size());
          for (size_t i = 0; i < values->size(); i++)
            out.Set(i, (*values)[i] ? Napi::Value(Napi::String::New(env, *(*values)[i])) : env.Null());
          return out;
        });
    auto promise = task->promise();
    task->Queue();
    return promise;
  });
}

// distDestroy(group): stops the heartbeat and releases the process group.
Napi::Value DistDestroy(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "destroyProcessGroup", [&]() -> Napi::Value {
    auto v = info[0];
    if (!v.IsExternal() || !v.As<Napi::External<std::shared_ptr<Group>>>().CheckTypeTag(&kGroupTypeTag))
      throw Napi::TypeError::New(env, "expected a process group handle");
    (*v.As<Napi::External<std::shared_ptr<Group>>>().Data())->destroy();
    return env.Undefined();
  });
}

// Reducer ---------------------------------------------------------------------
struct ReducerHolder {
  std::shared_ptr<Group> group;  // the reducer uses the group's process group
  std::shared_ptr<c10d::Reducer> reducer;
};

ReducerHolder& unwrapReducer(Napi::Env env, const Napi::Value& v) {
  if (!v.IsExternal() || !v.As<Napi::External<ReducerHolder>>().CheckTypeTag(&kReducerTypeTag))
    throw Napi::TypeError::New(env, "expected a reducer handle");
  auto& h = *v.As<Napi::External<ReducerHolder>>().Data();
  if (!h.reducer) throw Napi::Error::New(env, "the reducer was released");
  return h;
}

// distReducer(group, params[], bucketBytes, findUnusedParameters) -> reducer
// Buckets as PyTorch's DistributedDataParallel makes them: parameters in
// reverse order (gradients arrive last-layer first), a small first bucket so
// communication starts early, then buckets of bucketBytes.
Napi::Value DistReducer(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "DistributedDataParallel", [&]() -> Napi::Value {
    auto group = unwrapGroup(env, info[0]);
    auto params = tensorList(env, info[1], false);
    auto bucketBytes = static_cast<size_t>(toInt64(info[2], "bucketBytes"));
    bool findUnused = info[3].ToBoolean();
    std::vector<bool> sparse(params.size(), false);
    auto assignment = c10d::compute_bucket_assignment_by_size(params, {static_cast<size_t>(c10d::kDefaultFirstBucketBytes), bucketBytes}, sparse);
    auto indices = std::get<0>(assignment);
    auto limits = std::get<1>(assignment);
    std::reverse(indices.begin(), indices.end());
    std::reverse(limits.begin(), limits.end());
    size_t buckets = indices.size();
    auto reducer = std::make_shared<c10d::Reducer>(params, indices, limits, group->pg, sparse, static_cast<int64_t>(bucketBytes), findUnused,
                                                   /*gradient_as_bucket_view=*/false, std::unordered_map<size_t, std::string>{},
                                                   static_cast<int64_t>(c10d::kDefaultFirstBucketBytes));
    auto ext = Napi::External<ReducerHolder>::New(env, new ReducerHolder{group, reducer}, [](Napi::Env, ReducerHolder* h) { delete h; });
    ext.TypeTag(&kReducerTypeTag);
    auto out = Napi::Object::New(env);
    out.Set("handle", ext);
    out.Set("buckets", Napi::Number::New(env, static_cast<double>(buckets)));
    return out;
  });
}

// reducerPrepare(reducer, outputs[] | null): null before forward
// (prepare_for_forward), the forward's outputs after it (prepare_for_backward:
// the next backward all-reduces the gradients, bucket by bucket).
Napi::Value ReducerPrepare(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "DistributedDataParallel", [&]() -> Napi::Value {
    auto& h = unwrapReducer(env, info[0]);
    if (info[1].IsNull() || info[1].IsUndefined()) h.reducer->prepare_for_forward();
    else h.reducer->prepare_for_backward(tensorList(env, info[1], false));
    return env.Undefined();
  });
}

// reducerRelease(reducer): drops the reducer's autograd hooks now.
Napi::Value ReducerRelease(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "DistributedDataParallel", [&]() -> Napi::Value {
    auto& h = unwrapReducer(env, info[0]);
    h.reducer.reset();
    h.group.reset();
    return env.Undefined();
  });
}

}  // namespace
#endif

// distAvailable() -> { gloo, nccl }
static Napi::Value DistAvailable(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto out = Napi::Object::New(env);
#if defined(TORCHFACE_WITH_GLOO)
  out.Set("gloo", true);
#else
  out.Set("gloo", false);
#endif
#if defined(TORCHFACE_WITH_NCCL)
  out.Set("nccl", true);
#else
  out.Set("nccl", false);
#endif
  return out;
}

#if !defined(TORCHFACE_WITH_GLOO)
// Built without Gloo's headers: the entry points exist (binding.d.ts stays
// exact) and say what is missing.
static Napi::Value NoGloo(const Napi::CallbackInfo& info) {
  throw Napi::Error::New(info.Env(),
                         "torchface was built without Gloo, so distributed training is unavailable: install libgloo-dev "
                         "(Debian) and rebuild with `npm run build:native`");
}
#define DistInit NoGloo
#define DistCollective NoGloo
#define DistStoreGet NoGloo
#define DistStoreSet NoGloo
#define DistStoreProbe NoGloo
#define DistDestroy NoGloo
#define DistReducer NoGloo
#define ReducerPrepare NoGloo
#define ReducerRelease NoGloo
#endif

void initDistributed(Napi::Env env, Napi::Object exports) {
  exports.Set("distAvailable", Napi::Function::New(env, DistAvailable));
  exports.Set("distInit", Napi::Function::New(env, DistInit));
  exports.Set("distCollective", Napi::Function::New(env, DistCollective));
  exports.Set("distStoreGet", Napi::Function::New(env, DistStoreGet));
  exports.Set("distStoreSet", Napi::Function::New(env, DistStoreSet));
  exports.Set("distStoreProbe", Napi::Function::New(env, DistStoreProbe));
  exports.Set("distDestroy", Napi::Function::New(env, DistDestroy));
  exports.Set("distReducer", Napi::Function::New(env, DistReducer));
  exports.Set("reducerPrepare", Napi::Function::New(env, ReducerPrepare));
  exports.Set("reducerRelease", Napi::Function::New(env, ReducerRelease));
}

}  // namespace torchface
