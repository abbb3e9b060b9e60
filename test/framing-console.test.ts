import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromHex, toHex, concatBytes, utf8Encode } from '../src/core/bytes.ts';
import { McuMgrError, ProtocolError } from '../src/core/errors.ts';
import { cut } from './split.ts';
import {
  base64Decode,
  base64Encode,
  ConsoleDecoder,
  consoleFrameSize,
  crc16Xmodem,
  encodeConsoleFrame,
  encodeConsoleFrameZephyr,
  maxPacketForBuffer,
  ZEPHYR_LINE_BUFFER,
} from '../src/framing/index.ts';

/** Bit-by-bit CRC-16/XMODEM straight from the definition, to check the table-driven one. */
function crcReference(data: Uint8Array): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** Splits framed bytes into lines (each with its '\n'). */
function lines(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0a) {
      out.push(bytes.subarray(start, i + 1));
      start = i + 1;
    }
  }
  assert.equal(start, bytes.length, 'framed output must end with a newline');
  return out;
}

/** Decoded bytes carried by one line. */
function lineBody(line: Uint8Array): Uint8Array {
  return base64Decode(line.subarray(2, line.length - 1));
}

function decodeAll(bytes: Uint8Array, options: ConstructorParameters<typeof ConsoleDecoder>[0] = {}): { packets: Uint8Array[]; decoder: ConsoleDecoder } {
  const decoder = new ConsoleDecoder(options);
  return { packets: decoder.push(bytes), decoder };
}


const ascii = (s: string): Uint8Array => utf8Encode(s);

describe('CRC-16/XMODEM', () => {
  it('has the check value 0x31C3 for "123456789"', () => {
    assert.equal(crc16Xmodem(ascii('123456789')), 0x31c3);
  });

  it('gives 0x4619 for the §4.1.4 echo request and 0 over packet‖CRC', () => {
    const packet = fromHex('0A 00 00 09 00 00 42 00 A1 61 64 65 68 65 6C 6C 6F');
    assert.equal(crc16Xmodem(packet), 0x4619);
    assert.equal(crc16Xmodem(concatBytes(packet, fromHex('4619'))), 0);
  });

  it('matches a bit-by-bit reference, also when computed in pieces', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(), (data, at) => {
        const split = data.length === 0 ? 0 : at % data.length;
        const whole = crc16Xmodem(data);
        assert.equal(whole, crcReference(data));
        assert.equal(crc16Xmodem(data, crc16Xmodem(data, 0, 0, split), split), whole);
      }),
    );
  });
});

describe('base64', () => {
  const vectors: Array<[string, string]> = [
    ['', ''],
    ['f', 'Zg=='],
    ['fo', 'Zm8='],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg=='],
    ['fooba', 'Zm9vYmE='],
    ['foobar', 'Zm9vYmFy'],
  ];

  it('encodes and decodes the RFC 4648 vectors', () => {
    for (const [plain, encoded] of vectors) {
      assert.equal(base64Encode(ascii(plain)), encoded);
      assert.deepEqual(base64Decode(encoded), ascii(plain));
      assert.deepEqual(base64Decode(ascii(encoded)), ascii(plain));
    }
  });

  it('agrees with Node Buffer on any bytes (differential) and round-trips', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        const encoded = base64Encode(bytes);
        assert.equal(encoded, Buffer.from(bytes).toString('base64'));
        assert.deepEqual(base64Decode(encoded), bytes);
      }),
    );
  });

  it('rejects non-strict input with a typed PROTOCOL_BAD_FRAME error', () => {
    for (const bad of ['Zg=', 'Zg', 'Z===', '====', 'Zg=a', 'Zg==Zg==', 'Zm9v\n', 'Zm 9v', 'Zm9-', 'Zm9_', 'Zm9vé===']) {
      assert.throws(
        () => base64Decode(bad),
        (e: unknown) => e instanceof ProtocolError && e.code === 'PROTOCOL_BAD_FRAME',
        JSON.stringify(bad),
      );
    }
  });

  it('never throws anything but ProtocolError on arbitrary text, and what it accepts re-encodes to itself', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'AZaz09+/=-_ \n\r!'.split('')), maxLength: 40 }), (text) => {
        let decoded: Uint8Array;
        try {
          decoded = base64Decode(text);
        } catch (e) {
          assert.ok(e instanceof ProtocolError);
          return;
        }
        // Canonical input (zero pad bits) round-trips exactly; non-canonical differs only there.
        const again = base64Encode(decoded);
        assert.equal(again.length, text.length);
        assert.equal(again.replace(/.=*$/, ''), text.replace(/.=*$/, ''));
      }),
    );
  });
});

