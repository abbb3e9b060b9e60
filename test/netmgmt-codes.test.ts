import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { McuMgrError, ProtocolError, UsageError } from '../src/core/errors.ts';
import {
  NET_EVENTS,
  NET_MGMT_IFACE_BIT,
  buildNetMgmtCode,
  decodeEventInfo,
  describeNetEvent,
  encodeEventInfo,
  formatIpv6,
  netEventByName,
  netEventInfoKind,
  netEventName,
  netMgmtEventMatches,
  netMgmtGlobalMaskHandles,
  parseIp,
  parseNetMgmtCode,
  tryParseIpv4,
  tryParseIpv6,
  type NetEventInfo,
} from '../src/netmgmt/index.ts';
import * as E from '../src/netmgmt/events.ts';

describe('net_mgmt code layout', () => {
  it('builds the Zephyr 3.7 bases and parses them back', () => {
    assert.equal(E.NET_EVENT_IF_BASE, 0xd0010000);
    assert.equal(E.NET_EVENT_IPV6_BASE, 0xe0600000);
    assert.equal(E.NET_EVENT_IPV4_BASE, 0xe0040000);
    assert.equal(E.NET_EVENT_L4_BASE, 0xf1140000);
    assert.deepEqual(parseNetMgmtCode(0xe0040001), { event: true, iface: true, layer: 2, sync: false, layerCode: 0x004, command: 1 });
    // tests/net/mgmt: request 0x17AB1234 and event 0x97AB1234 (L2, layer code 0x7AB, cmd 0x1234)
    assert.equal(buildNetMgmtCode({ layer: 1, layerCode: 0x7ab, command: 0x1234 }), 0x17ab1234);
    assert.equal(buildNetMgmtCode({ event: true, layer: 1, layerCode: 0x7ab, command: 0x1234 }), 0x97ab1234);
    assert.equal(buildNetMgmtCode({ event: true, iface: true, sync: true, layer: 3, layerCode: 0x7ff, command: 0xffff }), 0xffffffff);
  });

  it('has every IF, IPv4, IPv6, L4 event with the values computed from the 3.7 header', () => {
    const expected: Record<string, number> = {
      NET_EVENT_IF_DOWN: 0xd0010001, NET_EVENT_IF_UP: 0xd0010002, NET_EVENT_IF_ADMIN_DOWN: 0xd0010003, NET_EVENT_IF_ADMIN_UP: 0xd0010004,
      NET_EVENT_IPV6_ADDR_ADD: 0xe0600001, NET_EVENT_IPV6_DAD_SUCCEED: 0xe060000d, NET_EVENT_IPV6_NBR_DEL: 0xe0600010,
      NET_EVENT_IPV6_ADDR_DEPRECATED: 0xe0600014, NET_EVENT_IPV6_PE_FILTER_DEL: 0xe0600018, NET_EVENT_IPV6_PMTU_CHANGED: 0xe0600019,
      NET_EVENT_IPV4_ADDR_ADD: 0xe0040001, NET_EVENT_IPV4_MCAST_LEAVE: 0xe004000b, NET_EVENT_IPV4_ACD_CONFLICT: 0xe004000e,
      NET_EVENT_IPV4_PMTU_CHANGED: 0xe004000f,
      NET_EVENT_L4_CONNECTED: 0xf1140001, NET_EVENT_L4_DISCONNECTED: 0xf1140002, NET_EVENT_L4_IPV4_CONNECTED: 0xf1140003,
      NET_EVENT_L4_IPV6_DISCONNECTED: 0xf1140006, NET_EVENT_DNS_SERVER_ADD: 0xf1140007, NET_EVENT_DNS_SERVER_DEL: 0xf1140008,
      NET_EVENT_HOSTNAME_CHANGED: 0xf1140009, NET_EVENT_CAPTURE_STARTED: 0xf114000a, NET_EVENT_CAPTURE_STOPPED: 0xf114000b,
    };
    for (const [name, value] of Object.entries(expected)) {
      assert.equal(netEventByName(name), value, name);
      assert.equal(netEventName(value), name);
    }
    // The --json example of the CLI: NET_EVENT_IPV4_ADDR_ADD is 3758358529.
    assert.equal(E.NET_EVENT_IPV4_ADDR_ADD, 3758358529);
    // Each family is numbered 1..n without holes and every code is distinct.
    const count = (base: number): number[] => Object.values(NET_EVENTS).filter((c) => (c & 0xffff0000) >>> 0 === base).map((c) => c & 0xffff).sort((a, b) => a - b);
    assert.deepEqual(count(E.NET_EVENT_IF_BASE), [1, 2, 3, 4]);
    assert.deepEqual(count(E.NET_EVENT_IPV6_BASE), Array.from({ length: 25 }, (_, i) => i + 1));
    assert.deepEqual(count(E.NET_EVENT_IPV4_BASE), Array.from({ length: 15 }, (_, i) => i + 1));
    assert.deepEqual(count(E.NET_EVENT_L4_BASE), Array.from({ length: 11 }, (_, i) => i + 1));
    assert.equal(new Set(Object.values(NET_EVENTS)).size, Object.keys(NET_EVENTS).length);
    for (const c of Object.values(NET_EVENTS)) assert.ok((c & NET_MGMT_IFACE_BIT) !== 0);
    assert.equal(describeNetEvent(0x97ab1234), '0x97AB1234');
    assert.equal(netEventByName('toString'), undefined);
  });

  it('rejects out-of-range fields and non-uint32 codes with UsageError', () => {
    assert.throws(() => buildNetMgmtCode({ layer: 4, layerCode: 0, command: 0 }), UsageError);
    assert.throws(() => buildNetMgmtCode({ layer: 1, layerCode: 0x800, command: 0 }), UsageError);
    assert.throws(() => buildNetMgmtCode({ layer: 1, layerCode: 1, command: 0x10000 }), UsageError);
    assert.throws(() => buildNetMgmtCode({ layer: 1, layerCode: 1, command: 1.5 }), UsageError);
    for (const bad of [-1, 2 ** 32, 0.5, NaN]) assert.throws(() => parseNetMgmtCode(bad), UsageError);
  });

  it('property: build(parse(code)) === code for every uint32, and parse(build(fields)) === fields', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), (code) => buildNetMgmtCode(parseNetMgmtCode(code)) === code));
    fc.assert(
      fc.property(
        fc.record({ event: fc.boolean(), iface: fc.boolean(), sync: fc.boolean(), layer: fc.integer({ min: 0, max: 3 }), layerCode: fc.integer({ min: 0, max: 0x7ff }), command: fc.integer({ min: 0, max: 0xffff }) }),
        (f) => {
          const code = buildNetMgmtCode(f);
          assert.ok(code >= 0 && code <= 0xffffffff);
          assert.deepEqual(parseNetMgmtCode(code), { ...f });
        },
      ),
    );
  });

  it('matching: layer and layer code exact, command as a mask (documented false positives)', () => {
    const ifMask = E.NET_EVENT_IF_DOWN | E.NET_EVENT_IF_UP;
    assert.ok(netMgmtEventMatches(E.NET_EVENT_IF_UP, ifMask));
    assert.ok(netMgmtEventMatches(E.NET_EVENT_IF_DOWN, ifMask));
    assert.ok(netMgmtEventMatches(E.NET_EVENT_IF_ADMIN_DOWN, ifMask), 'cmd 3 & mask 3: false positive');
    assert.ok(!netMgmtEventMatches(E.NET_EVENT_IF_ADMIN_UP, ifMask), 'cmd 4 & mask 3 = 0');
    assert.ok(netMgmtEventMatches(E.NET_EVENT_IPV6_DAD_SUCCEED, E.NET_EVENT_IPV6_ADDR_ADD), 'odd IPv6 commands all match ADDR_ADD');
    assert.ok(!netMgmtEventMatches(E.NET_EVENT_IPV4_ADDR_ADD, E.NET_EVENT_IPV6_ADDR_ADD), 'other layer code');
    assert.ok(!netMgmtEventMatches(E.NET_EVENT_L4_CONNECTED, E.NET_EVENT_IF_DOWN), 'other layer');
    assert.ok(netMgmtEventMatches(E.NET_EVENT_IF_UP, E.NET_EVENT_IF_BASE), 'command 0 in the mask matches all');
    assert.ok(netMgmtEventMatches(E.NET_EVENT_IF_UP & 0x3fffffff, E.NET_EVENT_IF_UP), 'event and iface bits are not compared');
    // prefilter: every command bit of the event must be in the global mask
    assert.ok(netMgmtGlobalMaskHandles(E.NET_EVENT_IF_ADMIN_DOWN, ifMask));
    assert.ok(!netMgmtGlobalMaskHandles(E.NET_EVENT_IF_ADMIN_UP, ifMask));
    assert.ok(!netMgmtGlobalMaskHandles(E.NET_EVENT_IF_UP, E.NET_EVENT_IF_BASE), 'a command-0 mask adds no command bits');
  });

  it('property: matching agrees with its definition on random codes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), (ev, mask) => {
        const a = parseNetMgmtCode(ev);
        const b = parseNetMgmtCode(mask);
        const expect = a.layer === b.layer && a.layerCode === b.layerCode && (a.command === 0 || b.command === 0 || (a.command & b.command) !== 0);
        return netMgmtEventMatches(ev, mask) === expect;
      }),
    );
  });
});

