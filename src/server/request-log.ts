/**
 * One line per server event for `serve -v`: each request answered (transport, peer, command,
 * seq, result, time taken), each packet dropped and each frame that could not be decoded, with
 * its reason.
 *
 *     udp 127.0.0.1:50123 fs.hash (8/2 read) seq 17: ok in 38.2 ms
 *     udp 127.0.0.1:50123 image.upload (1/1 write) seq 3: err 1/5 in 0.4 ms
 *     udp 127.0.0.1:50123 dropped 16 bytes: buffers full (4 held)
 *     serial /dev/pts/5 undecodable: line too long
 */
import { findCommand } from '../core/commands/index.ts';
import { Op } from '../core/header.ts';
import type { ServerEvent } from './server.ts';

/** The peer without its transport prefix (`udp:1.2.3.4:5` → `1.2.3.4:5`). */
function where(transport: string, peer: string): string {
  return `${transport} ${peer.startsWith(`${transport}:`) ? peer.slice(transport.length + 1) : peer}`;
}

export function formatServerEvent(e: ServerEvent): string {
  switch (e.type) {
    case 'request': {
      const op = e.op === Op.READ ? 'read' : e.op === Op.WRITE ? 'write' : `op ${e.op}`;
      const name = e.op === Op.READ || e.op === Op.WRITE ? findCommand(e.group, e.id, op as 'read' | 'write')?.name : undefined;
      const result = e.rc === 0 ? 'ok' : e.errGroup !== undefined ? `err ${e.errGroup}/${e.rc}` : `rc ${e.rc}`;
      return `${where(e.transport, e.peer)} ${name ? `${name} ` : ''}(${e.group}/${e.id} ${op}) seq ${e.seq}: ${result} in ${e.ms.toFixed(1)} ms`;
    }
    case 'drop':
      return `${where(e.transport, e.peer)} dropped ${e.bytes} bytes: ${e.reason}`;
    case 'undecodable':
      return `${where(e.transport, e.peer)} undecodable${e.bytes > 0 ? ` (${e.bytes} bytes)` : ''}: ${e.reason}`;
  }
}
