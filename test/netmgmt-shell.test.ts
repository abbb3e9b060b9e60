/**
 * The emulator's `net iface` and `net events` shell commands: the event ring and the text, then
 * through SMP shell exec over UDP (library emulator whose registry the test feeds), through the
 * CLI against `mcumgr serve` (the host's own interfaces, from rtnetlink or polling), and typed as
 * plain text on a real pseudo-terminal.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { commands } from '../src/core/commands/index.ts';
import { NetEventLog, NetIfManager, NetMgmt, netEventsText, netIfaceText } from '../src/netmgmt/index.ts';
import * as E from '../src/netmgmt/events.ts';
import { createDeviceNetwork, registerNetShellCommands, type DeviceNetwork } from '../src/server/net-shell.ts';
import { ShellRegistry } from '../src/server/shell.ts';
import { createEmulator } from '../src/server/emulator.ts';
import { openRawSerialPort } from '../src/transport/serial-link.ts';
import { createSerialServer } from '../src/transport/serial-server.ts';
import { runCli, startEmulator, startServeProcess, tempDir, type TestEmulator } from './helpers.ts';
import { socatMissing } from './pty.ts';

/** A registry like a small board's: loopback, an Ethernet port with v4/v6 and a gateway, a port that is down. */
function feedBoard(netIfs: NetIfManager): void {
  netIfs.setLink({ index: 1, name: 'lo', up: true, running: true, loopback: true, mtu: 65536 });
  netIfs.addAddress(1, { addr: '127.0.0.1', prefixLen: 8, scope: 'host' });
  netIfs.setLink({ index: 2, name: 'eth0', up: true, running: true, mtu: 1500, hwaddr: '02:00:5e:00:53:31' });
  netIfs.addAddress(2, { addr: '192.0.2.1', prefixLen: 24 });
  netIfs.addAddress(2, { addr: '2001:db8::1', prefixLen: 64, tentative: true });
  netIfs.addAddress(2, { addr: 'fe80::1', prefixLen: 64, scope: 'link' });
  netIfs.addRoute({ family: 4, dst: '0.0.0.0', dstLen: 0, gateway: '192.0.2.254', index: 2 });
  netIfs.setLink({ index: 3, name: 'eth1', up: false, running: false, mtu: 1500 });
}

describe('net_mgmt event log (ring buffer)', () => {
  it('keeps the newest events in order, counts the dropped ones, clears', async () => {
    const nm = new NetMgmt({ queueSize: 64 });
    let clock = 1000;
    const log = new NetEventLog(nm, { capacity: 4, now: () => clock++ });
    const netIfs = new NetIfManager(nm);
    netIfs.setLink({ index: 7, name: 'eth0', up: true, running: true }); // ADMIN_UP, UP
    for (const a of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) netIfs.addAddress(7, { addr: a, prefixLen: 24 });
    await nm.idle();
    assert.equal(log.total, 5);
    assert.equal(log.dropped, 1);
    const kept = log.entries();
    assert.deepEqual(kept.map((e) => e.seq), [2, 3, 4, 5]);
    assert.deepEqual(kept.map((e) => e.event), ['NET_EVENT_IF_UP', 'NET_EVENT_IPV4_ADDR_ADD', 'NET_EVENT_IPV4_ADDR_ADD', 'NET_EVENT_IPV4_ADDR_ADD']);
    assert.deepEqual(kept[3], { event: 'NET_EVENT_IPV4_ADDR_ADD', code: E.NET_EVENT_IPV4_ADDR_ADD, iface: 'eth0', info: { addr: '10.0.0.3' }, seq: 5, time: 1004, ifaceIndex: 7 });
    assert.deepEqual(log.entries(2).map((e) => e.seq), [4, 5]);
    // conn_mgr and L4 events are recorded too (a raw notify: no registry needed).
    nm.notify(E.NET_EVENT_L4_CONNECTED, null);
    nm.notify(E.NET_EVENT_CONN_IF_TIMEOUT, null);
    await nm.idle();
    assert.deepEqual(log.entries(2).map((e) => [e.event, e.iface]), [['NET_EVENT_L4_CONNECTED', null], ['NET_EVENT_CONN_IF_TIMEOUT', null]]);
    log.clear();
    assert.deepEqual([log.total, log.dropped, log.entries().length], [0, 0, 0]);
    log.close();
    nm.notify(E.NET_EVENT_L4_DISCONNECTED, null);
    await nm.idle();
    assert.equal(log.total, 0, 'a closed log records nothing');
    assert.throws(() => new NetEventLog(nm, { capacity: 0 }), { code: 'USAGE' });
  });
});

