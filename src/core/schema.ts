/**
 * Small validators for decoded CBOR payloads. Each command in the command table describes its
 * request and response with these, so that one description gives the TypeScript types (via
 * {@link Infer}), validates untrusted input on the server (a failure answers rc 3 EINVAL, as
 * Zephyr's zcbor_bulk does) and checks device responses on the client.
 *
 * Rules follow Zephyr's request decoding: keys in any order, unknown keys kept but not checked,
 * a value of the wrong CBOR type fails, booleans are CBOR true/false only (never 0/1), unsigned
 * fields reject negatives. Validation does not copy: it returns the input object, typed.
 */
import { ProtocolError } from './errors.ts';
import { CborTag } from './cbor.ts';

export class SchemaError extends ProtocolError {
  /** Dotted path of the offending field, e.g. `images[0].hash`. */
  readonly path: string;
  constructor(path: string, message: string) {
    super('PROTOCOL_BAD_FIELD', path ? `${path}: ${message}` : message);
    this.path = path;
  }
}

export interface Schema<T> {
  /** Short type description for messages and docs: `uint`, `bstr`, `{d: tstr}`. */
  readonly describe: string;
  /** Returns the value typed as T, or throws SchemaError. */
  parse(value: unknown, path?: string): T;
}

export interface OptionalSchema<T> extends Schema<T> {
  readonly optional: true;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Uint8Array) return 'bstr';
  if (v instanceof Map) return 'map';
  if (v instanceof CborTag) return `tag ${v.tag}`;
  switch (typeof v) {
    case 'string':
      return 'tstr';
    case 'number':
      return Number.isInteger(v) ? (v < 0 ? 'nint' : 'uint') : 'float';
    case 'bigint':
      return v < 0n ? 'nint' : 'uint';
    case 'boolean':
      return 'bool';
    case 'object':
      return 'map';
    default:
      return typeof v;
  }
}

function fail(path: string, expected: string, got: unknown): never {
  throw new SchemaError(path, `expected ${expected}, got ${typeName(got)}`);
}

function simple<T>(describe: string, check: (v: unknown) => boolean): Schema<T> {
  return {
    describe,
    parse(v: unknown, path = ''): T {
      if (!check(v)) fail(path, describe, v);
      return v as T;
    },
  };
}

/** Unsigned integer up to `max` (default 2^53 - 1). */
export function uint(max = Number.MAX_SAFE_INTEGER): Schema<number> {
  return {
    describe: 'uint',
    parse(v: unknown, path = ''): number {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(path, 'uint', v);
      if (v > max) throw new SchemaError(path, `value ${v} exceeds ${max}`);
      return v;
    },
  };
}

/** Signed integer (safe range). */
export const int: () => Schema<number> = () => simple('int', (v) => typeof v === 'number' && Number.isSafeInteger(v));
export const text: () => Schema<string> = () => simple('tstr', (v) => typeof v === 'string');
export const bytes: () => Schema<Uint8Array> = () => simple('bstr', (v) => v instanceof Uint8Array);
export const bool: () => Schema<boolean> = () => simple('bool', (v) => typeof v === 'boolean');
export const unknownValue: () => Schema<unknown> = () => ({ describe: 'any', parse: (v: unknown) => v });

export function array<T>(item: Schema<T>): Schema<T[]> {
  return {
    describe: `[${item.describe}]`,
    parse(v: unknown, path = ''): T[] {
      if (!Array.isArray(v)) fail(path, `[${item.describe}]`, v);
      for (let i = 0; i < v.length; i++) item.parse(v[i], `${path}[${i}]`);
      return v as T[];
    },
  };
}

/** A map with free text keys, every value of one schema (e.g. taskstat's `tasks`). */
export function record<T>(value: Schema<T>): Schema<Record<string, T>> {
  return {
    describe: `{* : ${value.describe}}`,
    parse(v: unknown, path = ''): Record<string, T> {
      if (!isPlainMap(v)) fail(path, 'map', v);
      for (const k of Object.keys(v)) value.parse(v[k], path ? `${path}.${k}` : k);
      return v as Record<string, T>;
    },
  };
}

export function oneOf<A, B>(a: Schema<A>, b: Schema<B>): Schema<A | B> {
  return {
    describe: `${a.describe} | ${b.describe}`,
    parse(v: unknown, path = ''): A | B {
      try {
        return a.parse(v, path);
      } catch (e) {
        if (!(e instanceof SchemaError)) throw e;
        try {
          return b.parse(v, path);
        } catch {
          fail(path, `${a.describe} | ${b.describe}`, v);
        }
      }
    },
  };
}

