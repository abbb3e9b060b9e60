import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AttrStream, rt } from 'netlink';
import { UsageError } from '../src/core/errors.ts';
import {
  ConnMgrMonitor,
  LocalAddressWatcher,
  NetIfManager,
  NetMgmt,
  NetMgmtError,
  initEventCallback,
  netEventName,
  netEventRecord,
} from '../src/netmgmt/index.ts';
import * as E from '../src/netmgmt/events.ts';
import { RtmType, applyRtnetlinkMessage, type NetlinkMonitorStats } from '../src/netmgmt/host/netlink-monitor.ts';

/** A NetMgmt in direct mode with a recorder of every core event (name iface addr). */
function setup() {
  const nm = new NetMgmt({ mode: 'direct' });
  const log: string[] = [];
  for (const base of [E.NET_EVENT_IF_BASE, E.NET_EVENT_IPV4_BASE, E.NET_EVENT_IPV6_BASE, E.NET_EVENT_L4_BASE]) {
    nm.addEventCallback(
      initEventCallback((cb, ev, iface) => {
        const info = cb.info as { addr?: string } | undefined;
        log.push([netEventName(ev), iface?.name ?? '-', info?.addr].filter((x) => x !== undefined).join(' '));
      }, base | 0xffff),
    );
  }
  return { nm, netIfs: new NetIfManager(nm), log };
}

describe('interface registry raises Zephyr events', () => {
  it('link admin/oper changes, addresses, DAD, routes, removal', () => {
    const { netIfs, log } = setup();
    netIfs.setLink({ index: 2, name: 'eth0', up: false, running: false });
    assert.deepEqual(log, []);
    netIfs.setLink({ index: 2, name: 'eth0', up: true, running: false });
    netIfs.setLink({ index: 2, name: 'eth0', up: true, running: true });
    netIfs.addAddress(2, { addr: '192.0.2.10', prefixLen: 24 });
    netIfs.addAddress(2, { addr: '192.0.2.10', prefixLen: 24 }); // unchanged: nothing
    netIfs.addAddress(2, { addr: '2001:DB8::0:1', prefixLen: 64, tentative: true });
    netIfs.addAddress(2, { addr: '2001:db8::1', prefixLen: 64 });
    netIfs.addAddress(2, { addr: '2001:db8::1', prefixLen: 64, deprecated: true });
    netIfs.addRoute({ family: 4, dst: '0.0.0.0', dstLen: 0, gateway: '192.0.2.1', index: 2 });
    netIfs.addRoute({ family: 6, dst: '2001:db8::', dstLen: 64, gateway: undefined, index: 2 });
    netIfs.removeAddress(2, '192.0.2.10');
    assert.equal(netIfs.removeAddress(2, '192.0.2.10'), false);
    netIfs.removeLink(2);
    assert.deepEqual(log, [
      'NET_EVENT_IF_ADMIN_UP eth0',
      'NET_EVENT_IF_UP eth0',
      'NET_EVENT_IPV4_ADDR_ADD eth0 192.0.2.10',
      'NET_EVENT_L4_CONNECTED eth0',
      'NET_EVENT_L4_IPV4_CONNECTED eth0',
      'NET_EVENT_IPV6_ADDR_ADD eth0 2001:db8::1',
      'NET_EVENT_IPV6_DAD_SUCCEED eth0 2001:db8::1',
      'NET_EVENT_L4_IPV6_CONNECTED eth0',
      'NET_EVENT_IPV6_ADDR_DEPRECATED eth0 2001:db8::1',
      'NET_EVENT_L4_IPV6_DISCONNECTED eth0',
      'NET_EVENT_IPV4_ROUTER_ADD eth0 192.0.2.1',
      'NET_EVENT_IPV6_ROUTE_ADD eth0 2001:db8::',
      'NET_EVENT_IPV4_ADDR_DEL eth0 192.0.2.10',
      'NET_EVENT_L4_DISCONNECTED eth0',
      'NET_EVENT_L4_IPV4_DISCONNECTED eth0',
      'NET_EVENT_IF_ADMIN_DOWN eth0',
      'NET_EVENT_IF_DOWN eth0',
      'NET_EVENT_IPV4_ROUTER_DEL eth0 192.0.2.1',
      'NET_EVENT_IPV6_ROUTE_DEL eth0 2001:db8::',
      'NET_EVENT_IPV6_ADDR_DEL eth0 2001:db8::1',
    ].filter((l) => !l.startsWith('NET_EVENT_L4')));
    assert.equal(netIfs.list().length, 0);
  });

  it('rejects bad input with UsageError and keeps its state', () => {
    const { netIfs } = setup();
    assert.throws(() => netIfs.addAddress(9, { addr: '10.0.0.1', prefixLen: 8 }), UsageError);
    netIfs.setLink({ index: 1, name: 'lo', up: true, running: true, loopback: true });
    assert.throws(() => netIfs.addAddress(1, { addr: '10.0.0.1', prefixLen: 33 }), UsageError);
    assert.throws(() => netIfs.addAddress(1, { addr: 'nope', prefixLen: 8 }), UsageError);
    assert.throws(() => netIfs.setLink({ index: 0, name: 'x', up: true, running: true }), UsageError);
    assert.deepEqual(netIfs.getByName('lo')?.addresses, []);
  });

  it('sync() raises exactly the differences between snapshots', () => {
    const { netIfs, log } = setup();
    netIfs.sync({ links: [{ index: 1, name: 'lo', up: true, running: true }], addresses: [{ index: 1, address: { addr: '127.0.0.1', prefixLen: 8, scope: 'host' } }] }, { silent: true });
    assert.deepEqual(log, []);
    netIfs.sync({
      links: [{ index: 1, name: 'lo', up: true, running: true }, { index: 3, name: 'wlan0', up: true, running: true }],
      addresses: [{ index: 3, address: { addr: '10.1.2.3', prefixLen: 24 } }],
    });
    assert.deepEqual(log, ['NET_EVENT_IF_ADMIN_UP wlan0', 'NET_EVENT_IF_UP wlan0', 'NET_EVENT_IPV4_ADDR_ADD wlan0 10.1.2.3', 'NET_EVENT_IPV4_ADDR_DEL lo 127.0.0.1']);
  });
});

