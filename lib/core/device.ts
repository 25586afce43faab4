// Devices: 'cpu', 'cuda' or 'cuda:N', checked against what this libtorch build and machine have.
import { ArgumentError, invalid } from './errors';
import { native } from './native';

export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export const DEVICE_RE = /^(cpu|cuda(:\d+)?)$/;
export function checkDevice(device: unknown, parameter = 'device'): Device {
  if (typeof parameter !== 'string') parameter = 'device';
  if (typeof device !== 'string' || !DEVICE_RE.test(device)) invalid(parameter, "'cpu', 'cuda' or 'cuda:N'", device);
  if (device !== 'cpu') {
    const count = native.cudaDeviceCount();
    const index = device.includes(':') ? Number(device.split(':')[1]) : 0;
    if (count === 0) throw new ArgumentError(parameter, "'cpu' (CUDA is not available: this libtorch build or machine has no GPU)", device);
    if (index >= count) invalid(parameter, `a CUDA device index below ${count}`, device);
  }
  return device as Device;
}