export function optional<T>(s: Schema<T>): OptionalSchema<T> {
  return { describe: `${s.describe}?`, optional: true, parse: (v: unknown, path?: string) => s.parse(v, path) };
}

function isPlainMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Map) && !(v instanceof CborTag);
}

type Fields = Record<string, Schema<unknown>>;
type OptionalKeys<F extends Fields> = { [K in keyof F]: F[K] extends OptionalSchema<unknown> ? K : never }[keyof F];
type RequiredKeys<F extends Fields> = Exclude<keyof F, OptionalKeys<F>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ObjectOf<F extends Fields> = Simplify<{ [K in RequiredKeys<F>]: Infer<F[K]> } & { [K in OptionalKeys<F>]?: Infer<F[K]> }>;

export interface ObjectSchema<F extends Fields> extends Schema<ObjectOf<F>> {
  readonly fields: F;
}

/**
 * A CBOR map with text keys. Listed fields are checked (optional ones only when present);
 * other keys are kept unchecked (hooks and newer firmware add fields).
 */
export function object<F extends Fields>(fields: F): ObjectSchema<F> {
  const entries = Object.entries(fields);
  const describe = `{${entries.map(([k, s]) => `${k}: ${s.describe}`).join(', ')}}`;
  return {
    describe,
    fields,
    parse(v: unknown, path = ''): ObjectOf<F> {
      if (!isPlainMap(v)) fail(path, 'map', v);
      for (const [k, s] of entries) {
        const present = Object.hasOwn(v, k);
        const fieldPath = path ? `${path}.${k}` : k;
        if (!present) {
          if ((s as Partial<OptionalSchema<unknown>>).optional) continue;
          throw new SchemaError(fieldPath, `missing (${s.describe})`);
        }
        s.parse(v[k], fieldPath);
      }
      return v as ObjectOf<F>;
    },
  };
}

/** The empty request/response map `{}` (extra keys tolerated). */
export const empty: () => ObjectSchema<Record<string, never>> = () => object({});

/** A request decoded the way Zephyr's `zcbor_map_decode_bulk` does (see {@link lenient}). */
export interface LenientSchema<T> extends Schema<T> {
  readonly lenient: true;
  /** The handler ignores decode errors and goes on with what was decoded (`(void)zcbor_map_decode_bulk(...)`). */
  readonly ignoreErrors: boolean;
  readonly fields: Fields;
}

/** What a lenient decode yields: every field optional, those with defaults always there. */
export type LenientOf<F extends Fields, D> = Simplify<Partial<ObjectOf<F>> & D>;

/**
 * Lenient request decoding, for the commands Zephyr decodes with `zcbor_map_decode_bulk` and then
 * checks itself (read in zcbor_bulk.c): the body must be a map; keys are taken in the order they
 * come, unknown ones skipped; a listed key whose value has the wrong type stops the decode
 * (rc 3, or, with `ignoreErrors`, the keys decoded so far are used); a missing key is not an
 * error: it keeps its default (`defaults`, else absent). The result is a new object holding the
 * listed fields only. Field schemas give the types as in {@link object}; `optional` is not needed.
 */
export function lenient<F extends Fields, D extends Partial<ObjectOf<F>> = Record<never, never>>(fields: F, options: { defaults?: D; ignoreErrors?: boolean } = {}): LenientSchema<LenientOf<F, D>> {
  const ignoreErrors = options.ignoreErrors ?? false;
  const describe = `{${Object.entries(fields)
    .map(([k, s]) => `${k}?: ${s.describe}`)
    .join(', ')}}`;
  return {
    describe,
    lenient: true,
    ignoreErrors,
    fields,
    parse(v: unknown, path = ''): LenientOf<F, D> {
      const out: Record<string, unknown> = { ...options.defaults };
      const done = out as LenientOf<F, D>;
      if (!isPlainMap(v)) {
        if (ignoreErrors) return done;
        fail(path, 'map', v);
      }
      for (const k of Object.keys(v)) {
        const s = Object.hasOwn(fields, k) ? fields[k] : undefined;
        if (!s) continue;
        try {
          out[k] = s.parse(v[k], path ? `${path}.${k}` : k);
        } catch (e) {
          if (ignoreErrors && e instanceof SchemaError) return done;
          throw e;
        }
      }
      return done;
    },
  };
}

/** True for a schema made by {@link lenient}. */
export function isLenient(s: Schema<unknown>): s is LenientSchema<unknown> {
  return (s as Partial<LenientSchema<unknown>>).lenient === true;
}
