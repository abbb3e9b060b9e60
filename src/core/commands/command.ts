/**
 * The command table's building blocks. One entry per (group, command id, op): ids, the request
 * and response shapes (types and validators), and a name used in messages and the CLI. The client
 * derives `client.request(command, body)`'s types from it, the server registers handlers against
 * it, and the enumeration group reads group names from it.
 */
import type { Schema } from '../schema.ts';

export const Group = {
  OS: 0,
  IMAGE: 1,
  STAT: 2,
  SETTINGS: 3,
  LOG: 4,
  CRASH: 5,
  SPLIT: 6,
  RUN: 7,
  FS: 8,
  SHELL: 9,
  ENUM: 10,
  TRANSPORT: 11,
  ZEPHYR_BASIC: 63,
  PERUSER: 64,
} as const;
export type GroupId = (typeof Group)[keyof typeof Group];

/** Group names as Zephyr's enumeration details report them (`CONFIG_MCUMGR_GRP_ENUM_DETAILS_NAME`). */
export const GROUP_NAMES: Readonly<Record<number, string>> = {
  0: 'os mgmt',
  1: 'img mgmt',
  2: 'stat mgmt',
  3: 'settings mgmt',
  8: 'fs mgmt',
  9: 'shell mgmt',
  10: 'enum mgmt',
  11: 'transport mgmt',
  63: 'zephyr basic mgmt',
};

export type CommandOp = 'read' | 'write';

/**
 * One command. `request` is what a client sends (its type and shape); `decode`, when given, is how
 * the device decodes it instead of `request.parse`, for the commands Zephyr decodes leniently
 * (`lenient` in schema.ts): the handler's body type is then `Body`.
 */
export interface Command<Req = unknown, Rsp = unknown, Body = Req> {
  readonly group: number;
  readonly id: number;
  readonly op: CommandOp;
  /** Dotted name, e.g. `os.echo`, `image.upload`. */
  readonly name: string;
  readonly summary: string;
  readonly request: Schema<Req>;
  readonly response: Schema<Rsp>;
  /** The device's decoding of the request when it is lenient (Zephyr's zcbor_map_decode_bulk rules). */
  readonly decode?: Schema<Body>;
}

export type RequestOf<C> = C extends Command<infer Req, unknown, unknown> ? Req : never;
export type ResponseOf<C> = C extends Command<unknown, infer Rsp, unknown> ? Rsp : never;

/** The request body a device handler gets: `decode`'s result when the command has one. */
export type BodyOf<C> = C extends Command<unknown, unknown, infer Body> ? Body : never;

export function command<Req, Rsp, Body = Req>(def: Command<Req, Rsp, Body>): Command<Req, Rsp, Body> {
  return Object.freeze(def);
}