describe('console framing: the worked example of smp-spec §4.1.4', () => {
  const request = fromHex('0A 00 00 09 00 00 42 00 A1 61 64 65 68 65 6C 6C 6F');
  const requestLine = fromHex('06 09 41 42 4D 4B 41 41 41 4A 41 41 42 43 41 4B 46 68 5A 47 56 6F 5A 57 78 73 62 30 59 5A 0A');
  const response = fromHex('0B 00 00 09 00 00 42 00 A1 61 72 65 68 65 6C 6C 6F');
  const responseLine = concatBytes(fromHex('0609'), ascii('ABMLAAAJAABCAKFhcmVoZWxsb8Cl'), fromHex('0A'));
  const requestV1 = fromHex('02 00 00 09 00 00 00 00 A1 61 64 65 68 65 6C 6C 6F');
  const requestV1Line = concatBytes(fromHex('0609'), ascii('ABMCAAAJAAAAAKFhZGVoZWxsbyVv'), fromHex('0A'));

  it('client encoder produces the exact request lines (v2 and v1)', () => {
    assert.equal(toHex(encodeConsoleFrame(request)), toHex(requestLine));
    assert.equal(toHex(encodeConsoleFrame(requestV1)), toHex(requestV1Line));
  });

  it('Zephyr device encoder produces the exact response line', () => {
    assert.equal(toHex(encodeConsoleFrameZephyr(response)), toHex(responseLine));
    assert.equal(toHex(encodeConsoleFrameZephyr(request)), toHex(requestLine));
  });

  it('decoder recovers the packets from the exact lines, both directions', () => {
    assert.deepEqual(decodeAll(requestLine).packets, [request]);
    assert.deepEqual(decodeAll(responseLine).packets, [response]);
    assert.deepEqual(decodeAll(requestV1Line).packets, [requestV1]);
  });

  it('handles the indefinite-length response Zephyr really sends (header length 0x000A, LEN 0x0014)', () => {
    const indefinite = fromHex('0B 00 00 0A 00 00 42 00 BF 61 72 65 68 65 6C 6C 6F FF');
    const framed = encodeConsoleFrameZephyr(indefinite);
    assert.deepEqual(lineBody(framed).subarray(0, 2), fromHex('0014'));
    assert.deepEqual(decodeAll(framed).packets, [indefinite]);
  });

  it('the Python smp regression record (echo "Hello world!", v2, seq 0x8B) round-trips', () => {
    const packet = fromHex('0a 00 00 10 00 00 8b 00 a1 61 64 6c 48656c6c6f20776f726c6421');
    assert.deepEqual(decodeAll(encodeConsoleFrame(packet)).packets, [packet]);
    assert.deepEqual(decodeAll(encodeConsoleFrameZephyr(packet)).packets, [packet]);
  });
});

