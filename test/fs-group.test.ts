/**
 * File system group over UDP: commands, errors in v1 and v2, path confinement (each escape is
 * refused and creates nothing), Zephyr's non-idempotent upload rules, the access hook, and the
 * client's windowed transfer engine (resume, verify).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commands } from '../src/core/commands/index.ts';
import { McuMgrError } from '../src/core/errors.ts';
import { toHex } from '../src/core/bytes.ts';
import { crc32 } from '../src/core/crc32.ts';
import { maxChunkData } from '../src/core/cbor-size.ts';
import { encodeCbor } from '../src/core/cbor.ts';
import { downloadFile, uploadFile } from '../src/client/fs-transfer.ts';
import { startEmulator, tempDir, type TestEmulator, deviceError } from './helpers.ts';
import { startUdpRelay } from '../src/transport/udp-relay.ts';
import { openUdpClient } from '../src/transport/udp.ts';
import { SmpClient } from '../src/client/client.ts';
import { decodeBody, splitMessages } from '../src/core/message.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The `off` of an fs upload request (undefined for anything else). */
function fsUploadOffset(packet: Uint8Array): number | undefined {
  for (const { header, payload } of splitMessages(packet)) {
    const body = decodeBody(payload) as { off?: unknown } | undefined;
    if (header.group === 8 && header.id === 0 && header.op === 2 && typeof body?.off === 'number') return body.off;
  }
  return undefined;
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) out.push(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
  return out.sort();
}

