/**
 * The dashboard's page logic that needs no browser: which image actions MCUboot allows, the SMP
 * log's decoding and export, errors by name with advice, the bridge's text messages; the decoders
 * fuzzed with fast-check (anything in, no throw).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeMessage } from '../src/core/message.ts';
import { DeviceError, TransportError } from '../src/core/errors.ts';
import { parseBridgeMessage } from '../src/transport/websocket.ts';
import { slotActions, type SlotView } from '../web/src/slot-actions.ts';
import { decodeLogPacket, exportLog } from '../web/src/smp-log.ts';
import { explainError } from '../web/src/error-help.ts';

const hash = (n: number): Uint8Array => new Uint8Array(32).fill(n);

describe('slot actions follow MCUboot and img_mgmt', () => {
  const running: SlotView = { slot: 0, version: '1.0.0', hash: hash(1), active: true, confirmed: true };
  const other: SlotView = { slot: 1, version: '2.0.0', hash: hash(2) };

  it('running confirmed image: no test, no confirm, no erase; the other slot: all three', () => {
    const all = [running, other];
    const a = slotActions(running, all, 3);
    assert.match(String(a.test), /runs now/);
    assert.equal(a.confirm, 'already confirmed');
    assert.match(String(a.erase), /runs now/);
    assert.deepEqual(slotActions(other, all, 3), { test: true, confirm: true, erase: true });
  });

  it('a pending image: not again, and nothing may be erased or confirmed until a reset', () => {
    const pending = { ...other, pending: true };
    const all = [running, pending];
    const a = slotActions(pending, all, 3);
    assert.match(String(a.test), /already marked/);
    assert.match(String(a.confirm), /pending/);
    assert.match(String(a.erase), /pending/);
  });

  it('running in test: confirm it; the other slot is the revert target', () => {
    const inTest = { ...running, confirmed: false };
    const all = [inTest, { ...other, version: '1.0.0' }];
    assert.equal(slotActions(inTest, all, 3).confirm, true);
    const b = slotActions(all[1]!, all, 3);
    assert.match(String(b.test), /in test/);
    assert.match(String(b.erase), /revert target/);
  });

  it('an empty slot cannot be tested, confirmed or erased; modes without revert offer no test or confirm', () => {
    const empty: SlotView = { slot: 1, version: '' };
    assert.match(String(slotActions(empty, [running, empty], 3).test), /no image/);
    assert.match(String(slotActions(empty, [running, empty], 3).erase), /empty/);
    for (const mode of [0, 4, 7]) {
      const a = slotActions(other, [running, other], mode);
      assert.match(String(a.test), /not possible in MCUboot mode/);
      assert.match(String(a.confirm), /not possible in MCUboot mode/);
    }
    assert.equal(slotActions(other, [running, other], 5).test, true); // DirectXIP with revert
  });

  it('images are independent (multi-image)', () => {
    const img1pending: SlotView = { image: 1, slot: 1, version: '3.0.0', hash: hash(3), pending: true };
    const all = [running, other, { image: 1, slot: 0, version: '1.0.0', hash: hash(4), active: true, confirmed: true }, img1pending];
    assert.equal(slotActions(other, all, 3).test, true);
  });
});

describe('SMP log', () => {
  it('decodes header fields, the command by name, the body as JSON, errors by name', () => {
    const req = encodeMessage({ op: 2, version: 1, flags: 0, group: 1, seq: 42, id: 1 }, { off: 0, data: new Uint8Array([1, 2, 3]) });
    const d = decodeLogPacket(req);
    assert.equal(d.messages.length, 1);
    const m = d.messages[0]!;
    assert.deepEqual([m.opName, m.version, m.group, m.groupName, m.id, m.seq, m.command], ['write', 1, 1, 'image', 1, 42, 'image.upload']);
    assert.deepEqual(m.body, { off: 0, data: { $hex: '010203' } });
    const rsp = encodeMessage({ op: 1, version: 1, flags: 0, group: 3, seq: 7, id: 0 }, { err: { group: 3, rc: 3 } });
    assert.equal(decodeLogPacket(rsp).messages[0]!.error, 'SETTINGS_MGMT_ERR_KEY_NOT_FOUND (err 3/3)');
    const v1 = encodeMessage({ op: 3, version: 0, flags: 0, group: 0, seq: 1, id: 5 }, { rc: 8 });
    assert.equal(decodeLogPacket(v1).messages[0]!.error, 'MGMT_ERR_ENOTSUP (rc 8)');
    const exported = JSON.parse(exportLog('udp:x', [{ n: 1, time: 0, dir: 'tx', packet: req }])) as { packets: Array<{ hex: string; messages: unknown[] }> };
    assert.equal(exported.packets[0]!.messages.length, 1);
    assert.match(exported.packets[0]!.hex, /^0a00/); // op 2, version 1 (SMP v2) in bits 3-4
  });

  it('never throws on any bytes (fuzz)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const d = decodeLogPacket(bytes);
        assert.ok(Array.isArray(d.messages));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('errors by name, with what to do', () => {
  it('names device, transport and other errors and gives advice', () => {
    const dev = explainError(new DeviceError(28, 1));
    assert.equal(dev.name, 'IMG_MGMT_ERR_IMAGE_ALREADY_PENDING');
    assert.match(dev.advice, /reset the device/);
    const t = explainError(new TransportError('TRANSPORT_TIMEOUT', 'no answer'));
    assert.equal(t.name, 'TRANSPORT_TIMEOUT');
    assert.match(t.advice, /powered/);
    assert.equal(explainError(new Error('x')).name, 'Error');
    assert.equal(explainError('text').message, 'text');
  });
});

describe('bridge text messages', () => {
  it('parses open, error and closed, and ignores anything else (fuzz)', () => {
    assert.deepEqual(parseBridgeMessage('{"type":"open","kind":"udp","mtu":1500,"frameOverhead":0,"description":"udp:x"}'), { type: 'open', kind: 'udp', mtu: 1500, frameOverhead: 0, description: 'udp:x' });
    assert.deepEqual(parseBridgeMessage('{"type":"error","code":"USAGE","message":"no"}'), { type: 'error', code: 'USAGE', message: 'no' });
    assert.equal(parseBridgeMessage('{"type":"open"}'), undefined);
    assert.equal(parseBridgeMessage('null'), undefined);
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        const m = parseBridgeMessage(text);
        assert.ok(m === undefined || ['open', 'error', 'closed'].includes(m.type));
      }),
      { numRuns: 2000 },
    );
  });
});