describe('console framing: Zephyr device encoder (§4.1.2)', () => {
  it('splits a 400-byte packet into lines of 127, 123, 123, 123, 59 bytes (93/90/90/90/41 raw)', () => {
    const packet = Uint8Array.from({ length: 400 }, (_, i) => (i * 7) & 0xff);
    const ls = lines(encodeConsoleFrameZephyr(packet));
    assert.deepEqual(ls.map((l) => l.length), [127, 123, 123, 123, 59]);
    assert.deepEqual(ls.map((l) => lineBody(l).length), [93, 90, 90, 90, 41]);
  });

  it('for every length 1..1500: lines ≤ 127 (continuations ≤ 123), CRC whole in the last line, body = LEN‖pkt‖CRC', () => {
    for (let len = 1; len <= 1500; len++) {
      const packet = Uint8Array.from({ length: len }, (_, i) => (i * 31 + len) & 0xff);
      const framed = encodeConsoleFrameZephyr(packet);
      const ls = lines(framed);
      const bodies = ls.map(lineBody);
      ls.forEach((l, i) => {
        assert.deepEqual([l[0], l[1]], i === 0 ? [0x06, 0x09] : [0x04, 0x14]);
        assert.ok(l.length <= (i === 0 ? 127 : 123), `len ${len} line ${i} is ${l.length} bytes`);
        if (i < ls.length - 1) assert.equal(bodies[i]!.length % 3, 0, `len ${len}: only the last line may end short`);
      });
      assert.ok(bodies.at(-1)!.length >= 2, `len ${len}: CRC split`);
      const crc = crc16Xmodem(packet);
      assert.deepEqual(concatBytes(...bodies), concatBytes(fromHex(((len + 2) & 0xffff).toString(16).padStart(4, '0')), packet, Uint8Array.of(crc >> 8, crc & 0xff)));
      assert.deepEqual(decodeAll(framed, { maxLineLength: ZEPHYR_LINE_BUFFER }).packets, [packet]);
    }
  });

  it('takes other frame sizes (≥ 15) and refuses unusable ones with a typed error', () => {
    fc.assert(
      fc.property(fc.integer({ min: 15, max: 400 }), fc.uint8Array({ minLength: 1, maxLength: 700 }), (maxFrame, packet) => {
        const ls = lines(encodeConsoleFrameZephyr(packet, maxFrame));
        for (const l of ls) assert.ok(l.length <= maxFrame);
        assert.deepEqual(decodeAll(concatBytes(...ls)).packets, [packet]);
      }),
    );
    assert.throws(() => encodeConsoleFrameZephyr(Uint8Array.of(1), 14), McuMgrError);
    assert.throws(() => encodeConsoleFrameZephyr(new Uint8Array(0)), McuMgrError);
  });
});

describe('console framing: client encoder', () => {
  it('keeps every line within the configured length, one base64 stream, exact size formula', () => {
    fc.assert(
      fc.property(fc.integer({ min: 7, max: 600 }), fc.uint8Array({ maxLength: 3000 }), (lineLength, packet) => {
        const framed = encodeConsoleFrame(packet, { lineLength });
        assert.equal(framed.length, consoleFrameSize(packet.length, lineLength));
        const ls = lines(framed);
        ls.forEach((l, i) => {
          assert.ok(l.length <= lineLength);
          assert.deepEqual([l[0], l[1]], i === 0 ? [0x06, 0x09] : [0x04, 0x14]);
        });
        const text = ls.map((l) => new TextDecoder().decode(l.subarray(2, l.length - 1))).join('');
        const crc = crc16Xmodem(packet);
        assert.equal(text, Buffer.from(concatBytes(Uint8Array.of((packet.length + 2) >> 8, (packet.length + 2) & 0xff), packet, Uint8Array.of(crc >> 8, crc & 0xff))).toString('base64'));
        assert.deepEqual(decodeAll(framed).packets, [packet]);
      }),
    );
  });

  it('default lines are at most 127 bytes and a Zephyr-sized decoder (128-byte line buffer, 384 net_buf) takes them', () => {
    const packet = new Uint8Array(maxPacketForBuffer(384)).fill(0x5a);
    const framed = encodeConsoleFrame(packet);
    assert.ok(lines(framed).every((l) => l.length <= 127));
    const { packets, decoder } = decodeAll(framed, { maxLineLength: ZEPHYR_LINE_BUFFER, maxPacketLength: maxPacketForBuffer(384) });
    assert.deepEqual(packets, [packet]);
    assert.equal(decoder.stats.lineTooLong, 0);
  });

  it('refuses packets beyond the 16-bit LEN and line lengths below 7, with typed errors', () => {
    assert.throws(() => encodeConsoleFrame(new Uint8Array(65534)), (e: unknown) => e instanceof McuMgrError && e.code === 'TRANSPORT_TOO_LARGE');
    assert.throws(() => encodeConsoleFrame(Uint8Array.of(1), { lineLength: 6 }), (e: unknown) => e instanceof McuMgrError && e.code === 'USAGE');
    assert.equal(decodeAll(encodeConsoleFrame(new Uint8Array(65533).fill(7), { lineLength: 4096 })).packets[0]?.length, 65533);
  });
});

/** A stream item: a packet framed one way or another, or a non-SMP line. */
type Item = { kind: 'packet'; packet: Uint8Array; zephyr: boolean; lineLength: number; crlf: boolean } | { kind: 'text'; text: string; ending: string };

