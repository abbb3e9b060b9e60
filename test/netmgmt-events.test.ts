import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { McuMgrError, UsageError } from '../src/core/errors.ts';
import {
  NET_MGMT_IFACE_BIT,
  NetIfManager,
  NetMgmt,
  NetMgmtError,
  buildNetMgmtCode,
  initEventCallback,
  type NetIf,
  type NetMgmtEventCallback,
} from '../src/netmgmt/index.ts';
import * as E from '../src/netmgmt/events.ts';

// tests/net/mgmt's codes: request 0x17AB1234, event 0x97AB1234, an unhandled event 0x97AB4321.
const TEST_REQUEST = 0x17ab1234;
const TEST_EVENT = 0x97ab1234;

function twoIfaces(nm: NetMgmt): { eth0: NetIf; eth1: NetIf } {
  const m = new NetIfManager(nm);
  return {
    eth0: m.setLink({ index: 2, name: 'eth0', up: true, running: true }, { silent: true }),
    eth1: m.setLink({ index: 3, name: 'eth1', up: true, running: true }, { silent: true }),
  };
}

type Seen = { tag: string; event: number; iface: string | null; info?: unknown };

function recorder(seen: Seen[], tag: string) {
  return (cb: NetMgmtEventCallback, event: number, iface: NetIf | null): void => {
    seen.push({ tag, event, iface: iface?.name ?? null, ...(cb.info !== undefined ? { info: cb.info } : {}) });
  };
}

describe('net_mgmt requests', () => {
  it('calls the registered handler with the exact code, iface and data and returns its result', () => {
    const nm = new NetMgmt();
    const { eth0 } = twoIfaces(nm);
    const calls: unknown[] = [];
    nm.registerRequestHandler(TEST_REQUEST, (req, iface, data) => {
      calls.push([req, iface?.name, data]);
      return data instanceof Uint8Array && data.length === 4 ? 0 : -5; // -EIO, as the Zephyr test handler
    });
    assert.equal(nm.request(TEST_REQUEST, null, new Uint8Array(4)), 0);
    assert.equal(nm.request(TEST_REQUEST, eth0, new Uint8Array(3)), -5);
    assert.deepEqual(calls, [[TEST_REQUEST, undefined, new Uint8Array(4)], [TEST_REQUEST, 'eth0', new Uint8Array(3)]]);
  });

  it('fails clearly for an unregistered code, an event code, or a second handler', async () => {
    const nm = new NetMgmt();
    assert.throws(() => nm.request(0x17ab0001), (e: unknown) => e instanceof NetMgmtError && e.code === 'NETMGMT_NO_HANDLER' && e instanceof McuMgrError && /0x17AB0001/.test(e.message));
    assert.throws(() => nm.registerRequestHandler(TEST_EVENT, () => 0), UsageError);
    nm.registerRequestHandler(TEST_REQUEST, async () => 'later');
    assert.throws(() => nm.registerRequestHandler(TEST_REQUEST, () => 0), UsageError);
    assert.equal(await nm.request<Promise<string>>(TEST_REQUEST), 'later');
    assert.ok(nm.unregisterRequestHandler(TEST_REQUEST));
    assert.throws(() => nm.request(TEST_REQUEST), NetMgmtError);
  });
});