describe('net iface / net events text', () => {
  it('lists interfaces close to Zephyr: header, link addr, status, address lists, gateway; down ones briefly', () => {
    const netIfs = new NetIfManager(new NetMgmt());
    feedBoard(netIfs);
    const { text, ret } = netIfaceText(netIfs, { hostname: 'board' });
    assert.equal(ret, 0);
    assert.equal(
      text,
      [
        'Hostname: board',
        'Default interface: 2',
        '',
        'Interface lo (Dummy) [1]',
        '========================',
        'MTU       : 65536',
        'Flags     : AUTO_START,IPv4,IPv6',
        'Status    : oper=UP, admin=UP, carrier=ON',
        'IPv6 unicast addresses:',
        '\t<none>',
        'IPv4 unicast addresses:',
        '\t127.0.0.1/255.0.0.0 manual preferred',
        'IPv4 gateway : 0.0.0.0',
        '',
        'Interface eth0 (Ethernet) [2]',
        '=============================',
        'Link addr : 02:00:5E:00:53:31',
        'MTU       : 1500',
        'Flags     : AUTO_START,IPv4,IPv6',
        'Status    : oper=UP, admin=UP, carrier=ON',
        'IPv6 unicast addresses:',
        '\t2001:db8::1 manual tentative',
        '\tfe80::1 autoconf preferred',
        'IPv4 unicast addresses:',
        '\t192.0.2.1/255.255.255.0 manual preferred',
        'IPv4 gateway : 192.0.2.254',
        '',
        'Interface eth1 (<unknown type>) [3]',
        '===================================',
        'Interface is down.',
        '',
      ].join('\n'),
    );
    // One interface by index: in full even when down.
    const one = netIfaceText(netIfs, { args: ['3'] });
    assert.match(one.text, /Interface is down\.\nMTU {7}: 1500\n.*\nStatus {4}: oper=DOWN, admin=DOWN, carrier=OFF\n/);
    assert.deepEqual(netIfaceText(netIfs, { args: ['9'] }), { text: 'No such interface in index 9\n', ret: -8 });
    assert.deepEqual(netIfaceText(netIfs, { args: ['eth0'] }), { text: 'Invalid index eth0\n', ret: -8 });
    assert.deepEqual(netIfaceText(new NetIfManager(new NetMgmt())), { text: 'No network interfaces.\n', ret: 0 });
  });

  it('net events: newest last with time, name, code, iface and info; a count; the hidden ones announced', async () => {
    const nm = new NetMgmt({ queueSize: 64 });
    let clock = 5000;
    const log = new NetEventLog(nm, { capacity: 3, now: () => (clock += 1500) });
    assert.deepEqual(netEventsText(log), { text: 'No network events recorded.\n', ret: 0 });
    const netIfs = new NetIfManager(nm);
    netIfs.setLink({ index: 2, name: 'eth0', up: true, running: true });
    netIfs.addAddress(2, { addr: '192.0.2.1', prefixLen: 24 });
    nm.notify(E.NET_EVENT_L4_CONNECTED, netIfs.getByIndex(2)!);
    await nm.idle();
    const { text, ret } = netEventsText(log, { since: 5000 });
    assert.equal(ret, 0);
    assert.equal(
      text,
      [
        '(1 older event not shown; 3 kept)',
        '[00:00:03.000] NET_EVENT_IF_UP 0xD0010002 [2] eth0',
        '[00:00:04.500] NET_EVENT_IPV4_ADDR_ADD 0xE0040001 [2] eth0 {"addr":"192.0.2.1"}',
        '[00:00:06.000] NET_EVENT_L4_CONNECTED 0xF1140001 [2] eth0',
        '',
      ].join('\n'),
    );
    assert.equal(netEventsText(log, { args: ['1'], since: 5000 }).text, '(3 older events not shown; 3 kept)\n[00:00:06.000] NET_EVENT_L4_CONNECTED 0xF1140001 [2] eth0\n');
    // A budget leaves the oldest lines out (and says so), never the newest.
    const fit = netEventsText(log, { since: 5000, maxBytes: 140 });
    assert.equal(fit.text, '(3 older events not shown; 3 kept)\n[00:00:06.000] NET_EVENT_L4_CONNECTED 0xF1140001 [2] eth0\n');
    assert.ok(new TextEncoder().encode(fit.text).length <= 140);
    assert.equal(netEventsText(log, { args: ['0'] }).ret, -8);
    assert.equal(netEventsText(log, { args: ['x'] }).ret, -8);
  });

  it('fuzz: any argv answers text and 0 or -ENOEXEC, never throws', async () => {
    const network = createDeviceNetwork({ eventLogSize: 8 });
    feedBoard(network.netIfs);
    await network.netMgmt.idle();
    const shell = new ShellRegistry();
    registerNetShellCommands(shell, network, { hostname: () => 'fuzz' });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('iface', 'events'), fc.array(fc.oneof(fc.string(), fc.nat().map(String), fc.constant('-1')), { maxLength: 3 }), async (sub, args) => {
        const r = await shell.execute(['net', sub, ...args]);
        assert.equal(typeof r.output, 'string');
        assert.ok(r.ret === 0 || r.ret === -8, `ret ${r.ret}`);
        assert.ok(!r.output.startsWith(`net ${sub}:`), `the command threw: ${r.output}`);
      }),
      { numRuns: 300 },
    );
  });
});

