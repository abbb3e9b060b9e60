/**
 * The on-disk format of the emulated device's settings storage: an append-only log of batches.
 *
 * ```
 * file   = magic "MCUSET01" (8 bytes), batch*
 * batch  = u32le payloadLength, payload, u32le crc32(payloadLength bytes ‖ payload)
 * payload= entry+
 * entry  = u8 op (1 set, 2 delete), u16le nameLength, name (UTF-8),
 *          [op = set: u32le valueLength, value]
 * ```
 *
 * A batch is the unit of atomicity: one `settings save` (or one delete) appends one batch and
 * fsyncs. A crash (kill -9, power loss) can leave at most one torn batch at the end, which fails
 * its length or CRC check; the decoder stops there and reports how many bytes are valid, so the
 * store truncates the tail and the state is exactly that of the last completed save. Compaction
 * rewrites the whole log through an atomic rename.
 *
 * The decoder never throws: any input yields the batches of its valid prefix.
 */
import { crc32 } from '../core/crc32.ts';

export const SETTINGS_LOG_MAGIC = new Uint8Array([0x4d, 0x43, 0x55, 0x53, 0x45, 0x54, 0x30, 0x31]); // "MCUSET01"

export type SettingsLogEntry = { op: 'set'; name: string; value: Uint8Array } | { op: 'delete'; name: string };

const OP_SET = 1;
const OP_DELETE = 2;
/** Upper bound for one batch's payload: far above any real save, low enough to reject garbage lengths. */
export const MAX_BATCH_PAYLOAD = 16 * 1024 * 1024;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Encodes one batch (length, payload, CRC). Throws RangeError for names over 65535 bytes. */
export function encodeSettingsBatch(entries: readonly SettingsLogEntry[]): Uint8Array {
  if (entries.length === 0) throw new RangeError('a settings batch needs at least one entry');
  const parts: Uint8Array[] = [];
  let size = 0;
  for (const e of entries) {
    const name = utf8.encode(e.name);
    if (name.length > 0xffff) throw new RangeError(`setting name of ${name.length} bytes is too long`);
    const head = new Uint8Array(3);
    head[0] = e.op === 'set' ? OP_SET : OP_DELETE;
    new DataView(head.buffer).setUint16(1, name.length, true);
    parts.push(head, name);
    size += 3 + name.length;
    if (e.op === 'set') {
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, e.value.length, true);
      parts.push(len, e.value);
      size += 4 + e.value.length;
    }
  }
  if (size > MAX_BATCH_PAYLOAD) throw new RangeError(`settings batch of ${size} bytes exceeds ${MAX_BATCH_PAYLOAD}`);
  const out = new Uint8Array(4 + size + 4);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, size, true);
  let o = 4;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  dv.setUint32(o, crc32(out.subarray(0, o)), true);
  return out;
}

export interface DecodedSettingsLog {
  /** Whether the file starts with the magic (an empty file, or a torn magic, counts as empty). */
  readonly formatOk: boolean;
  readonly batches: SettingsLogEntry[][];
  /** Bytes of the valid prefix (magic plus whole batches); the rest is a torn or corrupt tail. */
  readonly validLength: number;
  /** Why decoding stopped before the end, if it did. */
  readonly stoppedBecause: string | undefined;
}

function parsePayload(p: Uint8Array): SettingsLogEntry[] | undefined {
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const out: SettingsLogEntry[] = [];
  let o = 0;
  while (o < p.length) {
    if (p.length - o < 3) return undefined;
    const op = dv.getUint8(o);
    const nameLen = dv.getUint16(o + 1, true);
    o += 3;
    if (p.length - o < nameLen) return undefined;
    let name: string;
    try {
      name = utf8Strict.decode(p.subarray(o, o + nameLen));
    } catch {
      return undefined;
    }
    o += nameLen;
    if (op === OP_SET) {
      if (p.length - o < 4) return undefined;
      const valueLen = dv.getUint32(o, true);
      o += 4;
      if (p.length - o < valueLen) return undefined;
      out.push({ op: 'set', name, value: p.slice(o, o + valueLen) });
      o += valueLen;
    } else if (op === OP_DELETE) {
      out.push({ op: 'delete', name });
    } else return undefined;
  }
  return out.length > 0 ? out : undefined;
}

/** Decodes a whole log file. Never throws. */
export function decodeSettingsLog(bytes: Uint8Array): DecodedSettingsLog {
  const magicLen = SETTINGS_LOG_MAGIC.length;
  if (bytes.length < magicLen) {
    const prefixOfMagic = bytes.every((b, i) => b === SETTINGS_LOG_MAGIC[i]);
    return { formatOk: prefixOfMagic, batches: [], validLength: 0, stoppedBecause: bytes.length === 0 ? undefined : prefixOfMagic ? 'torn header' : 'not a settings log' };
  }
  for (let i = 0; i < magicLen; i++) {
    if (bytes[i] !== SETTINGS_LOG_MAGIC[i]) return { formatOk: false, batches: [], validLength: 0, stoppedBecause: 'not a settings log' };
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const batches: SettingsLogEntry[][] = [];
  let o = magicLen;
  let stoppedBecause: string | undefined;
  while (o < bytes.length) {
    if (bytes.length - o < 8) {
      stoppedBecause = 'torn batch header';
      break;
    }
    const len = dv.getUint32(o, true);
    if (len === 0 || len > MAX_BATCH_PAYLOAD) {
      stoppedBecause = 'bad batch length';
      break;
    }
    if (bytes.length - o - 8 < len) {
      stoppedBecause = 'torn batch';
      break;
    }
    const crcAt = o + 4 + len;
    if (dv.getUint32(crcAt, true) !== crc32(bytes.subarray(o, crcAt))) {
      stoppedBecause = 'batch CRC mismatch';
      break;
    }
    const entries = parsePayload(bytes.subarray(o + 4, crcAt));
    if (!entries) {
      stoppedBecause = 'malformed batch';
      break;
    }
    batches.push(entries);
    o = crcAt + 4;
  }
  return { formatOk: true, batches, validLength: o, stoppedBecause };
}

/** Applies batches in order: the stored settings, name → value. */
export function replaySettingsLog(batches: readonly SettingsLogEntry[][]): Map<string, Uint8Array> {
  const state = new Map<string, Uint8Array>();
  for (const b of batches) {
    for (const e of b) {
      if (e.op === 'set') state.set(e.name, e.value);
      else state.delete(e.name);
    }
  }
  return state;
}
