/**
 * The SMP log: every packet sent and received, kept raw (cheap during an upload) and decoded on
 * demand into header fields, the command's name, the CBOR body as JSON and the error by name.
 * Exported as a JSON document for bug reports.
 */
import { findCommand } from '../../src/core/commands/index.ts';
import { groupNameOf } from '../../src/core/error-codes.ts';
import { decodeBody, deviceErrorOf, splitMessages } from '../../src/core/message.ts';
import { toHex } from '../../src/core/bytes.ts';
import { toJsonValue } from './format.ts';

export interface LogPacket {
  /** Running number in this session. */
  n: number;
  /** Milliseconds since the epoch. */
  time: number;
  dir: 'tx' | 'rx';
  packet: Uint8Array;
}

export interface DecodedMessage {
  op: number;
  opName: string;
  version: number;
  flags: number;
  length: number;
  group: number;
  groupName: string;
  seq: number;
  id: number;
  command: string;
  body: unknown;
  /** `NAME (group/rc)` when the body carries an error. */
  error?: string;
  /** Why the body could not be decoded. */
  problem?: string;
}

const OP_NAMES = ['read', 'read-rsp', 'write', 'write-rsp'];

/** Decodes one logged packet into its messages (a packet may hold several). */
export function decodeLogPacket(packet: Uint8Array): { messages: DecodedMessage[]; problem?: string } {
  const messages: DecodedMessage[] = [];
  try {
    for (const { header, payload } of splitMessages(packet)) {
      const requestOp = header.op === 1 ? 'read' : header.op === 3 ? 'write' : header.op === 0 ? 'read' : 'write';
      const cmd = findCommand(header.group, header.id, requestOp);
      const m: DecodedMessage = {
        op: header.op,
        opName: OP_NAMES[header.op] ?? `op ${header.op}`,
        version: header.version,
        flags: header.flags,
        length: header.length,
        group: header.group,
        groupName: groupNameOf(header.group),
        seq: header.seq,
        id: header.id,
        command: cmd?.name ?? `${groupNameOf(header.group)} ${header.id}`,
        body: undefined,
      };
      try {
        const body = decodeBody(payload);
        m.body = toJsonValue(body);
        const err = header.op === 1 || header.op === 3 ? deviceErrorOf(body) : undefined;
        if (err) m.error = `${err.errorName} (${err.group === undefined ? `rc ${err.rc}` : `err ${err.group}/${err.rc}`})`;
      } catch (e) {
        m.problem = `undecodable CBOR: ${(e as Error).message}`;
      }
      messages.push(m);
    }
  } catch (e) {
    return { messages, problem: `malformed packet: ${(e as Error).message}` };
  }
  return { messages };
}

/** The exported log: one JSON document. */
export function exportLog(device: string, entries: readonly LogPacket[]): string {
  return JSON.stringify(
    {
      device,
      exported: new Date().toISOString(),
      packets: entries.map((e) => ({ n: e.n, time: new Date(e.time).toISOString(), dir: e.dir, hex: toHex(e.packet), ...decodeLogPacket(e.packet) })),
    },
    null,
    2,
  );
}