const packetItem = fc.record({
  kind: fc.constant('packet' as const),
  packet: fc.uint8Array({ maxLength: 500 }).filter((p) => p.length > 0),
  zephyr: fc.boolean(),
  lineLength: fc.integer({ min: 7, max: 200 }),
  crlf: fc.boolean(),
});
// Text that cannot be mistaken for SMP: printable ASCII (markers are control bytes).
const textItem = fc.record({
  kind: fc.constant('text' as const),
  text: fc.string({ unit: fc.constantFrom(...' abcXYZ019:[]<>=+/#$%'.split('')), maxLength: 80 }),
  ending: fc.constantFrom('\n', '\r\n', '\r'),
});

/**
 * An empty line ended by CR followed by one ended by LF reads as a single CR LF terminator; make
 * the model say so by merging such pairs.
 */
function normalize(items: Item[]): Item[] {
  const out: Item[] = [];
  for (const item of items) {
    const prev = out.at(-1);
    if (prev?.kind === 'text' && prev.ending === '\r' && item.kind === 'text' && item.text === '' && item.ending === '\n') {
      out[out.length - 1] = { ...prev, ending: '\r\n' };
      continue;
    }
    out.push(item);
  }
  return out;
}

function render(items: Item[]): Uint8Array {
  return concatBytes(
    ...items.map((item) => {
      if (item.kind === 'text') return ascii(item.text + item.ending);
      const framed = item.zephyr ? encodeConsoleFrameZephyr(item.packet) : encodeConsoleFrame(item.packet, { lineLength: item.lineLength });
      if (!item.crlf) return framed;
      // Senders that end lines with CR LF: the decoder strips the CR.
      return concatBytes(...lines(framed).map((l) => concatBytes(l.subarray(0, l.length - 1), ascii('\r\n'))));
    }),
  );
}

describe('console framing: decoder over a mixed stream', () => {
  it('yields every packet and every text line, in order, for any split of the stream', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(packetItem, textItem), { maxLength: 12 }).map(normalize), fc.array(fc.nat(), { maxLength: 40 }), (items, offsets) => {
        const stream = render(items);
        const expectedPackets = items.filter((x) => x.kind === 'packet').map((x) => x.packet);
        const expectedText = items.filter((x) => x.kind === 'text').map((x) => x.text);
        const text: string[] = [];
        const decoder = new ConsoleDecoder({ onText: (l) => text.push(new TextDecoder().decode(l)) });
        const packets = cut(stream, offsets).flatMap((part) => decoder.push(part));
        assert.deepEqual(packets, expectedPackets);
        assert.deepEqual(text, expectedText);
        assert.equal(decoder.stats.packets, expectedPackets.length);
        assert.equal(decoder.pending, false);
        // Line-separated streams decode the same with Zephyr's strict line-start marker rule.
        const strict = new ConsoleDecoder({ markersInText: false });
        assert.deepEqual(cut(stream, offsets).flatMap((part) => strict.push(part)), expectedPackets);
      }),
      { numRuns: 300 },
    );
  });

  it('byte-at-a-time feeding gives the same result as one chunk', () => {
    const packet = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
    const stream = concatBytes(ascii('[00:00:01.000] <inf> app: booting\r\n'), encodeConsoleFrameZephyr(packet), ascii('uart:~$ '));
    const decoder = new ConsoleDecoder();
    const packets: Uint8Array[] = [];
    for (const b of stream) packets.push(...decoder.push(Uint8Array.of(b)));
    assert.deepEqual(packets, [packet]);
    assert.equal(decoder.stats.textLines, 1); // the prompt has no line end yet
  });

  it('log lines between the lines of one frame do not disturb it (§4.1.3)', () => {
    const packet = Uint8Array.from({ length: 300 }, (_, i) => (i * 3) & 0xff);
    const ls = lines(encodeConsoleFrameZephyr(packet));
    const stream = concatBytes(...ls.flatMap((l, i) => [l, ascii(`[00:00:0${i}] <dbg> smp: line ${i}\r\n`)]));
    const text: string[] = [];
    const { packets, decoder } = decodeAll(stream, { onText: (l) => text.push(new TextDecoder().decode(l)) });
    assert.deepEqual(packets, [packet]);
    assert.equal(text.length, ls.length);
    assert.equal(decoder.stats.textLines, ls.length);
  });

  it('hands long text lines over in bounded pieces and loses nothing', () => {
    const long = 'x'.repeat(2500);
    const pieces: string[] = [];
    const { decoder } = decodeAll(ascii(long + '\n'), { maxTextLineLength: 1000, onText: (l) => pieces.push(new TextDecoder().decode(l)) });
    assert.deepEqual(pieces.map((p) => p.length), [1000, 1000, 500]);
    assert.equal(pieces.join(''), long);
    assert.equal(decoder.stats.textLines, 1);
  });

  it('finds a frame that starts after a shell prompt on the same line (and, Zephyr-strict, does not)', () => {
    const packet = Uint8Array.from({ length: 150 }, (_, i) => i);
    const stream = concatBytes(ascii('uart:~$ '), encodeConsoleFrameZephyr(packet), ascii('[00:01] <inf> log\x06 not a frame\r\n'));
    const text: string[] = [];
    const { packets } = decodeAll(stream, { onText: (l) => text.push(new TextDecoder().decode(l)) });
    assert.deepEqual(packets, [packet]);
    assert.deepEqual(text, ['uart:~$ ', '[00:01] <inf> log\x06 not a frame']);
    const strict = decodeAll(stream, { markersInText: false });
    assert.deepEqual(strict.packets, []);
    assert.ok(strict.decoder.stats.orphanContinuation > 0);
  });

  it('a marker byte not followed by the second marker byte is text', () => {
    const text: Uint8Array[] = [];
    decodeAll(Uint8Array.of(0x06, 0x41, 0x0a, 0x04, 0x0a, 0x06), { onText: (l) => text.push(l) });
    assert.deepEqual(text, [Uint8Array.of(0x06, 0x41), Uint8Array.of(0x04)]);
  });
});

