/**
 * Real kernel events: a network namespace of our own with a veth pair, driven with iproute2,
 * watched by `mcumgr net monitor --json` running inside the namespace (rtnetlink, then polling).
 * Skipped, with the reason, where namespaces cannot be created (not root, no iproute2, no netns).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupNamespaces, ip, netnsUnavailable, newNamespace } from './netns.ts';
import { NET_EVENTS } from '../src/netmgmt/index.ts';

const MCUMGR = fileURLToPath(new URL('../bin/mcumgr', import.meta.url));

interface Line { event: string; code: number; iface: string | null; info: Record<string, unknown> | null }

/** Runs `mcumgr net monitor --json` inside `ns` and collects its lines. */
class MonitorChild {
  readonly lines: Line[] = [];
  private waiters: (() => void)[] = [];
  readonly proc: ChildProcess;
  stderr = '';
  constructor(ns: string, extra: string[] = []) {
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, MCUMGR, '--json', 'net', 'monitor', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (text.trim()) this.lines.push(JSON.parse(text) as Line);
      }
      this.wake();
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      this.wake();
    });
  }
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  async until(pred: () => boolean, what: string, ms = 3000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0 || this.proc.exitCode !== null) {
        throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.lines.map((l) => `${l.event} ${l.iface}`))}; stderr: ${this.stderr}`);
      }
      await new Promise<void>((res) => {
        const t = setTimeout(res, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }
  has(event: string, iface?: string, addr?: string): boolean {
    return this.lines.some((l) => l.event === event && (iface === undefined || l.iface === iface) && (addr === undefined || l.info?.['addr'] === addr));
  }
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    this.proc.kill('SIGTERM');
    await once(this.proc, 'exit');
  }
}

const unavailable = netnsUnavailable();
if (unavailable) console.log(`# netmgmt netns tests skipped: ${unavailable}`);

