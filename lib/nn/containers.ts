// Containers: Sequential and ModuleList, with PyTorch's names, options and default initialisations.
// Each layer is a small class: options in the constructor, reset() creates the
// parameters, forward() calls the functional op (lib/ops).
import { TorchfaceError } from '../core/errors';
import { invalid } from '../core/errors';
import { Tensor } from '../core';
import { Module } from './module';

/**
 * Runs modules in order. Intermediate tensors are disposed as soon as the next
 * module has consumed them (the input is never disposed).
 */
export class Sequential extends Module {
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => this.registerModule(String(i), m));
  }
  get length(): number {
    return this._modules.size;
  }
  at(i: number): Module {
    const m = this._modules.get(String(i < 0 ? i + this._modules.size : i));
    if (!m) invalid('index', `an index below ${this._modules.size}`, i);
    return m;
  }
  append(m: Module): this {
    this.registerModule(String(this._modules.size), m);
    return this;
  }
  forward(x: Tensor): Tensor {
    let cur = x;
    for (const m of this._modules.values()) {
      const next = m.forward(cur) as Tensor;
      // Autograd keeps its own references to what backward needs, so dropping
      // our handle on an intermediate is safe in training too.
      if (cur !== x && next !== cur) cur.dispose();
      cur = next;
    }
    return cur;
  }
}

/** Holds modules in a list (registered as "0", "1", ...). */
export class ModuleList extends Module {
  constructor(modules: Module[] = []) {
    super();
    modules.forEach((m) => this.append(m));
  }
  append(m: Module): this {
    this.registerModule(String(this._modules.size), m);
    return this;
  }
  get length(): number {
    return this._modules.size;
  }
  at(i: number): Module {
    const m = this._modules.get(String(i < 0 ? i + this._modules.size : i));
    if (!m) invalid('index', `an index below ${this._modules.size}`, i);
    return m;
  }
  [Symbol.iterator](): Iterator<Module> {
    return this._modules.values();
  }
  forward(): never {
    throw new TorchfaceError('ModuleList has no forward(); iterate over it');
  }
}