describe('net shell commands over SMP shell exec (UDP)', () => {
  let emu: TestEmulator;
  let network: DeviceNetwork;
  before(async () => {
    network = createDeviceNetwork();
    emu = await startEmulator({ device: { network } });
  });
  after(() => emu.close());

  it('an emulator from the library without a monitor answers with an empty registry', async () => {
    const plain = await startEmulator();
    try {
      const c = await plain.client();
      assert.deepEqual(await c.request(commands.shell.exec, { argv: ['net', 'iface'] }), { o: 'Hostname: mcumgr-emulator\nNo network interfaces.\n', ret: 0 });
      assert.deepEqual(await c.request(commands.shell.exec, { argv: ['net', 'events'] }), { o: 'No network events recorded.\n', ret: 0 });
      const help = await c.request(commands.shell.exec, { argv: ['net'] });
      assert.match(help.o, /^net - Networking commands\nSubcommands:\n {2}events .*\n {2}iface .*\n$/);
    } finally {
      await plain.close();
    }
  });

  it('shows the interfaces and the events the device network saw', async () => {
    feedBoard(network.netIfs);
    network.netIfs.removeAddress(2, '192.0.2.1');
    await network.netMgmt.idle();
    const c = await emu.client();
    const iface = await c.request(commands.shell.exec, { argv: ['net', 'iface'] });
    assert.equal(iface.ret, 0);
    assert.equal(iface.o, netIfaceText(network.netIfs, { hostname: 'mcumgr-emulator' }).text);
    assert.match(iface.o, /Interface eth0 \(Ethernet\) \[2\]\n=+\nLink addr : 02:00:5E:00:53:31\n/);
    const one = await c.request(commands.shell.exec, { argv: ['net', 'iface', '3'] });
    assert.match(one.o, /Status {4}: oper=DOWN, admin=DOWN, carrier=OFF/);
    assert.deepEqual(await c.request(commands.shell.exec, { argv: ['net', 'iface', '42'] }), { o: 'No such interface in index 42\n', ret: -8 });
    const events = await c.request(commands.shell.exec, { argv: ['net', 'events', '3'] });
    const lines = events.o.trimEnd().split('\n');
    assert.match(lines[0]!, /^\(\d+ older events not shown; 64 kept\)$/);
    assert.match(lines.at(-1)!, /^\[\d\d:\d\d:\d\d\.\d{3}\] NET_EVENT_IPV4_ADDR_DEL 0xE0040002 \[2\] eth0 \{"addr":"192\.0\.2\.1"\}$/);
    assert.match(lines.at(-2)!, /NET_EVENT_IPV4_ROUTER_ADD 0xE0040005 \[2\] eth0 \{"addr":"192\.0\.2\.254"\}$/);
  });

  it('a full ring longer than the shell buffer shows the newest events that fit, the newest last', async () => {
    for (let i = 0; i < 80; i++) network.netIfs.addAddress(2, { addr: `2001:db8:aaaa:bbbb:cccc:dddd:eeee:${i.toString(16)}`, prefixLen: 64 });
    await network.netMgmt.idle();
    assert.equal(network.events.entries().length, 64);
    const c = await emu.client();
    const { o, ret } = await c.request(commands.shell.exec, { argv: ['net', 'events'] });
    assert.equal(ret, 0);
    const lines = o.trimEnd().split('\n');
    assert.ok(new TextEncoder().encode(o).length <= 2048, `${o.length} bytes`);
    assert.match(lines[0]!, /^\(\d+ older events not shown; 64 kept\)$/);
    assert.ok(lines.length > 10 && lines.length < 64, `${lines.length} lines`);
    assert.match(lines.at(-1)!, /NET_EVENT_IPV6_ADDR_ADD 0xE0600001 \[2\] eth0 \{"addr":"2001:db8:aaaa:bbbb:cccc:dddd:eeee:4f"\}$/);
    assert.match(lines.at(-2)!, /"addr":"2001:db8:aaaa:bbbb:cccc:dddd:eeee:4e"/);
  });
});

