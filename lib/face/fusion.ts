// Score fusion of several face networks (FaceModel.pretrained({ network: 'fusion' })):
// the members' networks held as one module (one state dict, hash and device), and
// the member weights a bundled calibration records.
import * as fs from 'fs';
import * as path from 'path';
import { ArgumentError } from '../core/errors';
import type { Tensor } from '../core';
import { Module } from '../nn';
import { packageRoot } from '../util/paths';

/** The networks of a fusion's members, as one module (their state dict, hash and device). */
export class MemberNets extends Module {
  constructor(nets: Module[]) {
    super();
    nets.forEach((n, i) => this.registerModule(`member${i}`, n));
  }
  forward(): Tensor {
    throw new ArgumentError('model', "one of the fusion's members (model.members[i].model) to run a network directly", 'a fusion');
  }
}

/** The member weights a fusion's calibration file records (lib/face/calibration/NAME.json `fusion.weights`), or null. */
export function bundledFusionWeights(name: string): number[] | null {
  const file = path.join(packageRoot, 'lib', 'face', 'calibration', `${name}.json`);
  if (!fs.existsSync(file)) return null;
  const w = (JSON.parse(fs.readFileSync(file, 'utf8')) as { fusion?: { weights?: unknown } }).fusion?.weights;
  if (!Array.isArray(w) || !w.every((v) => typeof v === 'number' && v > 0)) return null;
  return w as number[];
}