describe('conn_mgr connectivity monitor', () => {
  it('raises L4 events on 0 <-> n ready interfaces only, blaming the changed iface, and ignores non-global addresses', async () => {
    const nm = new NetMgmt({ queueSize: 64 });
    const netIfs = new NetIfManager(nm);
    const log: string[] = [];
    nm.addEventCallback(initEventCallback((_cb, ev, iface) => log.push(`${netEventName(ev)} ${iface?.name ?? '-'}`), (E.NET_EVENT_L4_BASE | 0x3f) >>> 0));
    netIfs.setLink({ index: 1, name: 'lo', up: true, running: true, loopback: true }, { silent: true });
    netIfs.addAddress(1, { addr: '127.0.0.1', prefixLen: 8, scope: 'host' }, { silent: true });
    netIfs.setLink({ index: 2, name: 'eth0', up: true, running: true }, { silent: true });
    netIfs.addAddress(2, { addr: '10.0.0.2', prefixLen: 24 }, { silent: true });
    const cm = new ConnMgrMonitor(nm, netIfs);
    cm.start();
    await nm.idle();
    assert.deepEqual(log, ['NET_EVENT_L4_CONNECTED eth0', 'NET_EVENT_L4_IPV4_CONNECTED eth0'], 'initial state announced');
    netIfs.setLink({ index: 3, name: 'eth1', up: true, running: true });
    netIfs.addAddress(3, { addr: 'fe80::1', prefixLen: 64, scope: 'link' }); // not global: no change
    netIfs.addAddress(3, { addr: '10.0.1.2', prefixLen: 24 }); // 1 -> 2 ready: no event
    await nm.idle();
    assert.equal(log.length, 2);
    netIfs.setLink({ index: 2, name: 'eth0', up: true, running: false }); // 2 -> 1
    await nm.idle();
    assert.equal(log.length, 2);
    netIfs.removeLink(3); // 1 -> 0
    await nm.idle();
    assert.deepEqual(log.slice(2), ['NET_EVENT_L4_DISCONNECTED eth1', 'NET_EVENT_L4_IPV4_DISCONNECTED eth1']);
    assert.equal(cm.connected, false);
    cm.resendStatus();
    await nm.idle();
    assert.deepEqual(log.slice(4), ['NET_EVENT_L4_DISCONNECTED eth1', 'NET_EVENT_L4_IPV6_DISCONNECTED -', 'NET_EVENT_L4_IPV4_DISCONNECTED eth1']);
    cm.stop();
  });

  it('an ignored interface never counts', async () => {
    const { nm, netIfs, log } = setup();
    const cm = new ConnMgrMonitor(nm, netIfs);
    cm.start();
    const eth = netIfs.setLink({ index: 2, name: 'eth0', up: true, running: true });
    cm.ignoreIface(eth);
    netIfs.addAddress(2, { addr: '2001:db8::5', prefixLen: 64 });
    assert.ok(!log.some((l) => l.startsWith('NET_EVENT_L4')));
    cm.watchIface(eth);
    assert.ok(log.includes('NET_EVENT_L4_IPV6_CONNECTED eth0'));
    await nm.idle();
  });
});

