/**
 * The group registry, mirroring Zephyr's `mgmt_register_group`, `mgmt_unregister_group`,
 * `mgmt_find_group`, `mgmt_find_handler` and `mgmt_get_handler`. A group holds handlers indexed
 * by command id, each with an optional read and write function. Only one group per id.
 */
import type { Command } from '../core/commands/command.ts';
import { translateToV1 } from '../core/error-codes.ts';
import type { SmpHeader } from '../core/header.ts';
import { McuMgrError } from '../core/errors.ts';
import type { SmpPeer } from '../transport/types.ts';
import type { SmpServer } from './server.ts';

export interface HandlerContext<Req = unknown> {
  /** The request body: validated against the command's request schema when registered with a command. */
  body: Req;
  header: SmpHeader;
  peer: SmpPeer;
  server: SmpServer;
  /** Aborted when the server closes: a handler that runs long (hashing, a host program) stops early. */
  signal?: AbortSignal;
  /**
   * A handler that runs long calls this now and then (where a pause is safe): the waiting
   * requests of other transports run, so that they are not starved past their buffers.
   */
  letOthersRun?: () => Promise<void>;
}

/** Returns the response body map. Throw MgmtError to answer with an error. */
export type HandlerFn<Req = unknown, Rsp = unknown> = (ctx: HandlerContext<Req>) => Rsp | Promise<Rsp>;

export interface MgmtHandler {
  read?: RegisteredHandler;
  write?: RegisteredHandler;
}

export interface RegisteredHandler {
  fn: HandlerFn;
  /** The command table entry, when the handler was defined from one (its `decode` or `request` schema decodes requests). */
  command?: Command;
}

export interface MgmtGroup {
  id: number;
  /** Name as enumeration details reports it (`os mgmt`). */
  name: string;
  /** Handlers indexed by command id (holes allowed). */
  handlers: Array<MgmtHandler | undefined>;
  /** v1 translation of this group's error codes; defaults to the table in core/error-codes. */
  translateError?: (rc: number) => number;
}

export class GroupRegistry {
  private readonly groups = new Map<number, MgmtGroup>();

  /** Registers a group; a group with the same id must be unregistered first. */
  registerGroup(group: MgmtGroup): void {
    if (this.groups.has(group.id)) throw new McuMgrError('BUSY', `group ${group.id} is already registered`);
    this.groups.set(group.id, group);
  }

  unregisterGroup(group: MgmtGroup | number): void {
    const id = typeof group === 'number' ? group : group.id;
    this.groups.delete(id);
  }

  findGroup(id: number): MgmtGroup | undefined {
    return this.groups.get(id);
  }

  /** The handler for (group, command id); undefined when the group or id is unknown or has neither fn. */
  findHandler(groupId: number, commandId: number): MgmtHandler | undefined {
    const g = this.groups.get(groupId);
    return g ? this.getHandler(g, commandId) : undefined;
  }

  getHandler(group: MgmtGroup, commandId: number): MgmtHandler | undefined {
    const h = group.handlers[commandId];
    return h && (h.read || h.write) ? h : undefined;
  }

  /** Groups in registration order (the order enumeration reports). */
  list(): MgmtGroup[] {
    return [...this.groups.values()];
  }

  translateV1(group: number, rc: number): number {
    const g = this.groups.get(group);
    return g?.translateError ? g.translateError(rc) : translateToV1(group, rc);
  }
}

/**
 * Builds a group from command-table entries and their handler functions:
 * `defineGroup(0, 'os mgmt', [handle(commands.os.echo, ({ body }) => ({ r: body.d })), ...])`.
 */
export function defineGroup(id: number, name: string, entries: ReadonlyArray<readonly [Command, HandlerFn]>): MgmtGroup {
  const handlers: Array<MgmtHandler | undefined> = [];
  for (const [command, fn] of entries) {
    if (command.group !== id) throw new RangeError(`${command.name} belongs to group ${command.group}, not ${id}`);
    const h = handlers[command.id] ?? {};
    h[command.op] = { fn, command };
    handlers[command.id] = h;
  }
  return { id, name, handlers };
}

/**
 * Pairs a command with its handler, typed from the command table: the handler gets the request
 * as the command's `decode` yields it (lenient commands) or as its `request` schema checked it.
 */
export function handle<Req, Rsp, Body>(command: Command<Req, Rsp, Body>, fn: HandlerFn<Body, Rsp>): readonly [Command, HandlerFn] {
  return [command as Command, fn as HandlerFn];
}