describe('fs group over UDP', () => {
  let emu: TestEmulator;
  let v2: SmpClient;
  let v1: SmpClient;
  let lfs: string;
  before(async () => {
    emu = await startEmulator();
    v2 = await emu.client();
    v1 = await emu.client({ version: 0 });
    lfs = join(emu.dataDir, 'fs', 'lfs');
  });
  after(() => emu.close());

  test('crc32 and the chunk-size helper', () => {
    assert.equal(crc32(enc('123456789')), 0xcbf43926);
    for (const limit of [40, 100, 300, 2048, 70000]) {
      const body = { name: '/lfs/some/file.bin', off: 123456, data: new Uint8Array(0), len: 999999 };
      const n = maxChunkData(limit, body);
      if (n === 0) {
        assert.ok(8 + encodeCbor(body).length > limit - 1);
        continue;
      }
      assert.ok(8 + encodeCbor({ ...body, data: new Uint8Array(n) }).length <= limit);
      assert.ok(8 + encodeCbor({ ...body, data: new Uint8Array(n + 1) }).length > limit);
    }
  });

  test('upload, status, download, hash with off/len, supported types, close', async () => {
    const data = enc('123456789');
    assert.deepEqual(await v2.request(commands.fs.upload, { name: '/lfs/digits', off: 0, len: 9, data }), { off: 9 });
    assert.equal(await readFile(join(lfs, 'digits'), 'utf8'), '123456789');
    assert.deepEqual(await v2.request(commands.fs.status, { name: '/lfs/digits' }), { len: 9 });
    assert.deepEqual(await v2.request(commands.fs.download, { name: '/lfs/digits', off: 0 }), { off: 0, data, len: 9 });
    assert.deepEqual(await v2.request(commands.fs.download, { name: '/lfs/digits', off: 4 }), { off: 4, data: enc('56789') });
    assert.deepEqual(await v2.request(commands.fs.download, { name: '/lfs/digits', off: 9 }), { off: 9, data: new Uint8Array(0) });
    assert.deepEqual(await v2.request(commands.fs.hash, { name: '/lfs/digits' }), { type: 'crc32', len: 9, output: 0xcbf43926 });
    const sha = await v2.request(commands.fs.hash, { name: '/lfs/digits', type: 'sha256', off: 3, len: 3 });
    assert.deepEqual({ ...sha, output: toHex(sha.output as Uint8Array) }, { type: 'sha256', off: 3, len: 3, output: toHex(new Uint8Array(createHash('sha256').update(enc('456')).digest())) });
    assert.deepEqual(await v2.request(commands.fs.hashTypes, {}), { types: { crc32: { format: 0, size: 4 }, sha256: { format: 1, size: 32 } } });
    assert.deepEqual(await v2.request(commands.fs.close, {}), {});
    // Zero-length file: {off 0, len 0, data empty} creates it.
    await v2.request(commands.fs.upload, { name: '/lfs/empty', off: 0, len: 0, data: new Uint8Array(0) });
    assert.equal((await readFile(join(lfs, 'empty'))).length, 0);
    // Re-uploading from 0 truncates existing content.
    await v2.request(commands.fs.upload, { name: '/lfs/digits', off: 0, len: 2, data: enc('ab') });
    assert.equal(await readFile(join(lfs, 'digits'), 'utf8'), 'ab');
  });

  test('errors in v2 and v1 forms: missing file, directory, hash type, empty file, offset, names', async () => {
    await v2.request(commands.fs.upload, { name: '/lfs/e0', off: 0, len: 0, data: new Uint8Array(0) });
    await v2.request(commands.fs.close, {});
    await mkdir(join(lfs, 'dir'), { recursive: true });
    const cases: Array<[string, (c: SmpClient) => Promise<unknown>, [number | undefined, number], [undefined, number]]> = [
      ['status missing', (c) => c.request(commands.fs.status, { name: '/lfs/missing' }), [8, 3], [undefined, 5]],
      ['download missing', (c) => c.request(commands.fs.download, { name: '/lfs/missing', off: 0 }), [8, 3], [undefined, 5]],
      ['hash missing', (c) => c.request(commands.fs.hash, { name: '/lfs/missing' }), [8, 3], [undefined, 5]],
      ['status directory', (c) => c.request(commands.fs.status, { name: '/lfs/dir' }), [8, 4], [undefined, 1]],
      ['unknown hash type', (c) => c.request(commands.fs.hash, { name: '/lfs/e0', type: 'md5' }), [8, 13], [undefined, 3]],
      ['hash of an empty file', (c) => c.request(commands.fs.hash, { name: '/lfs/e0' }), [8, 16], [undefined, 1]],
      ['hash offset past the end', (c) => c.request(commands.fs.hash, { name: '/lfs/digits', off: 2 }), [8, 12], [undefined, 1]],
      ['hash len 0', (c) => c.request(commands.fs.hash, { name: '/lfs/digits', len: 0 }), [undefined, 3], [undefined, 3]],
      ['name of 65 bytes', (c) => c.request(commands.fs.status, { name: '/lfs/' + 'n'.repeat(60) }), [undefined, 3], [undefined, 3]],
      ['upload off 0 without len', (c) => c.request(commands.fs.upload, { name: '/lfs/x', off: 0, data: enc('x') }), [undefined, 3], [undefined, 3]],
      ['upload to no mount point', (c) => c.request(commands.fs.upload, { name: '/nand/x', off: 0, len: 1, data: enc('x') }), [8, 14], [undefined, 5]],
      ['upload into a missing directory', (c) => c.request(commands.fs.upload, { name: '/lfs/nodir/x', off: 0, len: 1, data: enc('x') }), [8, 14], [undefined, 5]],
    ];
    for (const [what, call, want2, want1] of cases) {
      const e2 = await deviceError(call(v2));
      assert.deepEqual([e2.group, e2.rc], want2, what);
      const e1 = await deviceError(call(v1));
      assert.deepEqual([e1.group, e1.rc], want1, what);
    }
  });

  test('paths cannot leave the mount: .., //, ., relative, backslash, symlinks out; nothing is created', async () => {
    const outside = await tempDir('mcumgr-outside-');
    try {
      await writeFile(join(outside.path, 'secret'), 'secret');
      await symlink(outside.path, join(lfs, 'linkdir'));
      await symlink(join(outside.path, 'secret'), join(lfs, 'linkfile'));
      await symlink(join(outside.path, 'nothere'), join(lfs, 'dangling'));
      const before = await listTree(emu.dataDir);
      const outsideBefore = await listTree(outside.path);
      const names = ['/lfs/../escape', '/lfs/../../escape', '/lfs//double', '/lfs/./dot', 'lfs/relative', '/lfs/a\\b', '/lfs/linkdir/evil', '/lfs/linkfile', '/lfs/dangling', '/lfs/dir/../../escape'];
      for (const name of names) {
        for (const c of [v2, v1]) {
          const up = await deviceError(c.request(commands.fs.upload, { name, off: 0, len: 4, data: enc('evil') }));
          const st = await deviceError(c.request(commands.fs.status, { name }));
          const dl = await deviceError(c.request(commands.fs.download, { name, off: 0 }));
          const hs = await deviceError(c.request(commands.fs.hash, { name }));
          for (const e of [up, st, dl, hs]) assert.deepEqual([e.group, e.rc], c === v2 ? [8, 2] : [undefined, 3], name);
        }
      }
      assert.deepEqual(await listTree(emu.dataDir), before);
      assert.deepEqual(await listTree(outside.path), outsideBefore);
      assert.equal(await readFile(join(outside.path, 'secret'), 'utf8'), 'secret');
      // An absolute host path is just a path on no mount point.
      const abs = await deviceError(v2.request(commands.fs.status, { name: join(outside.path, 'secret') }));
      assert.deepEqual([abs.group, abs.rc], [8, 3]);
    } finally {
      await outside.remove();
    }
  });

  test('upload is not idempotent (§5.3): a wrong offset answers err 8/11 with len and closes; resume at len works', async () => {
    const a = enc('aaaa');
    await v2.request(commands.fs.upload, { name: '/lfs/seq', off: 0, len: 12, data: a });
    // A duplicated chunk (same off again).
    const dup = await v2.requestRaw(8, 0, 'write', { name: '/lfs/seq', off: 0 + 4 - 4 + 8, data: enc('cccc') });
    assert.deepEqual(dup.body, { len: 4, err: { group: 8, rc: 11 } });
    const dup1 = await v1.requestRaw(8, 0, 'write', { name: '/lfs/seq', off: 8, data: enc('cccc') });
    assert.deepEqual(dup1.body, { rc: 1 });
    // The transfer was closed; a fresh context takes the file size as the expected offset.
    assert.deepEqual(await v2.request(commands.fs.upload, { name: '/lfs/seq', off: 4, data: enc('bbbb') }), { off: 8 });
    assert.deepEqual(await v2.request(commands.fs.upload, { name: '/lfs/seq', off: 8, data: enc('cccc') }), { off: 12 });
    assert.equal(await readFile(join(lfs, 'seq'), 'utf8'), 'aaaabbbbcccc');
    // The same chunk sent twice in a row: the second is the duplicate.
    await v2.request(commands.fs.upload, { name: '/lfs/seq2', off: 0, len: 8, data: enc('1111') });
    await v2.request(commands.fs.upload, { name: '/lfs/seq2', off: 4, data: enc('2222') });
    const again = await deviceError(v2.request(commands.fs.upload, { name: '/lfs/seq2', off: 4, data: enc('2222') }));
    assert.deepEqual([again.group, again.rc, again.body['len']], [8, 11, 8]);
  });

  test('the file access hook sees each access and can deny (rc or group error) or redirect', async () => {
    const seen: string[] = [];
    const off = emu.server.hooks.on('fs_file_access', (d) => {
      seen.push(`${d.access} ${d.path}`);
      if (d.path === '/lfs/private') return { rc: 11 };
      if (d.path === '/lfs/locked') return { group: 8, rc: 15 };
      if (d.path === '/lfs/alias') d.path = '/lfs/real';
      return undefined;
    });
    try {
      const e = await deviceError(v2.request(commands.fs.upload, { name: '/lfs/private', off: 0, len: 1, data: enc('x') }));
      assert.deepEqual([e.group, e.rc], [undefined, 11]);
      const e1 = await deviceError(v1.request(commands.fs.status, { name: '/lfs/private' }));
      assert.deepEqual([e1.group, e1.rc], [undefined, 11]);
      const g = await deviceError(v2.request(commands.fs.download, { name: '/lfs/locked', off: 0 }));
      assert.deepEqual([g.group, g.rc], [8, 15]);
      await v2.request(commands.fs.upload, { name: '/lfs/alias', off: 0, len: 2, data: enc('hi') });
      assert.equal(await readFile(join(lfs, 'real'), 'utf8'), 'hi');
      await v2.request(commands.fs.hash, { name: '/lfs/alias' });
      assert.deepEqual(seen, ['write /lfs/private', 'status /lfs/private', 'read /lfs/locked', 'write /lfs/alias', 'hash /lfs/alias']);
    } finally {
      off();
    }
  });

  test('transfer engine: sizes, whole-buffer chunks, resume, verify', async () => {
    for (const size of [0, 1, 1999, 2100, 150_000]) {
      const data = new Uint8Array(randomBytes(size));
      const up = await uploadFile(v2, '/lfs/big.bin', data);
      assert.equal(up.verified?.type ?? (size === 0 ? undefined : 'missing'), size === 0 ? undefined : 'sha256');
      assert.deepEqual(new Uint8Array(await readFile(join(lfs, 'big.bin'))), data);
      const down = await downloadFile(v2, '/lfs/big.bin');
      assert.deepEqual(down.data, data);
    }
    // Chunks use the whole buffer: 150 KB in 2048-byte packets needs about 75 requests, not more.
    const data = new Uint8Array(randomBytes(150_000));
    const up = await uploadFile(v2, '/lfs/w.bin', data, { verify: false });
    assert.ok(up.requests <= Math.ceil(150_000 / 1950) + 1, `requests ${up.requests}`);
    // Resume: the device holds a prefix.
    await writeFile(join(lfs, 'w.bin'), data.subarray(0, 60_000));
    const resumed = await uploadFile(v2, '/lfs/w.bin', data, { resume: true, verify: 'crc32' });
    assert.equal(resumed.resumedFrom, 60_000);
    assert.equal(resumed.verified?.type, 'crc32');
    assert.deepEqual(new Uint8Array(await readFile(join(lfs, 'w.bin'))), data);
    // A prefix that does not match is not resumed.
    await writeFile(join(lfs, 'w.bin'), randomBytes(1000));
    assert.equal((await uploadFile(v2, '/lfs/w.bin', data, { resume: true })).resumedFrom, 0);
    // Download resume from a local partial copy.
    const dl = await downloadFile(v2, '/lfs/w.bin', { resumeFrom: data.subarray(0, 100_000) });
    assert.equal(dl.resumedFrom, 100_000);
    assert.deepEqual(dl.data, data);
    // Verify catches a file that changed on the device.
    const off = emu.server.hooks.on('cmd_done', (d) => {
      if (d.group === 8 && d.id === 0) writeFileSync(join(lfs, 'v.bin'), 'tampered');
    });
    const small = new Uint8Array(randomBytes(100));
    const err = await uploadFile(v2, '/lfs/v.bin', small).then(() => undefined, (e: unknown) => e);
    off();
    assert.ok(err instanceof McuMgrError && err.code === 'VERIFY_FAILED', String(err));
  });

  test('a chunk duplicated late leaves the device transfer reopened without a length; a resume after the file changed still ends verified (relay on events)', async (t) => {
    // The link delivers one middle chunk twice, the copy after two later chunks (a real UDP relay
    // driven by events): the device answers the copy with err 8/11 and closes the file, the next
    // chunk reopens it at its size, without the length only the first chunk carries, so the
    // transfer stays open after the last byte. The file then changes on the device (here: cut to
    // a prefix, as a device that lost the tail would hold it), and a resumed upload must not take
    // the stale transfer's offset (the whole length) for the device's progress.
    const cs = 1024;
    const data = new Uint8Array(randomBytes(40 * cs));
    let copy: Uint8Array | undefined;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let duplicated = false;
    const offsets: number[] = [];
    const relay = await startUdpRelay({
      target: { host: '127.0.0.1', port: emu.port },
      toDevice: {
        schedule: (_n, packet) => {
          const off = fsUploadOffset(packet);
          if (off === undefined) return undefined;
          if (!offsets.includes(off)) offsets.push(off);
          // The 10th chunk goes now and again once the 12th has gone.
          if (offsets.length === 10 && off === offsets[9] && !copy) {
            copy = packet;
            return ['now', released];
          }
          if (offsets.length === 12 && off === offsets[11] && copy && !duplicated) {
            duplicated = true;
            queueMicrotask(release);
            return ['now'];
          }
          return undefined;
        },
      },
    });
    t.after(() => relay.close());
    const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: relay.port, mtu: 2048 }), { timeoutMs: 3000, tries: 5 });
    t.after(() => client.close());
    const first = await uploadFile(client, '/lfs/reopened.bin', data, { packetLimit: cs + 100, verify: 'sha256' });
    assert.ok(duplicated, 'the relay delivered the copy late');
    assert.equal(first.verified?.type, 'sha256');
    await writeFile(join(lfs, 'reopened.bin'), data.subarray(0, 5 * cs));
    const resumed = await uploadFile(client, '/lfs/reopened.bin', data, { resume: true, verify: 'sha256' });
    assert.equal(resumed.resumedFrom, 5 * cs);
    assert.deepEqual(new Uint8Array(await readFile(join(lfs, 'reopened.bin'))), data);

    // Another client left a transfer open at the whole length (it announced one byte more and
    // stopped), then the file lost its tail: the device answers the resumed chunk with err 8/11
    // and the stale offset, past anything the upload sent. The upload starts over instead of
    // taking it as done.
    await v2.request(commands.fs.upload, { name: '/lfs/reopened.bin', off: 0, len: data.length + 1, data: data.subarray(0, 1000) });
    for (let off = 1000; off < data.length; off += 1500) await v2.request(commands.fs.upload, { name: '/lfs/reopened.bin', off, data: data.subarray(off, Math.min(data.length, off + 1500)) });
    await writeFile(join(lfs, 'reopened.bin'), data.subarray(0, 5 * cs));
    const again = await uploadFile(v2, '/lfs/reopened.bin', data, { resume: true, verify: 'sha256' });
    assert.equal(again.resumedFrom, 0, 'started over');
    assert.equal(again.verified?.type, 'sha256');
    assert.deepEqual(new Uint8Array(await readFile(join(lfs, 'reopened.bin'))), data);
  });

  test('download into a slow sink: answers that arrive while it writes are neither delivered twice nor asked again', async (t) => {
    // The sink holds its write of the next-to-last chunk until the download has nothing left in
    // flight (counted from the client's packets, no delay), or until a second write comes in while
    // it waits: that one would be the same bytes again (the bug this reproduces: the answers that
    // came meanwhile made the bytes being written look like a hole, asked and delivered again).
    const data = new Uint8Array(randomBytes(40_000));
    await writeFile(join(lfs, 'slow-sink.bin'), data);
    let tx = 0;
    let rx = 0;
    let release: (() => void) | undefined;
    const settle = (): void => {
      if (release && tx === rx) release();
    };
    const isDownload = (packet: Uint8Array): boolean => [...splitMessages(packet)].some(({ header }) => header.group === 8 && header.id === 0);
    const client = await emu.client({
      timeoutMs: 5000,
      tries: 3,
      onPacket: (dir, packet) => {
        if (!isDownload(packet)) return;
        if (dir === 'tx') tx++;
        else {
          rx++;
          setImmediate(settle);
        }
      },
    });
    t.after(() => client.close());
    const written: Uint8Array[] = [];
    let at = 0;
    let held = false;
    let overlapped = false;
    const sink = {
      async write(d: Uint8Array): Promise<void> {
        if (release) {
          overlapped = true;
          release();
        }
        const pos = at;
        at += d.length;
        written.push(d.slice());
        if (!held && pos > 0 && at < data.length && data.length - at <= 2048) {
          held = true;
          await new Promise<void>((r) => {
            release = () => {
              release = undefined;
              r();
            };
            setImmediate(settle);
          });
        }
      },
    };
    const result = await downloadFile(client, '/lfs/slow-sink.bin', { sink, verify: 'sha256' }).then(
      (r) => r,
      (e: unknown) => e,
    );
    assert.ok(held, 'the sink held a write');
    assert.equal(overlapped, false, 'no write while another was held');
    assert.ok(!(result instanceof Error), String(result));
    const joined = new Uint8Array(written.reduce((n, w) => n + w.length, 0));
    written.reduce((o, w) => (joined.set(w, o), o + w.length), 0);
    assert.deepEqual(joined, data);
  });

  test('transfer engine over a lossy, duplicating link: err 8/11 rewinds and still a verified copy', async () => {
    let seed = 42;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const relay = await startUdpRelay({ target: { host: '127.0.0.1', port: emu.port }, toDevice: { drop: 0.05, duplicate: 0.1 }, toClient: { drop: 0.05 }, random });
    const client = new SmpClient(await openUdpClient({ host: '127.0.0.1', port: relay.port, mtu: 2048 }), { timeoutMs: 150, tries: 8 });
    try {
      const data = new Uint8Array(randomBytes(120_000));
      const up = await uploadFile(client, '/lfs/lossy.bin', data);
      assert.equal(up.verified?.type, 'sha256');
      assert.ok(up.rewinds > 0, 'duplicated chunks made the device report its offset');
      assert.deepEqual(new Uint8Array(await readFile(join(lfs, 'lossy.bin'))), data);
      const down = await downloadFile(client, '/lfs/lossy.bin');
      assert.deepEqual(down.data, data);
      assert.ok(relay.stats.dropped > 0 && relay.stats.duplicated > 0);
    } finally {
      await client.close();
      await relay.close();
    }
  });
});