describe('local address watcher', () => {
  it('waits for the address, then reports its loss with the causing event', async () => {
    const nm = new NetMgmt();
    const netIfs = new NetIfManager(nm);
    const w = new LocalAddressWatcher(nm, netIfs, '10.9.8.7');
    assert.equal(w.current.available, false);
    const changes: string[] = [];
    w.onChange((c) => changes.push(`${c.available} ${c.event === undefined ? '-' : netEventName(c.event)} ${c.iface?.name ?? '-'}`));
    const avail = w.waitAvailable({ timeout: 2000 });
    netIfs.setLink({ index: 4, name: 'veth0', up: false, running: false });
    netIfs.addAddress(4, { addr: '10.9.8.7', prefixLen: 24 }); // iface still down
    await nm.idle();
    assert.equal(w.current.available, false);
    netIfs.setLink({ index: 4, name: 'veth0', up: true, running: false });
    assert.equal((await avail).iface?.name, 'veth0');
    const lost = w.waitLost({ timeout: 2000 });
    netIfs.removeAddress(4, '10.9.8.7');
    assert.equal((await lost).event, E.NET_EVENT_IPV4_ADDR_DEL);
    assert.deepEqual(changes, ['true NET_EVENT_IF_ADMIN_UP veth0', 'false NET_EVENT_IPV4_ADDR_DEL -']);
    await assert.rejects(w.waitAvailable({ timeout: 20 }), (e: unknown) => e instanceof NetMgmtError && e.code === 'NETMGMT_TIMEOUT');
    await assert.rejects(w.waitAvailable({ signal: AbortSignal.abort() }), (e: unknown) => e instanceof NetMgmtError && e.code === 'NETMGMT_ABORTED');
    w.close();
  });

  it('IPv6: tentative is not available until DAD succeeds; wildcards are always available', async () => {
    const nm = new NetMgmt();
    const netIfs = new NetIfManager(nm);
    netIfs.setLink({ index: 2, name: 'eth0', up: true, running: true });
    const w = new LocalAddressWatcher(nm, netIfs, 'fd00::7');
    netIfs.addAddress(2, { addr: 'fd00::7', prefixLen: 64, tentative: true });
    await nm.idle();
    assert.equal(w.current.available, false);
    netIfs.addAddress(2, { addr: 'fd00::7', prefixLen: 64 });
    assert.equal((await w.waitAvailable({ timeout: 1000 })).event, E.NET_EVENT_IPV6_DAD_SUCCEED);
    w.close();
    assert.equal(new LocalAddressWatcher(nm, netIfs, '0.0.0.0').current.available, true);
    assert.equal(new LocalAddressWatcher(nm, netIfs, '::').current.available, true);
    assert.throws(() => new LocalAddressWatcher(nm, netIfs, 'localhost'), UsageError);
  });
});

