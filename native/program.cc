// Replaying recorded programs on worker threads: one async native call per
// network forward. A replay owns what it reads (inputs copied, captured weights
// snapshotted and checked afterwards), chooses its OpenMP thread count, and runs
// on a libuv worker (1 thread) or the one wide-replay thread (more); exporters
// read a program as data (programDescribe).
#include "program.h"

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
const napi_type_tag kProgramTag = {0x3c5d7e9f1a2b4c6dULL, 0x8e0f1a2b3c4d5e6fULL};
}  // namespace

Napi::Value wrapProgram(Napi::Env env, std::shared_ptr<Program> program) {
  auto* holder = new std::shared_ptr<Program>(std::move(program));
  auto ext = Napi::External<std::shared_ptr<Program>>::New(env, holder, [](Napi::Env, std::shared_ptr<Program>* p) { delete p; });
  ext.TypeTag(&kProgramTag);
  return ext;
}

std::shared_ptr<Program> unwrapProgram(Napi::Env env, const Napi::Value& v) {
  if (!v.IsExternal() || !v.As<Napi::External<std::shared_ptr<Program>>>().CheckTypeTag(&kProgramTag))
    throw Napi::TypeError::New(env, "expected a program handle");
  return *v.As<Napi::External<std::shared_ptr<Program>>>().Data();
}

namespace {

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

  // A copy of each input, made on the calling (JS) thread: the replay computes on the values
  // the inputs had when it was called, whatever the caller does to them meanwhile.
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
  std::string changed(const char* what = "captured tensor") const {
    for (size_t i = 0; i < originals.size(); i++) {
      const auto& t = originals[i];
      // Opaque tensors (oneDNN's blocked-format weights: aten::to_mkldnn) have no storage to
      // compare (storage() throws); their version counter still tells an in-place change.
      bool sameStorage = t.defined() && (!t.has_storage() ? !owned[i].has_storage()
                                                          : t.storage().unsafeGetStorageImpl() == owned[i].storage().unsafeGetStorageImpl());
      if (!sameStorage || t._version() != versions[i])
        return std::string(what) + " " + std::to_string(i) + " (shape " + c10::str(t.sizes()) + ") was " + (sameStorage ? "modified in place" : "replaced");
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
  // shareInputs: read the inputs in place, as the weights are (Snapshot::captured), instead of
  // copying them on the calling thread first; a change while the replay ran is refused at the
  // end. For callers whose inputs nobody else can reach (lib/ passes its own temporaries and
  // decoded photos): copying a 1920x1280 photo for each face it aligns cost the event loop ~2 ms.
  // versions: the shared inputs' version counters when the replay was asked for (it may have
  // waited for a slot since): a change from then on is refused, not only one while it ran.
  ProgramWorker(Napi::Env env, std::shared_ptr<Program> program, const std::vector<at::Tensor>& inputs, int threads, bool shareInputs, const std::vector<uint32_t>& versions)
      : Napi::AsyncWorker(env),
        threads_(threads),
        shared_(shareInputs),
        deferred_(Napi::Promise::Deferred::New(env)),
        program_(std::move(program)),
        inputs_(shareInputs ? Snapshot::captured(inputs) : Snapshot::inputs(inputs)),
        consts_(Snapshot::captured(program_->constTensors)),
        alive_(instance(env).alive) {
    if (shared_ && versions.size() == inputs_.versions.size()) inputs_.versions = versions;
  }

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
      // Copies are handed over; shared inputs stay in the snapshot too, for the check at the end.
      for (size_t i = 0; i < inputs_.owned.size(); i++) slots[i] = shared_ ? inputs_.owned[i] : std::move(inputs_.owned[i]);
      if (!shared_) inputs_.owned.clear();
      const auto& consts = consts_.owned;
      torch::jit::Stack stack;
      for (size_t k = 0; k < p.code.size(); k++) {
        const auto& ins = p.code[k];
        stack.clear();
        for (size_t i = 0; i < ins.args.size(); i++) {
          const auto& a = ins.args[i];
          if (p.moveArg[k][i]) stack.push_back(std::move(slots[a.slot]));
          else stack.push_back(materialize(a, slots, consts));
        }
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
        for (int s : p.dropAfter[k]) slots[s].reset();
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
          if (error_.empty() && shared_) {
            std::string changed = inputs_.changed("input");
            if (!changed.empty())
              error_ = "programRun: an input changed while the program ran (" + changed + ", read in place: shared inputs): run it again after the change";
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
  bool shared_;
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Program> program_;
  Snapshot inputs_, consts_;
  std::shared_ptr<std::atomic<bool>> alive_;
  std::vector<at::Tensor> results_;
  std::string error_;
};

// tensorVersion(handle) -> its version counter (moves on every in-place change)
Napi::Value TensorVersion(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guarded(env, "tensorVersion", [&]() -> Napi::Value { return Napi::Number::New(env, unwrapTensor(env, info[0], "tensor")._version()); });
}

// programRun(program, inputs[], threads = 0, shareInputs = false, versions?) -> Promise<handle[]>; threads 0: libtorch's setting
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
    bool share = info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
    std::vector<uint32_t> versions;
    if (share && info.Length() > 4 && info[4].IsArray()) {
      auto v = info[4].As<Napi::Array>();
      for (uint32_t i = 0; i < v.Length(); i++) versions.push_back(static_cast<uint32_t>(v.Get(i).As<Napi::Number>().Int64Value()));
    }
    auto* worker = new ProgramWorker(env, program, inputs, threads, share, versions);
    auto promise = worker->promise();
    worker->Queue();
    return promise;
  });
}

}  // namespace

void initProgram(Napi::Env env, Napi::Object exports) {
  exports.Set("programInfo", Napi::Function::New(env, ProgramInfo));
  exports.Set("programDescribe", Napi::Function::New(env, ProgramDescribe));
  exports.Set("programRun", Napi::Function::New(env, ProgramRun));
  exports.Set("tensorVersion", Napi::Function::New(env, TensorVersion));
}

}  // namespace torchface