describe('net_mgmt events', () => {
  it('delivers asynchronously, once per notify, with the real code, iface and info', async () => {
    const nm = new NetMgmt();
    const { eth0 } = twoIfaces(nm);
    const seen: Seen[] = [];
    nm.addEventCallback(initEventCallback(recorder(seen, 'a'), TEST_EVENT));
    nm.notify(TEST_EVENT, eth0);
    nm.notifyWithInfo(TEST_EVENT, null, 'mgmt event info', 15);
    assert.equal(seen.length, 0, 'queue mode: nothing runs inside notify');
    await nm.idle();
    assert.deepEqual(seen, [
      { tag: 'a', event: TEST_EVENT, iface: 'eth0' },
      { tag: 'a', event: TEST_EVENT, iface: null, info: 'mgmt event info' },
    ]);
    assert.deepEqual(nm.stats, { notified: 2, unhandled: 0, dropped: 0, delivered: 2, handlerErrors: 0 });
  });

  it('copies byte info at notify time (as Zephyr copies into the queue entry)', async () => {
    const nm = new NetMgmt();
    let got: unknown;
    let len = -1;
    nm.addEventCallback(initEventCallback((cb) => ((got = cb.info), (len = cb.infoLength)), TEST_EVENT));
    const buf = new Uint8Array([1, 2, 3]);
    nm.notifyWithInfo(TEST_EVENT, null, buf);
    buf[0] = 9;
    await nm.idle();
    assert.deepEqual(got, new Uint8Array([1, 2, 3]));
    assert.equal(len, 3);
  });

  it('matches like Zephyr: command mask false positives, exact layer code, separate listeners per layer', async () => {
    const nm = new NetMgmt();
    const { eth0 } = twoIfaces(nm);
    const seen: Seen[] = [];
    const handler = recorder(seen, 'shared');
    nm.addEventCallback(initEventCallback(handler, (E.NET_EVENT_IF_DOWN | E.NET_EVENT_IF_UP) >>> 0));
    nm.addEventCallback(initEventCallback(handler, E.NET_EVENT_IPV4_ADDR_ADD));
    for (const ev of [E.NET_EVENT_IF_UP, E.NET_EVENT_IF_ADMIN_DOWN, E.NET_EVENT_IF_ADMIN_UP, E.NET_EVENT_IPV4_ADDR_ADD, E.NET_EVENT_IPV4_MADDR_ADD, E.NET_EVENT_IPV4_ADDR_DEL, E.NET_EVENT_IPV6_ADDR_ADD]) {
      nm.notify(ev, eth0);
    }
    await nm.idle();
    assert.deepEqual(
      seen.map((s) => E.netEventName(s.event)),
      // ADMIN_DOWN (cmd 3) is a false positive of IF_DOWN|IF_UP; IPV4_MADDR_ADD (cmd 3) of IPV4_ADDR_ADD (cmd 1).
      ['NET_EVENT_IF_UP', 'NET_EVENT_IF_ADMIN_DOWN', 'NET_EVENT_IPV4_ADDR_ADD', 'NET_EVENT_IPV4_MADDR_ADD'],
    );
    // The prefilter is coarse (one OR of all masks): ADMIN_UP (cmd 4) and IPv6 (layer code 0x060)
    // are dropped at the source; IPV4_ADDR_DEL (cmd 2) passes it, thanks to the IF mask's bit 2,
    // and then matches no callback.
    assert.equal(nm.stats.unhandled, 2);
    assert.equal(nm.stats.delivered, 5);
  });

  it('drops at the source what no mask can match, so a later waiter never sees it', async () => {
    const nm = new NetMgmt();
    nm.notify(TEST_EVENT);
    assert.equal(nm.stats.unhandled, 1);
    const wait = nm.eventWait(TEST_EVENT, { timeout: 30 });
    await assert.rejects(wait, (e: unknown) => e instanceof NetMgmtError && e.code === 'NETMGMT_TIMEOUT');
  });

  it('orders: static handlers by name, then dynamic callbacks newest first; events in notify order', async () => {
    const nm = new NetMgmt({ queueSize: 16 });
    const order: string[] = [];
    nm.registerEventHandler('zz_static', TEST_EVENT, (ev) => order.push(`zz:${ev & 0xffff}`));
    nm.registerEventHandler('aa_static', TEST_EVENT, (ev, _i, info, len, user) => order.push(`aa:${ev & 0xffff}:${String(info)}:${len}:${String(user)}`), 'ud');
    assert.throws(() => nm.registerEventHandler('aa_static', TEST_EVENT, () => {}), UsageError);
    nm.addEventCallback(initEventCallback((_c, ev) => order.push(`first:${ev & 0xffff}`), TEST_EVENT));
    nm.addEventCallback(initEventCallback((_c, ev) => order.push(`second:${ev & 0xffff}`), TEST_EVENT));
    const e1 = TEST_EVENT;
    const e2 = (TEST_EVENT & 0xffff0000) | 0x0004; // shares no bit with 0x1234? 0x1234 & 4 = 4: matches
    nm.notifyWithInfo(e1, null, 'x', 1);
    nm.notify(e2 >>> 0);
    await nm.idle();
    assert.deepEqual(order, [
      'aa:4660:x:1:ud', 'zz:4660', 'second:4660', 'first:4660',
      'aa:4:undefined:0:ud', 'zz:4', 'second:4', 'first:4',
    ]);
  });

  it('property: every listener sees every delivered event, in notify order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 4 }), async (cmds, listeners) => {
        const nm = new NetMgmt({ queueSize: 64 });
        const logs: number[][] = Array.from({ length: listeners }, () => []);
        for (let i = 0; i < listeners; i++) nm.addEventCallback(initEventCallback((_c, ev) => logs[i]!.push(ev), E.NET_EVENT_IF_BASE | 7));
        const sent = cmds.map((c) => (E.NET_EVENT_IF_BASE | c) >>> 0);
        for (const ev of sent) nm.notify(ev);
        await nm.idle();
        for (const log of logs) assert.deepEqual(log, sent);
      }),
      { numRuns: 50 },
    );
  });

  it('bounds the queue: a burst beyond queueSize drops the newest events, counted and reported', async () => {
    const dropped: number[] = [];
    const nm = new NetMgmt({ queueSize: 3, onDrop: (ev) => dropped.push(ev & 0xffff) });
    const seen: number[] = [];
    nm.addEventCallback(initEventCallback((_c, ev) => seen.push(ev & 0xffff), (E.NET_EVENT_IPV6_BASE | 0xff) >>> 0));
    for (let cmd = 1; cmd <= 6; cmd++) nm.notify((E.NET_EVENT_IPV6_BASE | cmd) >>> 0);
    assert.equal(nm.pending, 3);
    await nm.idle();
    assert.deepEqual(seen, [1, 2, 3]);
    assert.deepEqual(dropped, [4, 5, 6]);
    assert.equal(nm.stats.dropped, 3);
    // the queue has room again once drained
    nm.notify((E.NET_EVENT_IPV6_BASE | 7) >>> 0);
    await nm.idle();
    assert.deepEqual(seen, [1, 2, 3, 7]);
  });

  it('direct mode delivers inside notify, depth-first for notifies from a callback', () => {
    const nm = new NetMgmt({ mode: 'direct' });
    const order: string[] = [];
    nm.addEventCallback(
      initEventCallback((_c, ev) => {
        order.push(`in:${ev & 0xffff}`);
        if (ev === E.NET_EVENT_IF_UP) nm.notify(E.NET_EVENT_IF_DOWN);
        order.push(`out:${ev & 0xffff}`);
      }, (E.NET_EVENT_IF_UP | E.NET_EVENT_IF_DOWN) >>> 0),
    );
    nm.notify(E.NET_EVENT_IF_UP);
    order.push('after');
    assert.deepEqual(order, ['in:2', 'in:1', 'out:1', 'out:2', 'after']);
  });

  it('queue mode appends notifies from a callback after the current event', async () => {
    const nm = new NetMgmt();
    const order: string[] = [];
    const mask = (E.NET_EVENT_IF_UP | E.NET_EVENT_IF_DOWN) >>> 0;
    nm.addEventCallback(initEventCallback((_c, ev) => {
      order.push(`a:${ev & 0xffff}`);
      if (ev === E.NET_EVENT_IF_UP) nm.notify(E.NET_EVENT_IF_DOWN);
    }, mask));
    nm.addEventCallback(initEventCallback((_c, ev) => order.push(`b:${ev & 0xffff}`), mask));
    nm.notify(E.NET_EVENT_IF_UP);
    await nm.idle();
    assert.deepEqual(order, ['b:2', 'a:2', 'b:1', 'a:1']);
  });

  it('callbacks may remove themselves, others, or add callbacks during delivery without harm', async () => {
    const nm = new NetMgmt({ queueSize: 16 });
    const order: string[] = [];
    const mask = TEST_EVENT;
    const c1 = initEventCallback(() => order.push('c1'), mask);
    const c2 = initEventCallback(() => {
      order.push('c2');
      nm.delEventCallback(c1); // removes the next one in the walk
    }, mask);
    const late = initEventCallback(() => order.push('late'), mask);
    const self = initEventCallback((cb) => {
      order.push('self');
      nm.delEventCallback(cb); // removes itself
      nm.addEventCallback(late); // added now: not called for this event
    }, mask);
    nm.addEventCallback(c1);
    nm.addEventCallback(c2);
    nm.addEventCallback(self);
    nm.notify(TEST_EVENT);
    await nm.idle();
    assert.deepEqual(order, ['self', 'c2']);
    order.length = 0;
    nm.notify(TEST_EVENT);
    await nm.idle();
    assert.deepEqual(order, ['late', 'c2']);
    // removing an unknown callback or adding one twice is harmless
    nm.delEventCallback(self);
    nm.addEventCallback(late);
    order.length = 0;
    nm.notify(TEST_EVENT);
    await nm.idle();
    assert.deepEqual(order, ['late', 'c2']);
  });

  it('a throwing handler does not stop delivery; the error is reported', async () => {
    const errors: unknown[] = [];
    const nm = new NetMgmt({ onHandlerError: (e) => errors.push(e) });
    const seen: string[] = [];
    nm.addEventCallback(initEventCallback(() => seen.push('ok'), TEST_EVENT));
    nm.addEventCallback(initEventCallback(() => {
      throw new Error('boom');
    }, TEST_EVENT));
    nm.notify(TEST_EVENT);
    await nm.idle();
    assert.deepEqual(seen, ['ok']);
    assert.equal(errors.length, 1);
    assert.equal(nm.stats.handlerErrors, 1);
  });

  it('accepts masks built with JavaScript | (signed) and stores them unsigned', async () => {
    const nm = new NetMgmt();
    const mask = E.NET_EVENT_IF_UP | E.NET_EVENT_IF_DOWN;
    assert.ok(mask < 0);
    const cb = initEventCallback(() => {}, mask);
    assert.equal(cb.eventMask, 0xd0010003);
    nm.addEventCallback(cb);
    const wait = nm.eventWait(E.NET_EVENT_L4_CONNECTED | E.NET_EVENT_L4_DISCONNECTED, { timeout: 1000 });
    nm.notify(E.NET_EVENT_L4_CONNECTED | 0);
    assert.equal((await wait).event, E.NET_EVENT_L4_CONNECTED);
  });

  it('validates arguments with UsageError', () => {
    assert.throws(() => new NetMgmt({ queueSize: 0 }), UsageError);
    assert.throws(() => new NetMgmt({ queueSize: 1025 }), UsageError);
    assert.throws(() => initEventCallback(() => {}, 2 ** 32), UsageError);
    assert.throws(() => initEventCallback(() => {}, -(2 ** 31) - 1), UsageError);
    assert.throws(() => initEventCallback(() => {}, 0.5), UsageError);
    const nm = new NetMgmt();
    assert.throws(() => nm.notify(2 ** 32), UsageError);
    assert.throws(() => nm.addEventCallback({} as NetMgmtEventCallback), UsageError);
  });
});