describe('rtnetlink message adapter (npm netlink parser + our mapping)', () => {
  const addrMsg = (family: 4 | 6, bytes: Uint8Array, prefixlen: number, index: number, tentative: boolean): Uint8Array => {
    const s = new AttrStream();
    const flags = tentative ? { tentative: true as const } : {};
    rt.formatAddressMessage({ kind: 'address', data: { family: family === 4 ? 2 : 10, prefixlen, flags, scope: 0, index }, attrs: { address: Buffer.from(bytes), ...(family === 4 ? { local: Buffer.from(bytes) } : {}), flags } }, s);
    return Buffer.concat(s.bufs);
  };

  it('property: NEWADDR/DELADDR built by the package encoder add and remove exactly that address', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => [4, b] as const), fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => [6, b] as const)),
        fc.integer({ min: 0, max: 32 }),
        fc.boolean(),
        ([family, bytes], plen, tentative) => {
          const { nm, netIfs, log } = setup();
          void nm;
          netIfs.setLink({ index: 7, name: 'x0', up: true, running: true }, { silent: true });
          const stats: NetlinkMonitorStats = { messages: 0, invalid: 0, resyncs: 0 };
          assert.ok(applyRtnetlinkMessage(netIfs, RtmType.NEWADDR, addrMsg(family, bytes, plen, 7, tentative), stats));
          const [a] = netIfs.getByIndex(7)!.addresses;
          assert.equal(a?.prefixLen, plen);
          assert.equal(a?.tentative, family === 6 && tentative ? true : tentative);
          assert.equal(log[0]?.split(' ')[0], family === 4 ? 'NET_EVENT_IPV4_ADDR_ADD' : 'NET_EVENT_IPV6_ADDR_ADD');
          assert.ok(applyRtnetlinkMessage(netIfs, RtmType.DELADDR, addrMsg(family, bytes, plen, 7, tentative), stats));
          assert.equal(netIfs.getByIndex(7)!.addresses.length, 0);
          assert.deepEqual(stats, { messages: 2, invalid: 0, resyncs: 0 });
        },
      ),
      { numRuns: 200 },
    );
  });

  it('fuzz: random bytes for any message type never throw, only count as invalid', () => {
    fc.assert(
      fc.property(fc.constantFrom(16, 17, 20, 21, 24, 25, 28, 3, 0, 999), fc.uint8Array({ maxLength: 200 }), (type, bytes) => {
        const { netIfs } = setup();
        netIfs.setLink({ index: 1, name: 'lo', up: true, running: true }, { silent: true });
        const stats: NetlinkMonitorStats = { messages: 0, invalid: 0, resyncs: 0 };
        applyRtnetlinkMessage(netIfs, type, bytes, stats);
        assert.equal(stats.messages + stats.invalid, 1);
      }),
      { numRuns: 3000 },
    );
  });

  it('formats records as the --json lines', () => {
    assert.deepEqual(netEventRecord(E.NET_EVENT_IPV4_ADDR_ADD, { index: 2, name: 'eth0', flags: { up: true, running: true, loopback: false }, mtu: 1500, hwaddr: undefined, addresses: [] }, { addr: '10.0.0.1' }), {
      event: 'NET_EVENT_IPV4_ADDR_ADD',
      code: 3758358529,
      iface: 'eth0',
      info: { addr: '10.0.0.1' },
    });
    assert.deepEqual(netEventRecord(0x97ab1234, null, new Uint8Array([1, 0xab])), { event: '0x97AB1234', code: 0x97ab1234, iface: null, info: '01ab' });
  });
});