describe('net shell commands through the CLI against `mcumgr serve`', () => {
  it('net iface lists the host loopback from the host monitor; net events answers', async () => {
    const data = await tempDir();
    const serve = await startServeProcess(['--data', data.path]);
    try {
      const at = ['--udp', `127.0.0.1:${serve.port}`];
      const [iface, events] = await Promise.all([runCli([...at, 'shell', 'exec', 'net', 'iface']), runCli([...at, 'shell', 'exec', 'net', 'events'])]);
      assert.equal(iface.code, 0, iface.stderr);
      assert.match(iface.stdout, /^Hostname: mcumgr-emulator\nDefault interface: \d+\n/);
      // The serve process's host network: the loopback is always there, with 127.0.0.1.
      assert.match(iface.stdout, /\nInterface lo \(Dummy\) \[\d+\]\n=+\n/);
      assert.match(iface.stdout, /\t127\.0\.0\.1\/255\.0\.0\.0 manual preferred\n/);
      assert.equal(events.code, 0, events.stderr);
      assert.ok(events.stdout === 'No network events recorded.\n' || /NET_EVENT_/.test(events.stdout), events.stdout);
    } finally {
      await serve.stop();
      await data.remove();
    }
  });
});

describe('net shell commands typed on a serial console (real pty)', { skip: socatMissing }, () => {
  it('answers `net iface 2` and `net events 1` as text with the prompt', async () => {
    const data = await tempDir('mcumgr-net-serial-');
    const link = join(data.path, 'tty');
    const network = createDeviceNetwork();
    network.netIfs.setLink({ index: 2, name: 'eth0', up: true, running: true, mtu: 1500, hwaddr: '02:00:5e:00:53:31' });
    network.netIfs.addAddress(2, { addr: '192.0.2.1', prefixLen: 24 });
    await network.netMgmt.idle();
    const server = await createEmulator({ dataDir: join(data.path, 'device'), bufSize: 2048, transports: [createSerialServer({ pty: link, shellOverSmp: true })], device: { network } });
    const port = await openRawSerialPort(link);
    let text = '';
    port.on('data', (d: Buffer) => (text += d.toString('latin1')));
    const type = async (line: string): Promise<string> => {
      text = '';
      await new Promise<void>((resolve, reject) => port.write(`${line}\r`, (e) => (e ? reject(e) : resolve())));
      const end = Date.now() + 3000;
      while (!text.includes('uart:~$ ') && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      return text;
    };
    try {
      const iface = await type('net iface 2');
      assert.match(iface, /^Hostname: mcumgr-emulator\r\nDefault interface: 2\r\n\r\nInterface eth0 \(Ethernet\) \[2\]\r\n=+\r\nLink addr : 02:00:5E:00:53:31\r\n/);
      assert.match(iface, /\t192\.0\.2\.1\/255\.255\.255\.0 manual preferred\r\nIPv4 gateway : 0\.0\.0\.0\r\nuart:~\$ $/);
      const events = await type('net events 1');
      assert.match(events, /^\(2 older events not shown; 64 kept\)\r\n\[\d\d:\d\d:\d\d\.\d{3}\] NET_EVENT_IPV4_ADDR_ADD 0xE0040001 \[2\] eth0 \{"addr":"192\.0\.2\.1"\}\r\nuart:~\$ $/);
    } finally {
      await new Promise<void>((resolve) => port.close(() => resolve()));
      await server.close();
      await data.remove();
    }
  });
});
