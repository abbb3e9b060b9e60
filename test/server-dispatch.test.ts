/**
 * The dispatcher's packet rules (smp-spec.md §1.5, §1.6, §1.9, §6), byte for byte, driven through
 * SmpServer.processPacket with a capturing peer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SmpServer } from '../src/server/server.ts';
import { createOsGroup } from '../src/server/groups/os.ts';
import { defineGroup, handle } from '../src/server/registry.ts';
import { MgmtError } from '../src/server/errors.ts';
import { commands } from '../src/core/commands/index.ts';
import { fromHex, toHex, concatBytes } from '../src/core/bytes.ts';
import { decodeCbor, encodeCbor } from '../src/core/cbor.ts';
import { encodePacket, Op } from '../src/core/header.ts';
import type { SmpPeer } from '../src/transport/types.ts';

function capture(mtu = 2048): { peer: SmpPeer; sent: Uint8Array[] } {
  const sent: Uint8Array[] = [];
  return { sent, peer: { address: 'test', transport: 'test', mtu, reply: async (p) => void sent.push(p.slice()) } };
}

function server(options: Partial<ConstructorParameters<typeof SmpServer>[0]> = {}): SmpServer {
  const s = new SmpServer({ dataDir: '/nonexistent', ...options });
  s.registerGroup(createOsGroup(s));
  return s;
}

// OS info (group 0, id 7, seq 1) with the invalid format "8", as Zephyr's smp_version test sends it.
const infoReq = (version: number): Uint8Array => encodePacket({ op: Op.READ, version, flags: 0, group: 0, seq: 1, id: 7 }, encodeCbor({ format: '8' }));

test('dispatch: smp_version vectors of smp-spec §1.9, byte exact', async () => {
  const cases: Array<[number, boolean, string]> = [
    [0, true, '01 00 00 06 00 00 01 07 BF 62 72 63 03 FF'],
    [0, false, '01 00 00 06 00 00 01 07 BF 62 72 63 0C FF'],
    [1, true, '09 00 00 13 00 00 01 07 BF 63 65 72 72 BF 65 67 72 6F 75 70 00 62 72 63 02 FF FF'],
    [2, true, '09 00 00 06 00 00 01 07 BF 62 72 63 0D FF'],
  ];
  for (const [version, supportV1, expected] of cases) {
    const { peer, sent } = capture();
    await server({ supportV1, verboseErrors: false }).processPacket(infoReq(version), peer);
    assert.equal(sent.length, 1);
    assert.equal(toHex(sent[0]!, ' ').toUpperCase(), expected, `version ${version} supportV1 ${supportV1}`);
  }
});

test('dispatch: echo request of smp-spec §4.1.4 gets the mirrored header', async () => {
  const { peer, sent } = capture();
  await server({ indefiniteCbor: false }).processPacket(fromHex('0A 00 00 09 00 00 42 00 A1 61 64 65 68 65 6C 6C 6F'), peer);
  assert.equal(toHex(sent[0]!, ' ').toUpperCase(), '0B 00 00 09 00 00 42 00 A1 61 72 65 68 65 6C 6C 6F');
  const { peer: p2, sent: s2 } = capture();
  await server().processPacket(fromHex('0A 00 00 09 00 00 42 00 A1 61 64 65 68 65 6C 6C 6F'), p2);
  assert.equal(toHex(s2[0]!, ' ').toUpperCase(), '0B 00 00 0A 00 00 42 00 BF 61 72 65 68 65 6C 6C 6F FF');
});

test('dispatch: several messages in one packet are each answered; the first failure ends the packet', async () => {
  const echo = (seq: number, d: string): Uint8Array => encodePacket({ op: Op.WRITE, version: 1, flags: 0, group: 0, seq, id: 0 }, encodeCbor({ d }));
  const { peer, sent } = capture();
  await server().processPacket(concatBytes(echo(1, 'a'), echo(2, 'b'), echo(3, 'c')), peer);
  assert.deepEqual(sent.map((p) => p[6]), [1, 2, 3]);
  // unknown group in the middle: rc 8 for it, the rest discarded
  const unknown = encodePacket({ op: Op.READ, version: 1, flags: 0, group: 77, seq: 9, id: 0 }, encodeCbor({}));
  const { peer: p2, sent: s2 } = capture();
  await server().processPacket(concatBytes(echo(1, 'a'), unknown, echo(3, 'c')), p2);
  assert.deepEqual(s2.map((p) => p[6]), [1, 9]);
  assert.deepEqual(decodeCbor(s2[1]!.subarray(8)), { rc: 8 });
});

test('dispatch: truncated header → no answer; short payload → rc 9 with the header mirrored; op >= 4 → rc 8', async () => {
  const { peer, sent } = capture();
  const s = server({ indefiniteCbor: false });
  await s.processPacket(new Uint8Array(0), peer);
  await s.processPacket(fromHex('0a 00 00'), peer);
  assert.equal(sent.length, 0);
  await s.processPacket(fromHex('0a 00 00 09 00 00 05 00 a1 61'), peer);
  assert.equal(toHex(sent[0]!), '0b00000500000500' + 'a1627263' + '09');
  await s.processPacket(fromHex('0c 00 00 01 00 00 06 00 a0'), peer);
  assert.deepEqual(decodeCbor(sent[1]!.subarray(8)), { rc: 8 });
  assert.equal(sent[1]![0], 0x0b);
  // responses are ignored (this device has no SMP client)
  await s.processPacket(fromHex('0b 00 00 01 00 00 06 00 a0'), peer);
  assert.equal(sent.length, 2);
});

test('dispatch: unknown command, wrong op, bad CBOR, wrong field type, zero-length payload', async () => {
  const s = server({ verboseErrors: false });
  const ask = async (bytes: Uint8Array): Promise<unknown> => {
    const { peer, sent } = capture();
    await s.processPacket(bytes, peer);
    return decodeCbor(sent[0]!.subarray(8));
  };
  const pkt = (op: 0 | 2, id: number, payload: Uint8Array): Uint8Array => encodePacket({ op, version: 1, flags: 0, group: 0, seq: 1, id }, payload);
  assert.deepEqual(await ask(pkt(2, 42, encodeCbor({}))), { rc: 8 }); // unknown id
  assert.deepEqual(await ask(pkt(2, 1, encodeCbor({ echo: 1 }))), { rc: 8 }); // console echo: not implemented
  assert.deepEqual(await ask(pkt(0, 5, encodeCbor({}))), { rc: 8 }); // reset is write-only
  assert.deepEqual(await ask(pkt(2, 0, fromHex('a16164'))), { rc: 3 }); // truncated CBOR
  assert.deepEqual(await ask(pkt(2, 0, encodeCbor({ d: 5 }))), { rc: 3 }); // wrong type
  assert.deepEqual(await ask(pkt(2, 4, encodeCbor({ x: 'y' }))), { rc: 3 }); // missing field (datetime set: an empty string is too short)
  // Echo decodes `d` leniently (zcbor_map_decode_bulk does not fail on a missing key): the empty string.
  assert.deepEqual(await ask(pkt(2, 0, encodeCbor({ x: 'y' }))), { r: '' });
  assert.deepEqual(await ask(pkt(2, 0, fromHex('a2616461616164616261'))), { rc: 3 }); // duplicate key
  assert.deepEqual(await ask(pkt(2, 0, new Uint8Array(0))), { rc: 3 }); // zero-length payload
  assert.deepEqual(await ask(pkt(0, 6, new Uint8Array(0))), { buf_size: 2048, buf_count: 4 }); // params decodes nothing
  assert.deepEqual(await ask(pkt(2, 0, encodeCbor({ d: 'hi', extra: [1, 2] }))), { r: 'hi' }); // unknown keys skipped
});

test('dispatch: group errors become v1 rc by the group translation; extra fields stay in v2', async () => {
  const s = server();
  s.registerGroup(
    defineGroup(8, 'fs mgmt', [
      handle(commands.fs.upload, () => {
        throw MgmtError.group(8, 11, { len: 42 });
      }),
    ]),
  );
  const req = (version: number): Uint8Array => encodePacket({ op: Op.WRITE, version, flags: 0, group: 8, seq: 3, id: 0 }, encodeCbor({ name: '/a', off: 5, data: new Uint8Array(1) }));
  const { peer, sent } = capture();
  await s.processPacket(req(1), peer);
  await s.processPacket(req(0), peer);
  assert.deepEqual(decodeCbor(sent[0]!.subarray(8)), { len: 42, err: { group: 8, rc: 11 } });
  assert.deepEqual(decodeCbor(sent[1]!.subarray(8)), { rc: 1 }); // FILE_OFFSET_NOT_VALID → EUNKNOWN
  assert.equal(sent[1]![0], 0x03); // v1 write response
});

test('dispatch: hooks — command received can deny (rc 11), command done sees the result', async () => {
  const s = server();
  const done: Array<{ group: number; id: number; rc: number }> = [];
  const off = s.hooks.on('cmd_recv', ({ group, id }) => (group === 0 && id === 7 ? { rc: 11 } : undefined));
  s.hooks.on('cmd_done', (d) => void done.push({ group: d.group, id: d.id, rc: d.rc }));
  const { peer, sent } = capture();
  await s.processPacket(encodePacket({ op: Op.READ, version: 1, flags: 0, group: 0, seq: 1, id: 7 }, encodeCbor({})), peer);
  await s.processPacket(encodePacket({ op: Op.WRITE, version: 1, flags: 0, group: 0, seq: 2, id: 0 }, encodeCbor({ d: 'x' })), peer);
  assert.deepEqual(decodeCbor(sent[0]!.subarray(8)), { rc: 11 });
  assert.deepEqual(decodeCbor(sent[1]!.subarray(8)), { r: 'x' });
  assert.deepEqual(done, [{ group: 0, id: 0, rc: 0 }]);
  off();
  const { peer: p2, sent: s2 } = capture();
  await s.processPacket(encodePacket({ op: Op.READ, version: 1, flags: 0, group: 0, seq: 1, id: 7 }, encodeCbor({})), p2);
  assert.deepEqual(decodeCbor(s2[0]!.subarray(8)), { output: 'Zephyr' });
});

test('dispatch: reset decodes leniently as Zephyr: an integer force reads as not forced, a bad request still resets', async () => {
  const s = server({ verboseErrors: false });
  const seen: unknown[] = [];
  s.hooks.on('os_reset', (d) => {
    seen.push(d);
    return { rc: 10 }; // refused, so the test server is not reset
  });
  const ask = async (payload: Uint8Array): Promise<unknown> => {
    const { peer, sent } = capture();
    await s.processPacket(encodePacket({ op: Op.WRITE, version: 1, flags: 0, group: 0, seq: 1, id: 5 }, payload), peer);
    return decodeCbor(sent[0]!.subarray(8));
  };
  for (const body of [{ force: 0 }, { force: 1 }, { force: true }, { force: 'yes', boot_mode: 1 }, { boot_mode: 1, force: 0 }, {}]) assert.deepEqual(await ask(encodeCbor(body)), { rc: 10 });
  assert.deepEqual(await ask(new Uint8Array(0)), { rc: 10 });
  assert.deepEqual(seen, [
    { force: false, bootMode: undefined },
    { force: false, bootMode: undefined },
    { force: true, bootMode: undefined },
    { force: false, bootMode: undefined }, // the decode stops at the bad key, as zcbor_map_decode_bulk does
    { force: false, bootMode: 1 },
    { force: false, bootMode: undefined },
    { force: false, bootMode: undefined },
  ]);
});

test('dispatch: hook results — first error wins, later callbacks see it, abortMore stops them', async () => {
  const s = server();
  const seen: unknown[] = [];
  s.hooks.on('os_reset', () => ({ rc: 10 }));
  s.hooks.on('os_reset', (_d, c) => {
    seen.push(c.previous);
    c.abortMore = true;
    return { group: 0, rc: 1 };
  });
  s.hooks.on('os_reset', () => void seen.push('never'));
  const { peer, sent } = capture();
  await s.processPacket(encodePacket({ op: Op.WRITE, version: 1, flags: 0, group: 0, seq: 1, id: 5 }, encodeCbor({})), peer);
  assert.deepEqual(decodeCbor(sent[0]!.subarray(8)), { rc: 10 });
  assert.deepEqual(seen, [{ rc: 10 }]);
});

test('dispatch: OS info format letters in fixed order; b invalid without build date; custom hook letters', async () => {
  const s = server({ identity: { nodeName: 'node1' } });
  const info = async (format?: string): Promise<unknown> => {
    const { peer, sent } = capture();
    await s.processPacket(encodePacket({ op: Op.READ, version: 1, flags: 0, group: 0, seq: 1, id: 7 }, encodeCbor(format === undefined ? {} : { format })), peer);
    return decodeCbor(sent[0]!.subarray(8));
  };
  assert.deepEqual(await info(), { output: 'Zephyr' });
  assert.deepEqual(await info(''), { output: 'Zephyr' });
  assert.deepEqual(await info('ns'), { output: 'Zephyr node1' });
  assert.deepEqual(await info('b'), { err: { group: 0, rc: 2 } });
  assert.deepEqual(await info('a'), { output: 'Zephyr node1 v4.3.0-mcumgr-ts 4.3.0 posix node native_sim Zephyr' });
  s.hooks.on('os_info_check', ({ format, claimed }) => void (format.includes('x') && claimed.add('x')));
  s.hooks.on('os_info_append', ({ format, output }) => void (format.includes('x') && output.push('extra')));
  assert.deepEqual(await info('sx'), { output: 'Zephyr extra' });
});

test('dispatch: a response larger than the buffer answers rc 7; a handler bug answers rc 1 and is reported', async () => {
  const errors: unknown[] = [];
  const s = server({ bufSize: 64, onError: (e) => errors.push(e) });
  const { peer, sent } = capture();
  await s.processPacket(encodePacket({ op: Op.WRITE, version: 1, flags: 0, group: 0, seq: 1, id: 0 }, encodeCbor({ d: 'x'.repeat(100) })), peer);
  assert.deepEqual(decodeCbor(sent[0]!.subarray(8)), { rc: 7 });
  s.registerGroup(defineGroup(64, 'user', [[{ ...commands.os.params, group: 64 }, () => { throw new TypeError('boom'); }]]));
  await s.processPacket(encodePacket({ op: Op.READ, version: 1, flags: 0, group: 64, seq: 2, id: 6 }, encodeCbor({})), peer);
  assert.deepEqual(decodeCbor(sent[1]!.subarray(8)), { rc: 1 });
  assert.equal(errors.length, 1);
});

test('dispatch: hooks that throw are reported, answered rc 1, and never crash the server', async () => {
  const errors: unknown[] = [];
  const s = server({ onError: (e) => errors.push(e) });
  const offRecv = s.hooks.on('cmd_recv', () => {
    throw new Error('recv hook bug');
  });
  s.hooks.on('cmd_done', async () => {
    throw new Error('done hook bug');
  });
  const { peer, sent } = capture();
  await s.processPacket(encodePacket({ op: Op.WRITE, version: 1, flags: 0, group: 0, seq: 1, id: 0 }, encodeCbor({ d: 'x' })), peer);
  assert.deepEqual(decodeCbor(sent[0]!.subarray(8)), { rc: 1 });
  offRecv();
  await s.processPacket(encodePacket({ op: Op.WRITE, version: 1, flags: 0, group: 0, seq: 2, id: 0 }, encodeCbor({ d: 'y' })), peer);
  assert.deepEqual(decodeCbor(sent[1]!.subarray(8)), { r: 'y' });
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(errors.map((e) => (e as Error).message), ['recv hook bug', 'done hook bug', 'done hook bug']);
});

test('dispatch: random packets never crash the server or hang it (fast-check)', async () => {
  const s = server();
  let answered = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 9 }), fc.uint8Array({ maxLength: 40 })).map(([b0, group, id, payload]) =>
          concatBytes(Uint8Array.of(b0, 0, payload.length >> 8, payload.length & 255, 0, group, 1, id), payload),
        ),
      ),
      async (bytes) => {
        const { peer, sent } = capture();
        await s.processPacket(bytes, peer);
        answered += sent.length;
        for (const p of sent) decodeCbor(p.subarray(8));
      },
    ),
    { numRuns: 3000 },
  );
  assert.ok(answered > 100);
});