describe('IP text and event info structures', () => {
  it('parses and formats like node:net (differential), canonical IPv6', () => {
    assert.equal(formatIpv6(parseIp('2001:db8:0:0:1:0:0:1').bytes), '2001:db8::1:0:0:1');
    assert.equal(formatIpv6(parseIp('::ffff:192.0.2.1').bytes), '::ffff:192.0.2.1');
    assert.equal(formatIpv6(parseIp('::').bytes), '::');
    assert.equal(formatIpv6(parseIp('fe80::1').bytes), 'fe80::1');
    for (const bad of ['1.2.3', '256.1.1.1', '01.2.3.4', '1::2::3', ':::', '1:2:3:4:5:6:7:8:9', 'g::1', '', '::1.2.3']) {
      assert.throws(() => parseIp(bad), UsageError, bad);
    }
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 46 })), (text) => {
        const mine = tryParseIpv4(text) ? 4 : tryParseIpv6(text) ? 6 : 0;
        // node:net also accepts zone ids and leading zeros in some forms; compare on what we accept
        if (mine !== 0) assert.equal(isIP(text), mine, text);
        if (isIP(text) !== 0 && !text.includes('%')) assert.equal(mine, isIP(text), text);
      }),
      { numRuns: 2000 },
    );
  });

  it('encodes the C structures with their padding and decodes them back', () => {
    const route = encodeEventInfo(E.NET_EVENT_IPV6_ROUTE_ADD, { nexthop: 'fe80::1', addr: '2001:db8::', prefixLen: 64 });
    assert.equal(route.length, 36);
    assert.equal(route[32], 64);
    assert.deepEqual(decodeEventInfo(E.NET_EVENT_IPV6_ROUTE_ADD, route), { nexthop: 'fe80::1', addr: '2001:db8::', prefixLen: 64 });
    const nbr = encodeEventInfo(E.NET_EVENT_IPV6_NBR_DEL, { addr: 'fe80::2', idx: -1 });
    assert.deepEqual([...nbr.subarray(16)], [0xff, 0xff, 0xff, 0xff]);
    const prefix = encodeEventInfo(E.NET_EVENT_IPV6_PREFIX_ADD, { addr: '2001:db8::', len: 48, lifetime: 0x01020304 });
    assert.deepEqual([...prefix.subarray(16)], [48, 0, 0, 0, 4, 3, 2, 1]);
    assert.deepEqual([...encodeEventInfo(E.NET_EVENT_IPV4_ADDR_ADD, { addr: '192.0.2.1' })], [192, 0, 2, 1]);
    const host = encodeEventInfo(E.NET_EVENT_HOSTNAME_CHANGED, { hostname: 'zephyr' }, 33);
    assert.equal(host.length, 33);
    assert.deepEqual(decodeEventInfo(E.NET_EVENT_HOSTNAME_CHANGED, host), { hostname: 'zephyr' });
    assert.equal(decodeEventInfo(E.NET_EVENT_IF_UP, new Uint8Array(4)), undefined);
    assert.equal(netEventInfoKind(E.NET_EVENT_L4_CONNECTED), undefined);
    assert.throws(() => encodeEventInfo(E.NET_EVENT_IF_UP, { addr: '1.2.3.4' }), UsageError);
    assert.throws(() => encodeEventInfo(E.NET_EVENT_IPV4_ADDR_ADD, { addr: '::1' }), UsageError);
    assert.throws(() => decodeEventInfo(E.NET_EVENT_IPV6_ADDR_ADD, new Uint8Array(15)), ProtocolError);
  });

  const infoArb: fc.Arbitrary<[number, NetEventInfo]> = fc.oneof(
    fc.ipV4().map((a) => [E.NET_EVENT_IPV4_ADDR_DEL, { addr: a }] as [number, NetEventInfo]),
    fc.ipV6().map((a) => [E.NET_EVENT_IPV6_ADDR_ADD, { addr: a }] as [number, NetEventInfo]),
    fc.tuple(fc.ipV6(), fc.integer({ min: -0x80000000, max: 0x7fffffff })).map(([a, idx]) => [E.NET_EVENT_IPV6_NBR_ADD, { addr: a, idx }] as [number, NetEventInfo]),
    fc.tuple(fc.ipV6(), fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([n, a, p]) => [E.NET_EVENT_IPV6_ROUTE_DEL, { nexthop: n, addr: a, prefixLen: p }] as [number, NetEventInfo]),
    fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 }), fc.nat({ max: 0xffffffff })).map(([a, len, lifetime]) => [E.NET_EVENT_IPV6_PREFIX_DEL, { addr: a, len, lifetime }] as [number, NetEventInfo]),
    fc.tuple(fc.ipV6(), fc.boolean()).map(([p, d]) => [E.NET_EVENT_IPV6_PE_FILTER_ADD, { prefix: p, isDenyList: d }] as [number, NetEventInfo]),
    fc.tuple(fc.ipV4(), fc.nat({ max: 0xffff })).map(([d, mtu]) => [E.NET_EVENT_IPV4_PMTU_CHANGED, { dst: d, mtu }] as [number, NetEventInfo]),
    fc.tuple(fc.ipV6(), fc.nat({ max: 0xffffffff })).map(([d, mtu]) => [E.NET_EVENT_IPV6_PMTU_CHANGED, { dst: d, mtu }] as [number, NetEventInfo]),
    fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).filter((s) => !s.includes('\0')).map((h) => [E.NET_EVENT_HOSTNAME_CHANGED, { hostname: h }] as [number, NetEventInfo]),
  );

  it('property: decode(encode(info)) equals info with canonical addresses', () => {
    const canon = (v: unknown): unknown => (typeof v === 'string' && (tryParseIpv4(v) || tryParseIpv6(v)) ? formatIpv6OrV4(v) : v);
    const formatIpv6OrV4 = (v: string): string => (tryParseIpv4(v) ? v : formatIpv6(tryParseIpv6(v)!));
    fc.assert(
      fc.property(infoArb, ([event, info]) => {
        const bytes = encodeEventInfo(event, info);
        const back = decodeEventInfo(event, bytes);
        const want = Object.fromEntries(Object.entries(info).map(([k, v]) => [k, k === 'hostname' ? v : canon(v)]));
        assert.deepEqual(back, want);
      }),
    );
  });

  it('fuzz: the decoder returns a value or throws ProtocolError for any bytes and any code', () => {
    fc.assert(
      fc.property(fc.constantFrom(...Object.values(NET_EVENTS), 0, 0x97ab1234), fc.uint8Array({ maxLength: 64 }), (event, bytes) => {
        try {
          decodeEventInfo(event, bytes);
        } catch (e) {
          assert.ok(e instanceof ProtocolError && e instanceof McuMgrError, String(e));
        }
      }),
      { numRuns: 3000 },
    );
  });
});
