/**
 * Stopping and restarting one transport of a running server (SmpServer.unlisten / listen, and
 * the TransportSwitch that `serve --close-on-disconnect` drives), over real UDP on 127.0.0.1:
 * the port is really released, the same port answers again, a request in flight when the
 * transport closes is dropped without an error report, and a switch toggled fast ends in the
 * state asked last.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';
import { commands } from '../src/core/commands/index.ts';
import { TransportError } from '../src/core/errors.ts';
import { SmpClient } from '../src/client/client.ts';
import { createEmulator } from '../src/server/emulator.ts';
import { createOsGroup } from '../src/server/groups/os.ts';
import type { MgmtGroup } from '../src/server/registry.ts';
import { TransportSwitch } from '../src/server/transport-switch.ts';
import { createUdpServer, openUdpClient } from '../src/transport/udp.ts';
import { tempDir } from './helpers.ts';

/** Whether a UDP port on 127.0.0.1 can be bound now (i.e. nobody holds it). */
async function portIsFree(port: number): Promise<boolean> {
  const s = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, '127.0.0.1', () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    try {
      s.close();
    } catch {
      // never bound
    }
  }
}

async function client(port: number): Promise<SmpClient> {
  return new SmpClient(await openUdpClient({ host: '127.0.0.1', port }), { timeoutMs: 300, tries: 1 });
}

describe('one transport stopped and restarted while the server runs', () => {
  it('unlisten releases the port; listen again answers on the same port; the other transport never stops', async () => {
    const data = await tempDir();
    const errors: unknown[] = [];
    const a = createUdpServer({ host: '127.0.0.1', port: 0 });
    const b = createUdpServer({ host: '127.0.0.1', port: 0 });
    const server = await createEmulator({ dataDir: data.path, groups: [createOsGroup], transports: [a, b], onError: (e) => errors.push(e) });
    const ca = await client(a.port);
    const cb = await client(b.port);
    try {
      assert.deepEqual(await ca.request(commands.os.echo, { d: 'a1' }), { r: 'a1' });
      const port = a.port;
      assert.equal(await server.unlisten(a), true);
      assert.equal(await server.unlisten(a), false, 'a second unlisten is a no-op');
      assert.equal(await portIsFree(port), true, 'the socket is really closed');
      await assert.rejects(ca.request(commands.os.echo, { d: 'lost' }), (e: unknown) => e instanceof TransportError && e.code === 'TRANSPORT_TIMEOUT');
      assert.deepEqual(await cb.request(commands.os.echo, { d: 'b' }), { r: 'b' });
      await server.listen(a);
      assert.equal(a.port, port, 'restarted on the port it had (first bound as port 0)');
      assert.equal(await portIsFree(port), false);
      assert.deepEqual(await ca.request(commands.os.echo, { d: 'a2' }), { r: 'a2' });
      await server.listen(a); // listening already: nothing happens
      assert.deepEqual(await ca.request(commands.os.echo, { d: 'a3' }), { r: 'a3' });
    } finally {
      await ca.close();
      await cb.close();
      await server.close();
      await data.remove();
    }
    assert.deepEqual(errors, []);
    assert.equal(await portIsFree(b.port), true, 'close releases the transports');
  });

  it('a request in flight when its transport closes is dropped: no answer, no error report, the server goes on', async () => {
    const data = await tempDir();
    const errors: unknown[] = [];
    let release: () => void = () => {};
    let entered: () => void = () => {};
    const inHandler = new Promise<void>((r) => (entered = r));
    // Group 64: a read that waits until the test releases it.
    const slow = (): MgmtGroup => ({
      id: 64,
      name: 'slow',
      handlers: [
        {
          read: {
            fn: async () => {
              entered();
              await new Promise<void>((r) => (release = r));
              return { done: true };
            },
          },
        },
      ],
    });
    const udp = createUdpServer({ host: '127.0.0.1', port: 0 });
    const server = await createEmulator({ dataDir: data.path, groups: [createOsGroup, slow], transports: [udp], onError: (e) => errors.push(e) });
    const c = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: udp.port }), { timeoutMs: 1500, tries: 1 });
    try {
      const pending = c.requestRaw(64, 0, 'read', {});
      await inHandler;
      await server.unlisten(udp);
      release();
      await assert.rejects(pending, (e: unknown) => e instanceof TransportError && e.code === 'TRANSPORT_TIMEOUT');
      assert.equal(server.counterFor('udp').dropped, 1);
      await server.listen(udp);
      assert.deepEqual(await c.request(commands.os.echo, { d: 'still here' }), { r: 'still here' });
    } finally {
      await c.close();
      await server.close();
      await data.remove();
    }
    assert.deepEqual(errors, [], 'a reply on a closed transport is not an internal error');
  });
});

describe('TransportSwitch', () => {
  it('toggled fast ends in the state asked last, one listen/unlisten at a time', async () => {
    const data = await tempDir();
    const udp = createUdpServer({ host: '127.0.0.1', port: 0 });
    const server = await createEmulator({ dataDir: data.path, groups: [createOsGroup] });
    const changes: boolean[] = [];
    const sw = new TransportSwitch(server, udp, { onChange: (open) => changes.push(open) });
    try {
      await sw.set(true);
      const port = udp.port;
      assert.equal(sw.open, true);
      const settled = [sw.set(false), sw.set(true), sw.set(false), sw.set(true), sw.set(false)];
      await Promise.all(settled);
      assert.equal(sw.open, false);
      assert.equal(await portIsFree(port), true);
      void sw.set(true);
      void sw.set(false);
      await sw.set(true);
      assert.equal(sw.open, true);
      assert.equal(changes.at(-1), true);
      for (let i = 1; i < changes.length; i++) assert.notEqual(changes[i], changes[i - 1], `changes alternate: ${changes.join(',')}`);
      const c = await client(port);
      assert.deepEqual(await c.request(commands.os.echo, { d: 'on' }), { r: 'on' });
      await c.close();
    } finally {
      await server.close();
      await data.remove();
    }
    assert.equal(sw.open, true, 'the switch stopped with the server');
    assert.equal(await portIsFree(udp.port), true);
  });

  it('retries a failed open (port taken) until it succeeds, and stops retrying once closed', async () => {
    const data = await tempDir();
    const squatter = dgram.createSocket('udp4');
    await new Promise<void>((r) => squatter.bind(0, '127.0.0.1', () => r()));
    const port = squatter.address().port;
    const udp = createUdpServer({ host: '127.0.0.1', port });
    const server = await createEmulator({ dataDir: data.path, groups: [createOsGroup] });
    const failures: unknown[] = [];
    const sw = new TransportSwitch(server, udp, { retryMs: 30, onError: (e) => failures.push(e) });
    try {
      await sw.set(true);
      assert.equal(sw.open, false);
      assert.ok(failures[0] instanceof TransportError && failures[0].code === 'TRANSPORT_IO', String(failures[0]));
      // Synchronised on the switch's own events (its retries fail, then it opens), not on delays;
      // the deadlines only end a hang.
      let deadline = Date.now() + 60_000;
      while (failures.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.ok(failures.length >= 2, `retried (${failures.length} failures)`);
      await new Promise<void>((r) => squatter.close(() => r()));
      deadline = Date.now() + 60_000;
      while (!sw.open && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(sw.open, true, 'opened once the port was free');
      const c = await client(port);
      assert.deepEqual(await c.request(commands.os.echo, { d: 'got it' }), { r: 'got it' });
      await c.close();
    } finally {
      await server.close();
      await data.remove();
    }
  });
});