describe('net_mgmt event waits', () => {
  it('eventWait resolves with the raised event, iface and info (a false positive included)', async () => {
    const nm = new NetMgmt();
    const { eth1 } = twoIfaces(nm);
    const wait = nm.eventWait((E.NET_EVENT_IPV4_ADDR_ADD | E.NET_EVENT_IPV4_ADDR_DEL) >>> 0, { timeout: 1000 });
    nm.notifyWithInfo(E.NET_EVENT_IPV4_MADDR_ADD, eth1, { addr: '224.0.0.1' }, 4); // cmd 3: false positive
    const r = await wait;
    assert.equal(r.event, E.NET_EVENT_IPV4_MADDR_ADD);
    assert.equal(r.iface, eth1);
    assert.deepEqual(r.info, { addr: '224.0.0.1' });
    assert.equal(r.infoLength, 4);
  });

  it('a waiter is one-shot and sees only events delivered after it started', async () => {
    const nm = new NetMgmt();
    nm.addEventCallback(initEventCallback(() => {}, TEST_EVENT)); // keep the prefilter open
    nm.notifyWithInfo(TEST_EVENT, null, 'delivered before');
    await nm.idle();
    // As in Zephyr, an event still in the queue when the wait starts is seen by it.
    nm.notifyWithInfo(TEST_EVENT, null, 'queued');
    assert.equal((await nm.eventWait(TEST_EVENT, { timeout: 1000 })).info, 'queued');
    const wait = nm.eventWait(TEST_EVENT, { timeout: 1000 });
    nm.notifyWithInfo(TEST_EVENT, null, 'first');
    nm.notifyWithInfo(TEST_EVENT, null, 'second');
    assert.equal((await wait).info, 'first');
    await nm.idle();
  });

  it('times out with NETMGMT_TIMEOUT after about the given time, and cleans up', async () => {
    const nm = new NetMgmt();
    // Its own 50 ms timer ends the wait: before a 5 s timer started after it (timers fire in
    // order of their due time, however late a busy machine runs them), never before 45 ms.
    const t0 = performance.now();
    let order = '';
    const later = new Promise<void>((r) => setTimeout(() => r(void (order += 'late;')), 5000).unref());
    await assert.rejects(nm.eventWait(TEST_EVENT, { timeout: 50 }), (e: unknown) => e instanceof NetMgmtError && e.code === 'NETMGMT_TIMEOUT');
    order += 'timeout;';
    const took = performance.now() - t0;
    assert.equal(order, 'timeout;', 'the wait ended at its own timeout, not later');
    assert.ok(took >= 45, `took ${took} ms`);
    void later;
    nm.notify(TEST_EVENT);
    assert.equal(nm.stats.unhandled, 1, 'the waiter was removed (global mask rebuilt)');
    await assert.rejects(nm.eventWait(TEST_EVENT, { timeout: 0 }), (e: unknown) => e instanceof NetMgmtError && e.code === 'NETMGMT_TIMEOUT');
    await assert.rejects(nm.eventWait(TEST_EVENT, { timeout: -1 }), UsageError);
  });

  it('is cancelled by an AbortSignal (before or during the wait)', async () => {
    const nm = new NetMgmt();
    const ac = new AbortController();
    const wait = nm.eventWait(TEST_EVENT, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stop')), 10);
    await assert.rejects(wait, (e: unknown) => e instanceof NetMgmtError && e.code === 'NETMGMT_ABORTED' && (e.cause as Error).message === 'stop');
    await assert.rejects(nm.eventWait(TEST_EVENT, { signal: AbortSignal.abort() }), (e: unknown) => e instanceof NetMgmtError && e.code === 'NETMGMT_ABORTED');
    nm.notify(TEST_EVENT);
    assert.equal(nm.stats.unhandled, 1);
  });

  it('eventWaitOnIface ignores other interfaces and needs the iface bit', async () => {
    const nm = new NetMgmt();
    const { eth0, eth1 } = twoIfaces(nm);
    const wait = nm.eventWaitOnIface(eth1, E.NET_EVENT_IF_UP, { timeout: 1000 });
    nm.notify(E.NET_EVENT_IF_UP, eth0);
    nm.notify(E.NET_EVENT_IF_UP, null);
    nm.notify(E.NET_EVENT_IF_UP, eth1);
    const r = await wait;
    assert.equal(r.iface, eth1);
    assert.equal(r.event, E.NET_EVENT_IF_UP);
    await assert.rejects(nm.eventWaitOnIface(eth0, (E.NET_EVENT_IF_UP & ~NET_MGMT_IFACE_BIT) >>> 0), UsageError);
    await assert.rejects(nm.eventWaitOnIface(null as unknown as NetIf, E.NET_EVENT_IF_UP), UsageError);
  });

  it('several waiters on one event all wake; an iface-bound waiter for another iface keeps waiting', async () => {
    const nm = new NetMgmt();
    const { eth0, eth1 } = twoIfaces(nm);
    const a = nm.eventWait(E.NET_EVENT_IF_DOWN, { timeout: 1000 });
    const b = nm.eventWait(E.NET_EVENT_IF_DOWN, { timeout: 1000 });
    const c = nm.eventWaitOnIface(eth1, E.NET_EVENT_IF_DOWN, { timeout: 60 });
    nm.notify(E.NET_EVENT_IF_DOWN, eth0);
    assert.equal((await a).iface, eth0);
    assert.equal((await b).iface, eth0);
    await assert.rejects(c, (e: unknown) => e instanceof NetMgmtError && e.code === 'NETMGMT_TIMEOUT');
  });

  it('works in direct mode too', async () => {
    const nm = new NetMgmt({ mode: 'direct' });
    const wait = nm.eventWait(buildNetMgmtCode({ event: true, layer: 1, layerCode: 0x7ab, command: 0x1234 }), { timeout: 500 });
    nm.notify(TEST_EVENT);
    assert.equal((await wait).event, TEST_EVENT);
  });
});
