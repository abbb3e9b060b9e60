/**
 * CBOR codecs on SMP payloads: ours (src/core/cbor.ts) against cbor2 and cbor-x, operations per
 * second. The figures behind the choice recorded in README "CBOR codec choice".
 */
import { encode as cbor2Encode, decode as cbor2Decode } from 'cbor2';
import { Encoder, Decoder } from 'cbor-x';
import { encodeCbor, decodeCbor } from '../src/core/cbor.ts';
import { printFigure, section } from './report.ts';

const cborx = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false } as never);
const cborxDecoder = new Decoder({ useRecords: false, mapsAsObjects: true } as never);

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

export function benchCbor(): void {
  section('CBOR codecs on SMP payloads (ops/s; ratio = ours against the library)');
  for (const [name, value] of Object.entries(payloads)) {
    const bytes = encodeCbor(value);
    const ours = { enc: rate(() => encodeCbor(value)), dec: rate(() => decodeCbor(bytes)) };
    const c2 = { enc: rate(() => cbor2Encode(value as never)), dec: rate(() => cbor2Decode(bytes)) };
    const cx = { enc: rate(() => cborx.encode(value)), dec: rate(() => cborxDecoder.decode(bytes)) };
    printFigure({ name: `${name}: encode, ours vs cbor2`, value: ours.enc, unit: 'ops/s', limit: { value: c2.enc, label: 'cbor2' } });
    printFigure({ name: `${name}: encode, ours vs cbor-x`, value: ours.enc, unit: 'ops/s', limit: { value: cx.enc, label: 'cbor-x' } });
    printFigure({ name: `${name}: decode, ours vs cbor2`, value: ours.dec, unit: 'ops/s', limit: { value: c2.dec, label: 'cbor2' } });
    printFigure({ name: `${name}: decode, ours vs cbor-x`, value: ours.dec, unit: 'ops/s', limit: { value: cx.dec, label: 'cbor-x' } });
  }
}
