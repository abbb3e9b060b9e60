/**
 * Every command of the command table, on the full emulator, with fuzzed bodies: right keys with
 * values of random types, random extra keys, random ops and versions. The server must answer
 * every request (with a result or an error), never hit an internal error (`onError`), and still
 * answer echo afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createEmulator } from '../src/server/emulator.ts';
import { allCommands } from '../src/core/commands/index.ts';
import { encodeCbor, decodeCbor } from '../src/core/cbor.ts';
import { encodePacket, Op } from '../src/core/header.ts';
import { tempDir } from './helpers.ts';
import type { SmpPeer } from '../src/transport/types.ts';

const leaf = fc.oneof(
  fc.integer({ min: -5, max: 70000 }),
  fc.constantFrom(0, 1, 32, 2 ** 32, -1, Number.MAX_SAFE_INTEGER),
  fc.double(),
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', '/lfs/a.txt', '/lfs/../x', '../../etc/passwd', '/lfs//b', 'a/b/c', 'sha256', 'crc32', 'mode', '2024-02-30T10:00:00', 'kernel', 'version'),
  fc.boolean(),
  fc.constant(null),
  fc.uint8Array({ maxLength: 64 }),
);
const value = fc.oneof(leaf, fc.array(leaf, { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 6 }), leaf, { maxKeys: 3 }));

test('server fuzz: every command with random bodies is answered, with no internal error', async () => {
  const dir = await tempDir();
  const errors: unknown[] = [];
  const server = await createEmulator({ dataDir: dir.path, resetDelayMs: 1, bootTimeMs: 1, onError: (e) => errors.push(e) });
  let answered = 0;
  let requests = 0;
  const peer: SmpPeer = { address: 'fuzz', transport: 'fuzz', mtu: 4096, reply: async () => void answered++ };
  const commandKeys = allCommands.map((c) => ({ c, keys: Object.keys((c.request as { fields?: object }).fields ?? {}) }));
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: commandKeys.length - 1 }),
        fc.array(value, { maxLength: 6 }),
        fc.dictionary(fc.string({ maxLength: 5 }), value, { maxKeys: 2 }),
        fc.constantFrom(0, 1, 1, 1, 2),
        fc.boolean(),
        async (index, values, extra, version, flipOp) => {
          const { c, keys } = commandKeys[index]!;
          const body: Record<string, unknown> = { ...extra };
          keys.forEach((k, i) => {
            if (i < values.length) body[k] = values[i];
          });
          const op = flipOp ? (c.op === 'read' ? Op.WRITE : Op.READ) : c.op === 'read' ? Op.READ : Op.WRITE;
          requests++;
          await server.processPacket(encodePacket({ op, version, flags: 0, group: c.group, seq: requests & 255, id: c.id }, encodeCbor(body)), peer);
        },
      ),
      { numRuns: 1500 },
    );
    await new Promise((r) => setTimeout(r, 50)); // let scheduled resets finish
    await server.reset();
    assert.deepEqual(errors, []);
    assert.equal(answered, requests);
    const replies: Uint8Array[] = [];
    await server.processPacket(encodePacket({ op: Op.WRITE, version: 1, flags: 0, group: 0, seq: 1, id: 0 }, encodeCbor({ d: 'alive' })), { ...peer, reply: async (p) => void replies.push(p) });
    assert.deepEqual(decodeCbor(replies[0]!.subarray(8)), { r: 'alive' });
  } finally {
    await server.close();
    await dir.remove();
  }
});
