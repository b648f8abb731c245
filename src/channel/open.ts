/**
 * How a channel handle comes to be: its arguments checked, its segment created or opened (by
 * name, or from a descriptor), the header written or checked against the codec, the ring mapped
 * and a participant slot taken, all in a {@linkcode RingLease}; on any failure, everything made
 * so far let go. The static methods of `Channel` call these functions with its private
 * constructor. Internal: the public entry is src/channel/mod.ts.
 *
 * @module
 */

import type { Codec } from "../codec.ts";
import type { FdLike } from "../fd.ts";
import { adoptMemoryFd } from "../_memory_fd.ts";
import { markCreated } from "../_open_or_create.ts";
import { type OpenOrCreateSharedMemoryOptions, SharedMemory } from "../shm.ts";
import { Mutex } from "../sync/mutex.ts";
import { optionsObject, ownOptions, validateName } from "../_validate.ts";
import {
  DATA_SEMAPHORE,
  HEADER,
  mapRing,
  readHeader,
  RECEIVER_LOCK,
  SENDER_LOCK,
  SPACE_SEMAPHORE,
  validateCapacity,
  writeHeader,
} from "./layout.ts";
import { releaseRing, type RingLease } from "./lease.ts";
import {
  type CreateChannelOptions,
  defaultCodec,
  type OpenChannelOptions,
  type OpenOrCreateChannelOptions,
  validateCodec,
  validateFlag,
} from "./options.ts";
import { Registry, validateRole } from "./registry.ts";
import { initWaits } from "./wait.ts";

/** What a handle is made of: its lease on the ring, the ring's shape, and its codec. */
export interface ChannelParts<T> {
  readonly lease: RingLease;
  /** The ring's size in bytes, from the header. */
  readonly capacity: number;
  /** Whether the ring is in the multi mode, from the header. */
  readonly multi: boolean;
  readonly codec: Codec<T>;
  /** Whether this handle created the name and removes it on close. */
  readonly ownsName: boolean;
}

/** Makes a handle of its parts: the channel's private constructor. */
export type MakeChannel<T, H> = (parts: ChannelParts<T>) => H;

/** What a new channel's header is to say, and whether its creator owns its name. */
interface Initialise {
  readonly capacity: number;
  readonly multi: boolean;
  readonly ownsName: boolean;
}

/**
 * `Channel.create`: checks the options (each read once: a name read twice, undefined and then
 * a name, made an anonymous channel that its close() tried to unlink), makes the segment,
 * anonymous or named, and a handle that initialises it.
 */
export function createChannel<T, H extends object>(
  options: CreateChannelOptions<T> | undefined,
  make: MakeChannel<T, H>,
): H {
  const own = ownOptions(options, "channel options");
  const { capacity, codec, role, multi, persist } = checkCreation(own);
  const size = HEADER + capacity;
  const memory = own.name === undefined
    ? SharedMemory.anonymous({ size })
    : SharedMemory.create(own.name, { size, mode: own.mode, persist });
  return markCreated(
    adopt(memory, codec, role, make, {
      capacity,
      multi,
      ownsName: own.name !== undefined && !persist,
    }),
  );
}

/**
 * `Channel.openOrCreate` and its sync form: checks the arguments; returns the segment's options
 * (whose `init` makes the handle that writes the header) and how to make the handle of the
 * segment either form gets.
 */
export function openOrCreatePlan<T, H extends object>(
  name: string,
  options: OpenOrCreateChannelOptions<T> | undefined,
  make: MakeChannel<T, H>,
): { memory: OpenOrCreateSharedMemoryOptions; adopt: (memory: SharedMemory) => H } {
  validateName(name, "channel");
  const own = ownOptions(options, "channel options");
  const { capacity, codec, role, multi, persist } = checkCreation(own);
  let channel: H | undefined;
  return {
    memory: {
      size: HEADER + capacity,
      mode: own.mode,
      persist,
      timeout: own.timeout,
      signal: own.signal,
      init: (created) => {
        channel = adopt(created, codec, role, make, { capacity, multi, ownsName: !persist });
      },
    },
    adopt: (memory) => channel ? markCreated(channel) : adopt(memory, codec, role, make),
  };
}