describe('console framing: decoder drops bad frames, counts why, and recovers', () => {
  const good = Uint8Array.from({ length: 200 }, (_, i) => (i * 5) & 0xff);
  const goodFrame = encodeConsoleFrame(good);

  /** Runs `bad` then a good frame; checks the good one still comes out. */
  function expectDrop(bad: Uint8Array, options: ConstructorParameters<typeof ConsoleDecoder>[0] = {}): ConsoleDecoder {
    const decoder = new ConsoleDecoder(options);
    assert.deepEqual(decoder.push(bad), [], 'bad frame must not yield a packet');
    assert.deepEqual(decoder.push(goodFrame), [good], 'the next good frame must decode');
    return decoder;
  }

  it('bad CRC', () => {
    // Re-frame a packet with one byte changed but the original CRC kept.
    const body = lineBody(encodeConsoleFrame(good, { lineLength: 4096 }));
    body[10]! ^= 0x01;
    const forged = concatBytes(fromHex('0609'), ascii(base64Encode(body)), fromHex('0a'));
    const d = expectDrop(forged);
    assert.equal(d.stats.badCrc, 1);
  });

  it('bad base64 in a first and in a continuation line', () => {
    const ls = lines(goodFrame);
    const corruptFirst = concatBytes(fromHex('0609'), ascii('AB!D'), fromHex('0a'));
    assert.equal(expectDrop(corruptFirst).stats.badBase64, 1);
    const second = Uint8Array.from(ls[1]!);
    second[5] = 0x2a; // '*'
    const d = expectDrop(concatBytes(ls[0]!, second, ...ls.slice(2)));
    assert.equal(d.stats.badBase64, 1);
    assert.equal(d.stats.orphanContinuation, ls.length - 2, 'lines after the drop have no packet to join');
  });

  it('bad length: LEN below 2, LEN above the packet limit, more data than LEN', () => {
    const len0 = concatBytes(fromHex('0609'), ascii(base64Encode(fromHex('0000aa'))), fromHex('0a'));
    assert.equal(expectDrop(len0).stats.badLength, 1);
    const tooBig = expectDrop(encodeConsoleFrame(new Uint8Array(381)), { maxPacketLength: 380 });
    assert.equal(tooBig.stats.badLength, 1);
    const body = lineBody(encodeConsoleFrame(good, { lineLength: 4096 }));
    const extra = concatBytes(fromHex('0609'), ascii(base64Encode(concatBytes(body, fromHex('000000')))), fromHex('0a'));
    assert.equal(expectDrop(extra).stats.badLength, 1);
    // Excess arriving in a continuation line.
    const ls = lines(encodeConsoleFrame(good));
    const overflow = concatBytes(...ls, fromHex('0414'), ascii('AAAA'), fromHex('0a'));
    const d = new ConsoleDecoder();
    assert.deepEqual(d.push(overflow), [good]);
    assert.equal(d.stats.orphanContinuation, 1, 'a continuation after a complete packet has nothing to join');
    const truncatedThenMore = concatBytes(ls[0]!, fromHex('0414'), ascii(base64Encode(new Uint8Array(300))), fromHex('0a'));
    assert.equal(expectDrop(truncatedThenMore).stats.badLength, 1);
  });

  it('line too long for the line buffer (Zephyr: 128 bytes with the newline)', () => {
    const tooLong = encodeConsoleFrame(good, { lineLength: 131 }); // 128 base64 characters per line
    const d = expectDrop(tooLong, { maxLineLength: ZEPHYR_LINE_BUFFER });
    assert.ok(d.stats.lineTooLong >= 1);
    // 128 bytes including the newline is still fine.
    const atLimit = encodeConsoleFrame(good, { lineLength: 128 });
    assert.deepEqual(decodeAll(atLimit, { maxLineLength: ZEPHYR_LINE_BUFFER }).packets, [good]);
  });

  it('continuation without start', () => {
    const ls = lines(goodFrame);
    assert.equal(expectDrop(ls[1]!).stats.orphanContinuation, 1);
  });

  it('a new first line abandons an incomplete packet', () => {
    const ls = lines(goodFrame);
    const d = expectDrop(ls[0]!);
    assert.equal(d.stats.interrupted, 1);
  });

  it('reset() forgets a partial frame', () => {
    const ls = lines(goodFrame);
    const d = new ConsoleDecoder();
    d.push(ls[0]!.subarray(0, 20));
    d.reset();
    assert.equal(d.pending, false);
    assert.deepEqual(d.push(concatBytes(ls[0]!.subarray(20), goodFrame)), [good]);
  });
});

