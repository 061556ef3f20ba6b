/**
 * Victron value encoding (victron-dbus.md §2.4): one declared D-Bus type per path, invalid = `ai []`,
 * never NaN or Infinity.
 */
import * as dbus from 'dbus-next';

/** The D-Bus types a BusItem path may carry: double, int32, string. */
export type DbusType = 'd' | 'i' | 's';

/** A published value; `undefined` is Victron's "invalid". */
export type DbusValue = number | string | undefined;

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

/** The invalid value: a variant holding an empty int32 array (velib `VEDBUS_INVALID`). */
export function invalidVariant(): dbus.Variant {
  return new dbus.Variant('ai', []);
}

/**
 * Coerce a value to what the path's declared type can carry: non-finite numbers, out-of-range ints and values
 * of the wrong kind become invalid; 'i' rounds; 's' accepts finite numbers as their decimal text.
 */
export function normalizeValue(type: DbusType, value: unknown): DbusValue {
  switch (type) {
    case 'd':
      return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
    case 'i': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
      const n = Math.round(value);
      return n >= INT32_MIN && n <= INT32_MAX ? n : undefined;
    }
    case 's':
      if (typeof value === 'string') return value;
      return typeof value === 'number' && Number.isFinite(value) ? String(value) : undefined;
  }
}

/** Wrap a normalized value in a variant of the declared type (never inferred from the JS value). */
export function toVariant(type: DbusType, value: DbusValue): dbus.Variant {
  return value === undefined ? invalidVariant() : new dbus.Variant(type, value);
}

const INTEGER_SIGNATURES = new Set(['y', 'n', 'q', 'i', 'u', 'x', 't']);

/**
 * Read a variant the way Victron clients do: any empty array is invalid; integers (BigInt for 64-bit),
 * doubles and booleans become numbers; strings stay strings. Anything else becomes its JSON text.
 */
export function fromVariant(v: unknown): DbusValue {
  if (!(v instanceof dbus.Variant)) return undefined;
  const { signature, value } = v as dbus.Variant<unknown>;
  if (Array.isArray(value) && value.length === 0) return undefined;
  if (signature === 'd') return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  if (INTEGER_SIGNATURES.has(signature)) return Number(value); // BigInt for x/t
  if (signature === 'b') return value ? 1 : 0;
  if (signature === 's' || signature === 'o' || signature === 'g') return String(value);
  return JSON.stringify(value, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x));
}

/** Whether a written variant fits a path of type `type` (SetValue type check; any integer fits 'd'). */
export function acceptsVariant(type: DbusType, v: dbus.Variant): boolean {
  const { signature, value } = v as dbus.Variant<unknown>;
  switch (type) {
    case 's':
      return signature === 's';
    case 'd':
      return signature === 'd' || INTEGER_SIGNATURES.has(signature);
    case 'i':
      return INTEGER_SIGNATURES.has(signature) || (signature === 'd' && Number.isInteger(value));
  }
}

/** True for a variant holding an empty array of any element type ("set invalid"). */
export function isInvalidVariant(v: dbus.Variant): boolean {
  const { signature, value } = v as dbus.Variant<unknown>;
  return signature.startsWith('a') && Array.isArray(value) && value.length === 0;
}