describe('net_mgmt on real kernel events (network namespace)', { skip: unavailable, timeout: 20_000 }, () => {
  let ns = '';
  const children: MonitorChild[] = [];
  before(() => {
    ns = newNamespace('mcumgr-nm');
    // No link-local addresses (deterministic IPv6 event lists) and fast DAD.
    // Written through /proc/sys (per namespace) so that no sysctl binary is needed.
    const sysctl = (k: string, v: string): void => {
      const path = `/proc/sys/${k.replaceAll('.', '/')}`;
      const r = spawnSync('ip', ['netns', 'exec', ns, 'sh', '-c', `echo ${v} > ${path}`], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`sysctl ${k}: ${r.stderr}`);
    };
    sysctl('net.ipv6.conf.default.addr_gen_mode', '1');
    sysctl('net.ipv6.conf.all.addr_gen_mode', '1');
    ip('-n', ns, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb');
    sysctl('net.ipv6.neigh.va.retrans_time_ms', '50');
  });
  after(async () => {
    for (const c of children) await c.stop();
    cleanupNamespaces();
  });

  it('rtnetlink monitor reports link, address, DAD and connectivity events in order, with info', async () => {
    const mon = new MonitorChild(ns);
    children.push(mon);
    await mon.until(() => mon.stderr.includes('source netlink'), 'monitor start', 8000);
    ip('-n', ns, 'link', 'set', 'vb', 'up');
    await mon.until(() => mon.has('NET_EVENT_IF_ADMIN_UP', 'vb'), 'vb admin up');
    ip('-n', ns, 'link', 'set', 'va', 'up');
    await mon.until(() => mon.has('NET_EVENT_IF_UP', 'va') && mon.has('NET_EVENT_IF_UP', 'vb'), 'va and vb up');
    ip('-n', ns, 'addr', 'add', '10.77.0.1/24', 'dev', 'va');
    await mon.until(() => mon.has('NET_EVENT_L4_IPV4_CONNECTED'), 'IPv4 connected');
    ip('-n', ns, 'addr', 'add', 'fd77::1/64', 'dev', 'va', 'nodad');
    await mon.until(() => mon.has('NET_EVENT_L4_IPV6_CONNECTED'), 'IPv6 connected');
    ip('-n', ns, 'addr', 'add', 'fd77::2/64', 'dev', 'va');
    await mon.until(() => mon.has('NET_EVENT_IPV6_DAD_SUCCEED', 'va', 'fd77::2'), 'DAD of fd77::2');
    ip('-n', ns, 'route', 'add', 'default', 'via', '10.77.0.254');
    await mon.until(() => mon.has('NET_EVENT_IPV4_ROUTER_ADD', 'va', '10.77.0.254'), 'router add');
    ip('-n', ns, 'addr', 'del', '10.77.0.1/24', 'dev', 'va');
    await mon.until(() => mon.has('NET_EVENT_L4_IPV4_DISCONNECTED'), 'IPv4 disconnected');
    ip('-n', ns, 'link', 'set', 'va', 'down');
    await mon.until(() => mon.has('NET_EVENT_L4_IPV6_DISCONNECTED') && mon.has('NET_EVENT_IF_DOWN', 'vb'), 'all disconnected, vb lost its carrier');

    const relevant = mon.lines.filter((l) => (l.iface === 'va' || l.event.startsWith('NET_EVENT_L4_')) && !/ROUTE_|ADDR_DEL.*fd77|IPV6_ADDR_DEL/.test(l.event));
    const got = relevant.map((l) => `${l.event}${l.info && typeof l.info['addr'] === 'string' ? ' ' + l.info['addr'] : ''}`);
    const expected = [
      'NET_EVENT_IF_ADMIN_UP',
      'NET_EVENT_IF_UP',
      'NET_EVENT_IPV4_ADDR_ADD 10.77.0.1',
      'NET_EVENT_L4_CONNECTED',
      'NET_EVENT_L4_IPV4_CONNECTED',
      'NET_EVENT_IPV6_ADDR_ADD fd77::1',
      'NET_EVENT_L4_IPV6_CONNECTED',
      'NET_EVENT_IPV6_ADDR_ADD fd77::2',
      'NET_EVENT_IPV6_DAD_SUCCEED fd77::2',
      'NET_EVENT_IPV4_ROUTER_ADD 10.77.0.254',
      'NET_EVENT_IPV4_ADDR_DEL 10.77.0.1',
      'NET_EVENT_L4_IPV4_DISCONNECTED',
      'NET_EVENT_IF_ADMIN_DOWN',
      'NET_EVENT_IF_DOWN',
      'NET_EVENT_L4_DISCONNECTED',
      'NET_EVENT_L4_IPV6_DISCONNECTED',
    ];
    // The router goes away with the IPv4 address's subnet route; its DEL may come anywhere after.
    assert.deepEqual(got.filter((g) => !g.startsWith('NET_EVENT_IPV4_ROUTER_DEL')), expected);
    // Codes are Zephyr's, the L4 events blame va, vb went up when its peer did.
    for (const l of mon.lines) assert.equal(l.code, NET_EVENTS[l.event as keyof typeof NET_EVENTS], l.event);
    assert.ok(mon.lines.filter((l) => l.event.startsWith('NET_EVENT_L4_')).every((l) => l.iface === 'va'));
    assert.deepEqual(mon.lines.filter((l) => l.iface === 'vb' && l.event.startsWith('NET_EVENT_IF_')).map((l) => l.event), ['NET_EVENT_IF_ADMIN_UP', 'NET_EVENT_IF_UP', 'NET_EVENT_IF_DOWN']);
    // IPv6 routes carry net_event_ipv6_route.
    assert.ok(mon.lines.some((l) => l.event === 'NET_EVENT_IPV6_ROUTE_ADD' && l.info?.['addr'] === 'fd77::' && l.info['prefixLen'] === 64 && l.info['nexthop'] === '::'));
    await mon.stop();
  });

  it('`mcumgr serve --udp ADDR:PORT` waits for the address, serves, and reports its loss', async () => {
    ip('-n', ns, 'link', 'set', 'va', 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up'); // traffic to a local address goes through lo
    const dataDir = mkdtempSync(join(tmpdir(), 'mcumgr-nm-serve-'));
    const server = spawn('ip', ['netns', 'exec', ns, process.execPath, MCUMGR, '--udp', '10.66.0.1:1337', 'serve', '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    server.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    server.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const until = async (pred: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 6000;
      while (!pred()) {
        if (Date.now() > deadline || server.exitCode !== null) throw new Error(`timed out waiting for ${what}; stdout: ${out}; stderr: ${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await until(() => err.includes('waiting for local address 10.66.0.1'), 'the server to wait');
      assert.ok(!out.includes('listening'), 'not listening before the address exists');
      ip('-n', ns, 'addr', 'add', '10.66.0.1/24', 'dev', 'va');
      await until(() => out.includes('listening on udp 10.66.0.1:1337'), 'the server to listen');
      const echo = spawnSync('ip', ['netns', 'exec', ns, process.execPath, MCUMGR, '--udp', '10.66.0.1:1337', 'echo', 'through-netns'], { encoding: 'utf8', timeout: 8000 });
      assert.equal(echo.stdout.trim(), 'through-netns', echo.stderr);
      ip('-n', ns, 'addr', 'del', '10.66.0.1/24', 'dev', 'va');
      await until(() => err.includes('local address 10.66.0.1 went away (NET_EVENT_IPV4_ADDR_DEL)'), 'the loss report');
      ip('-n', ns, 'addr', 'add', '10.66.0.1/24', 'dev', 'va');
      await until(() => err.includes('available again (NET_EVENT_IPV4_ADDR_ADD)'), 'the comeback report');
    } finally {
      server.kill('SIGTERM');
      if (server.exitCode === null) await once(server, 'exit');
      rmSync(dataDir, { recursive: true, force: true });
    }
    assert.equal(server.exitCode, 0, `server exit; stderr: ${err}`);
  });

  it('the polling fallback reports addresses added and removed', async () => {
    ip('-n', ns, 'link', 'set', 'va', 'up');
    const mon = new MonitorChild(ns, ['--poll', '--interval', '50']);
    children.push(mon);
    await mon.until(() => mon.stderr.includes('source poll'), 'poll monitor start', 8000);
    ip('-n', ns, 'addr', 'add', '10.88.0.1/16', 'dev', 'va');
    await mon.until(() => mon.has('NET_EVENT_IPV4_ADDR_ADD', 'va', '10.88.0.1'), 'poll: address added');
    ip('-n', ns, 'addr', 'del', '10.88.0.1/16', 'dev', 'va');
    await mon.until(() => mon.has('NET_EVENT_IPV4_ADDR_DEL', 'va', '10.88.0.1'), 'poll: address removed');
    const order = mon.lines.filter((l) => l.info?.['addr'] === '10.88.0.1').map((l) => l.event);
    assert.deepEqual(order, ['NET_EVENT_IPV4_ADDR_ADD', 'NET_EVENT_IPV4_ADDR_DEL']);
    await mon.stop();
  });
});