describe('console framing: decoder under garbage (fuzz)', () => {
  // Garbage rich in what the decoder reacts to: markers, newlines, CR, base64 characters.
  const garbageByte = fc.oneof(
    fc.constantFrom(0x06, 0x09, 0x04, 0x14, 0x0a, 0x0d, 0x3d, 0x41, 0x2b, 0x2f),
    fc.integer({ min: 0, max: 255 }),
  );

  it('never throws and never yields an over-limit packet or text piece', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.array(garbageByte, { maxLength: 300 }).map((a) => Uint8Array.from(a)), packetItem.map((p) => render([p]))), { maxLength: 12 }), (parts) => {
        const decoder = new ConsoleDecoder({ maxPacketLength: 380, maxLineLength: 128, maxTextLineLength: 64, onText: (l) => assert.ok(l.length <= 64) });
        for (const part of parts) {
          for (const packet of decoder.push(part)) assert.ok(packet.length <= 380);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('recovers every packet framed after arbitrary garbage once a line ends', () => {
    fc.assert(
      fc.property(fc.array(garbageByte, { maxLength: 400 }), fc.array(packetItem, { minLength: 1, maxLength: 4 }), (garbage, items) => {
        const decoder = new ConsoleDecoder();
        decoder.push(Uint8Array.from(garbage));
        const out = decoder.push(concatBytes(ascii('\n'), render(items)));
        assert.deepEqual(out, items.map((x) => x.packet));
      }),
      { numRuns: 300 },
    );
  });

  it('stays bounded on a 4 MiB SMP line without newline and on 4 MiB of text, then decodes again', () => {
    const decoder = new ConsoleDecoder({ maxLineLength: 128, onText: (l) => assert.ok(l.length <= 1024) });
    const junk = new Uint8Array(1 << 20).fill(0x41);
    decoder.push(fromHex('0609'));
    for (let i = 0; i < 4; i++) decoder.push(junk);
    decoder.push(ascii('\n'));
    for (let i = 0; i < 4; i++) decoder.push(junk); // text line
    const packet = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    assert.deepEqual(decoder.push(concatBytes(ascii('\n'), encodeConsoleFrame(packet))), [packet]);
    assert.equal(decoder.stats.lineTooLong, 1);
    assert.equal(decoder.stats.textLines, 1);
  });
});
