/**
 * CBOR codecs on SMP payloads: ours (src/core/cbor.ts) against cbor2 and cbor-x, operations per
 * second. The figures behind the choice recorded in README "CBOR codec choice".
 */
import { encode as cbor2Encode, decode as cbor2Decode } from 'cbor2';
import { encodeCbor, decodeCbor } from '../src/core/cbor.ts';
import { printFigure, section } from './report.ts';

interface CborX {
  encode(v: unknown): Uint8Array;
  decode(b: Uint8Array): unknown;
}

/** cbor-x is not a dependency (its optional native packages upset `npm ci`); `npm install --no-save cbor-x` to compare. */
async function loadCborX(): Promise<{ enc: CborX; dec: CborX } | undefined> {
  try {
    const name = 'cbor-x';
    const m = (await import(name)) as { Encoder: new (o: object) => CborX; Decoder: new (o: object) => CborX };
    return { enc: new m.Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false }), dec: new m.Decoder({ useRecords: false, mapsAsObjects: true }) };
  } catch {
    return undefined;
  }
}

const chunk = new Uint8Array(1900).map((_, i) => i & 255);
const payloads: Record<string, unknown> = {
  'echo request {d}': { d: 'hello' },
  'image upload chunk (1900 B)': { off: 123456, data: chunk },
  'image list response': {
    images: [
      { slot: 0, version: '1.2.3', hash: new Uint8Array(32), bootable: true, pending: false, confirmed: true, active: true, permanent: false },
      { slot: 1, version: '1.2.4', hash: new Uint8Array(32).fill(7), bootable: true, pending: true, confirmed: false, active: false, permanent: false },
    ],
    splitStatus: 0,
  },
};

function rate(f: () => void): number {
  for (let i = 0; i < 2000; i++) f();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 300) {
    for (let i = 0; i < 200; i++) f();
    n += 200;
  }
  return n / ((performance.now() - t0) / 1000);
}

export async function benchCbor(): Promise<void> {
  section('CBOR codecs on SMP payloads (ops/s; ratio = ours against the library)');
  const cborx = await loadCborX();
  if (!cborx) process.stdout.write('  (cbor-x not installed: `npm install --no-save cbor-x` adds it to the comparison)\n');
  for (const [name, value] of Object.entries(payloads)) {
    const bytes = encodeCbor(value);
    const ours = { enc: rate(() => encodeCbor(value)), dec: rate(() => decodeCbor(bytes)) };
    const c2 = { enc: rate(() => cbor2Encode(value as never)), dec: rate(() => cbor2Decode(bytes)) };
    printFigure({ name: `${name}: encode, ours vs cbor2`, value: ours.enc, unit: 'ops/s', limit: { value: c2.enc, label: 'cbor2' } });
    printFigure({ name: `${name}: decode, ours vs cbor2`, value: ours.dec, unit: 'ops/s', limit: { value: c2.dec, label: 'cbor2' } });
    if (cborx) {
      const cx = { enc: rate(() => cborx.enc.encode(value)), dec: rate(() => cborx.dec.decode(bytes)) };
      printFigure({ name: `${name}: encode, ours vs cbor-x`, value: ours.enc, unit: 'ops/s', limit: { value: cx.enc, label: 'cbor-x' } });
      printFigure({ name: `${name}: decode, ours vs cbor-x`, value: ours.dec, unit: 'ops/s', limit: { value: cx.dec, label: 'cbor-x' } });
    }
  }
}
