// Error types of torchface, and the one helper that reports a bad argument by
// naming the parameter, what was expected and what was given (as sharp does).
import type { ZodError } from 'zod';

/**
 * Base class of every error torchface throws on purpose. `code` is stable and
 * machine-readable (like Node's `err.code`): branch on it, not on the message.
 */
export class TorchfaceError extends Error {
  readonly code: string = 'ERR_TORCHFACE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** libtorch rejected an operation; `op` is the ATen operator (e.g. "aten::mm"). */
export class TorchError extends TorchfaceError {
  override readonly code: string = 'ERR_TORCH';
  constructor(
    readonly op: string,
    message: string,
  ) {
    super(message.startsWith(op) ? message : `${op}: ${message}`);
  }
}

/** A caller passed an invalid argument; caught in TypeScript before reaching libtorch. */
export class ArgumentError extends TorchfaceError {
  override readonly code: string = 'ERR_ARGUMENT';
  constructor(
    readonly parameter: string,
    readonly expected: string,
    readonly actual: unknown,
  ) {
    super(`Expected ${expected} for ${parameter} but received ${describe(actual)}`);
  }
}

/** A tensor was used after dispose(). */
export class DisposedError extends TorchfaceError {
  override readonly code: string = 'ERR_DISPOSED';
}

/** Image bytes could not be decoded, or the image breaks a limit. */
export class ImageError extends TorchfaceError {
  override readonly code: string = 'ERR_IMAGE';
}

/** Face detection found no face where one was required. */
export class NoFaceError extends TorchfaceError {
  override readonly code: string = 'ERR_NO_FACE';
}

/** A model, gallery or file does not match what the caller expects. */
export class ModelMismatchError extends TorchfaceError {
  override readonly code: string = 'ERR_MODEL_MISMATCH';
}

/** A weights or model file is malformed. */
export class FileFormatError extends TorchfaceError {
  override readonly code: string = 'ERR_FILE_FORMAT';
}

/** An optional package a feature needs is not installed (`package` names it; the message says how to add it). */
export class MissingPackageError extends TorchfaceError {
  override readonly code: string = 'ERR_MISSING_PACKAGE';
  constructor(
    readonly packageName: string,
    message: string,
  ) {
    super(message);
  }
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return `'${v.length > 60 ? v.slice(0, 57) + '...' : v}' (string)`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${String(v)} (${typeof v})`;
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of length ${(v as unknown as { length?: number }).length ?? v.byteLength}`;
  if (typeof v === 'function') return 'a function';
  const name = (v as object).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}

/** Throws an ArgumentError: `invalid('kernelSize', 'a positive integer', -1)`. */
export function invalid(parameter: string, expected: string, actual: unknown): never {
  throw new ArgumentError(parameter, expected, actual);
}

/**
 * Turns a zod validation failure into an ArgumentError naming the first bad
 * option, what was expected and the value actually given (read from `input` at
 * the issue's path: zod reports only the type name it received).
 */
export function fromZod(error: ZodError, root: string, input?: unknown): ArgumentError {
  const issue = error.issues[0] as ZodError['issues'][number] & Record<string, unknown>;
  const where = [root, ...issue.path].join('.');
  let actual: unknown = input;
  for (const k of issue.path) actual = actual !== null && typeof actual === 'object' ? (actual as Record<string | number, unknown>)[k] : undefined;
  const bound = (v: unknown, inclusive: unknown, op: string) => `${op}${inclusive ? '=' : ''} ${v}`;
  let expected: string;
  switch (issue.code) {
    case 'invalid_type':
      expected = issue.received === 'undefined' ? `a value (${String(issue.expected)}; the option is required)` : `${/^[aeiou]/.test(String(issue.expected)) ? 'an' : 'a'} ${String(issue.expected)}`;
      break;
    case 'invalid_enum_value':
      expected = `one of ${(issue.options as unknown[]).map((o) => `'${String(o)}'`).join(', ')}`;
      break;
    case 'too_small':
      expected = issue.type === 'number' ? `a number ${bound(issue.minimum, issue.inclusive, '>')}` : `at least ${issue.minimum} ${issue.type === 'string' ? 'characters' : 'items'}`;
      break;
    case 'too_big':
      expected = issue.type === 'number' ? `a number ${bound(issue.maximum, issue.inclusive, '<')}` : `at most ${issue.maximum} ${issue.type === 'string' ? 'characters' : 'items'}`;
      break;
    case 'unrecognized_keys':
      return new ArgumentError(where, `only known options (unknown: ${(issue.keys as string[]).join(', ')})`, actual);
    case 'invalid_literal':
      expected = JSON.stringify(issue.expected);
      break;
    case 'invalid_union':
    case 'invalid_union_discriminator':
      expected = 'one of the accepted forms';
      break;
    case 'invalid_string':
      expected = `a string that is a valid ${typeof issue.validation === 'string' ? issue.validation : 'value'}`;
      break;
    case 'not_multiple_of':
      expected = `a multiple of ${String(issue.multipleOf)}`;
      break;
    case 'not_finite':
      expected = 'a finite number';
      break;
    default:
      // 'custom' refinements and the rest: the schema's own message says what was expected.
      expected = issue.message;
  }
  return new ArgumentError(where, expected, actual);
}

/** Validates `value` with a zod schema; on failure throws an ArgumentError naming the option. */
export function parseOptions<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: ZodError } }, value: unknown, root = 'options'): T {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw fromZod(r.error, root, value ?? {});
  return r.data;
}

/**
 * A file could not be read or written: missing, a directory or device where a
 * regular file is needed, no permission, too large, or changed while being
 * read. `path` names the file; the operating-system error (ENOENT, EISDIR,
 * EACCES, ...) is kept as `cause`, and its code as `osCode`.
 */
export class FileAccessError extends TorchfaceError {
  override readonly code: string = 'ERR_FILE_ACCESS';
  readonly osCode?: string;
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    const c = (options?.cause as { code?: unknown } | undefined)?.code;
    if (typeof c === 'string') this.osCode = c;
  }
}
