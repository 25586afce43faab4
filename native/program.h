// Recorded programs: a sequence of operator calls traced from TypeScript
// (dispatch.cc records them, Trace) and replayed on a worker thread (program.cc).
#pragma once

#include "common.h"

namespace torchface {

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

  // By instruction: the slots read or written for the last time there (never the program's
  // outputs), dropped right after it, so that a replay frees each intermediate tensor as soon as
  // nothing needs it and the next allocation reuses that memory while it is still in cache,
  // rather than holding every activation until the end.
  std::vector<std::vector<int>> dropAfter;
  // By instruction and argument: a tensor argument read for the last time there, once, is moved
  // from its slot onto the call's stack instead of copied, so the operator holds the only
  // reference and may reuse its memory (conv2d_onednn writes into a residual it alone holds).
  std::vector<std::vector<bool>> moveArg;

  // Once, at traceEnd: numbers the constant tensors of the recorded arguments, and plans lifetimes.
  void finish() {
    indexConstants();
    std::vector<int> last(numSlots, -1);
    auto use = [&](const RecordedArg& a, int k) {
      if (a.slot >= 0) last[a.slot] = k;
      for (int s : a.listSlots)
        if (s >= 0) last[s] = k;
    };
    for (size_t k = 0; k < code.size(); k++) {
      for (const auto& a : code[k].args) use(a, static_cast<int>(k));
      for (int s : code[k].outSlots)
        if (s >= 0) last[s] = static_cast<int>(k);
    }
    for (const auto& a : outputs) use(a, static_cast<int>(code.size()));  // past the end: kept
    dropAfter.assign(code.size(), {});
    for (int s = 0; s < numSlots; s++)
      if (last[s] >= 0 && last[s] < static_cast<int>(code.size())) dropAfter[last[s]].push_back(s);
    moveArg.assign(code.size(), {});
    for (size_t k = 0; k < code.size(); k++) {
      std::unordered_map<int, int> reads;
      for (const auto& a : code[k].args) {
        if (a.slot >= 0) reads[a.slot]++;
        for (int s : a.listSlots)
          if (s >= 0) reads[s]++;
      }
      for (const auto& a : code[k].args) moveArg[k].push_back(a.slot >= 0 && last[a.slot] == static_cast<int>(k) && reads[a.slot] == 1);
    }
  }

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

// A program as a JS value (an External with a type tag), and back.
Napi::Value wrapProgram(Napi::Env env, std::shared_ptr<Program> program);
std::shared_ptr<Program> unwrapProgram(Napi::Env env, const Napi::Value& v);

}  // namespace torchface
