/**
 * The SMP-over-GATT reassembler (src/transport/ble/reassembly.ts): vectors for Zephyr's device
 * rules, and fast-check properties for both rule sets: any packets cut at any points come back
 * whole and in order; arbitrary fragments never throw, never exceed the limit, and a reset
 * always leaves a clean state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SmpReassembler } from '../src/transport/ble/reassembly.ts';
import { encodeHeader } from '../src/core/header.ts';

function packet(op: number, body: Uint8Array, seq = 0): Uint8Array {
  const p = new Uint8Array(8 + body.length);
  encodeHeader({ op: op as 0 | 1 | 2 | 3, version: 1, flags: 0, length: body.length, group: 0, seq, id: 0 }, p);
  p.set(body, 8);
  return p;
}

/** Cuts bytes into pieces of the given sizes (cycled). */
function cut(bytes: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0, i = 0; off < bytes.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    out.push(bytes.slice(off, off + n));
    off += n;
  }
  return out;
}

test('reassembly, device rules (Zephyr smp_reassembly_collect): short first piece, oversize, overflow, reset', () => {
  const r = new SmpReassembler({ rules: 'device', maxPacket: 64 });
  const p = packet(2, new Uint8Array(30).fill(7));
  assert.deepEqual(r.push(p.slice(0, 5)), [], 'a first piece shorter than the header is dropped (-ENODATA)');
  assert.equal(r.pending, 0);
  assert.deepEqual(r.push(packet(2, new Uint8Array(60))), [], 'longer than the net_buf (-ENOSR)');
  assert.deepEqual(r.push(p.slice(0, 20)), []);
  assert.equal(r.pending, 20);
  assert.deepEqual(r.push(new Uint8Array(19)), [], 'more than the packet still expects drops it (-EOVERFLOW)');
  assert.equal(r.pending, 0);
  assert.deepEqual(r.push(p.slice(0, 10)), []);
  assert.equal(r.reset(), true, 'notifications off / disconnect drop the partial packet');
  const whole = [...r.push(p.slice(0, 10)), ...r.push(p.slice(10))];
  assert.deepEqual(whole, [p]);
  assert.deepEqual(r.push(new Uint8Array([...p, 1])), [], 'a first piece longer than its packet (-EOVERFLOW)');
});

test('reassembly, client rules: lost piece, implausible header, split header, two packets in one piece, idle drop', () => {
  let now = 0;
  const r = new SmpReassembler({ rules: 'client', maxPacket: 1000, idleMs: 100, now: () => now });
  const a = packet(3, new Uint8Array(40).fill(1), 1);
  const b = packet(3, new Uint8Array(40).fill(2), 2);
  // a's middle piece lost: b's first piece (30 bytes) does not fit a's rest (28), so it starts anew.
  // (A piece that fits would be taken as a's rest: the broken packet is handed up, where the
  // client drops it by CBOR or sequence number, and the next packet is aligned again.)
  assert.deepEqual(r.push(a.slice(0, 20)), []);
  assert.deepEqual([...r.push(b.slice(0, 30)), ...r.push(b.slice(30))], [b]);
  assert.deepEqual(r.push(packet(2, new Uint8Array(4))), [], 'a request header is not a response');
  assert.deepEqual([...r.push(a.slice(0, 3)), ...r.push(a.slice(3))], [a], 'a header split over pieces');
  assert.deepEqual(r.push(new Uint8Array([...a, ...b])), [a, b]);
  r.push(a.slice(0, 20));
  now = 500;
  assert.deepEqual([...r.push(b.slice(0, 30)), ...r.push(b.slice(30))], [b], 'an idle partial packet is dropped');
});

const packetArb = fc.record({ op: fc.constantFrom(1, 3), body: fc.uint8Array({ maxLength: 300 }), seq: fc.nat(255) }).map((p) => packet(p.op, p.body, p.seq));

test('reassembly property: packets cut anywhere come back whole and in order (both rule sets)', () => {
  fc.assert(
    fc.property(fc.array(packetArb, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 10 }), fc.constantFrom('device' as const, 'client' as const), (packets, sizes, rules) => {
      const r = new SmpReassembler({ rules, maxPacket: 400 });
      const out: Uint8Array[] = [];
      for (const p of packets) {
        // Zephyr starts every packet in a new piece; its first piece holds the header (>= 8 bytes).
        const first = rules === 'device' ? Math.max(8, sizes[0]!) : sizes[0]!;
        const pieces = [p.slice(0, first), ...cut(p.slice(first), sizes)];
        for (const f of pieces) if (f.length > 0) out.push(...r.push(f));
      }
      assert.deepEqual(out, packets);
      assert.equal(r.pending, 0);
    }),
    { numRuns: 300 },
  );
});

test('reassembly property: arbitrary pieces never throw, every packet is a whole SMP packet within the limit, reset leaves nothing', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 80 }), packetArb), { maxLength: 40 }), fc.constantFrom('device' as const, 'client' as const), (pieces, rules) => {
      const r = new SmpReassembler({ rules, maxPacket: 256, idleMs: 5 });
      for (const f of pieces) {
        for (const p of r.push(f)) {
          assert.ok(p.length >= 8 && p.length <= 256);
          assert.equal(p.length, 8 + ((p[2]! << 8) | p[3]!));
        }
        assert.ok(r.pending <= 256);
      }
      r.reset();
      assert.equal(r.pending, 0);
      const s = r.stats;
      assert.ok(s.packets >= 0 && s.droppedBytes >= 0);
    }),
    { numRuns: 500 },
  );
});