/** `Channel.open`: a handle of the named channel that another process created. */
export function openChannel<T, H>(
  name: string,
  options: OpenChannelOptions<T> | undefined,
  make: MakeChannel<T, H>,
): H {
  const { codec, role } = checkOpening(options);
  return adopt(SharedMemory.open(name), codec, role, make);
}

/**
 * `Channel.fromFd`: a handle of the channel in the segment of `fd`, with the ownership rules of
 * `SharedMemory.fromFd` (src/_memory_fd.ts).
 */
export function channelFromFd<T, H>(
  fd: FdLike,
  options: OpenChannelOptions<T> | undefined,
  make: MakeChannel<T, H>,
): H {
  const { codec, role } = checkOpening(options);
  return adoptMemoryFd(fd, (memory) => adopt(memory, codec, role, make));
}

/** What creating a channel takes, checked in this order; each option read once. */
function checkCreation<T>(own: Omit<CreateChannelOptions<T>, "name">): {
  capacity: number;
  codec: Codec<T>;
  role: number;
  multi: boolean;
  persist: boolean;
} {
  return {
    capacity: validateCapacity(own.capacity ?? 1 << 20),
    codec: validateCodec<T>(own.codec ?? defaultCodec<T>()),
    role: validateRole(own.role ?? "both"),
    multi: validateFlag(own.multi, "multi"),
    persist: validateFlag(own.persist, "persist"),
  };
}

/** What opening a channel takes, checked: the codec, then the role. */
function checkOpening<T>(options: OpenChannelOptions<T> | undefined): {
  codec: Codec<T>;
  role: number;
} {
  const own = optionsObject(options, "channel options");
  return {
    codec: validateCodec<T>(own.codec ?? defaultCodec<T>()),
    role: validateRole(own.role ?? "both"),
  };
}

/** Makes the handle of a segment, with `initialise` a new channel's; closes `memory` on failure. */
function adopt<T, H>(
  memory: SharedMemory,
  codec: Codec<T>,
  role: number,
  make: MakeChannel<T, H>,
  initialise?: Initialise,
): H {
  try {
    return make(attach(memory, codec, role, initialise));
  } catch (error) {
    memory.close();
    throw error;
  }
}

/**
 * Takes a lease on the channel in `memory`: with `initialise`, records this process as its
 * creator and writes the header; checks the header against the segment and the codec, maps the
 * ring, makes (or, opening, reaches) the semaphores and the multi mode's locks, and takes a
 * participant slot. On failure what it mapped is let go; the caller closes the memory.
 */
function attach<T>(
  memory: SharedMemory,
  codec: Codec<T>,
  role: number,
  initialise?: Initialise,
): ChannelParts<T> {
  if (initialise) {
    new Registry(memory.buffer).recordCreator();
    writeHeader(memory, initialise.capacity, initialise.multi, codec.name);
  }
  const { capacity, multi } = readHeader(memory, codec.name);
  const ring = mapRing(memory.fd, capacity);
  const lease: RingLease = {
    memory,
    ring,
    cells: new Int32Array(ring.buffer, 0, HEADER / 4),
    data: Deno.UnsafePointer.offset(ring.base, DATA_SEMAPHORE) as Deno.PointerObject,
    space: Deno.UnsafePointer.offset(ring.base, SPACE_SEMAPHORE) as Deno.PointerObject,
    registry: new Registry(ring.buffer),
    role,
    creator: initialise !== undefined,
    slot: -1,
    senderLock: null,
    receiverLock: null,
    window: null,
  };
  try {
    if (initialise) initWaits(lease.data, lease.space);
    if (multi) {
      const lock = initialise ? Mutex.init : Mutex.at;
      lease.senderLock = lock(memory, SENDER_LOCK);
      lease.receiverLock = lock(memory, RECEIVER_LOCK);
    }
    lease.slot = lease.registry.attach(role);
  } catch (error) {
    releaseRing(lease, false); // the caller closes the memory
    throw error;
  }
  return { lease, capacity, multi, codec, ownsName: initialise?.ownsName ?? false };
}
