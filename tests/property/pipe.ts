/**
 * Properties of @posix/ipc/pipe: pipe() capacities, FIFOs, the ends' constructors (which take
 * only the descriptor given), and reads and writes with hostile buffers, data and wait options;
 * every wait ends once aborted or closed. Runs in a temporary working directory, so that a
 * relative FIFO path a property makes lands there.
 *
 * @module
 */

import { createFifo, openFifo, pipe, PipeEnd, ReadEnd, WriteEnd } from "../../mod.ts";
import { anyTimeout, either, fc, hostile, options, Ref, ref } from "./arbitraries.ts";
import { FdWatch, refusedFd, sacrificialFd, wrappedFd } from "./fds.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { constructorProperty, memberProperties, useOtherHandle } from "./members.ts";

let watch: FdWatch;
let directory: string;
let home: string;
let counter = 0;

/** Data to write: bytes, text, and hostile values. */
const data = either(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.string({ maxLength: 32 })), 2);

/** Buffers to read into, and hostile values. */
const buffer = either(
  fc.oneof(
    fc.integer({ min: 0, max: 64 }).map((n) => new Uint8Array(n)),
    fc.constant(new Uint8Array(new ArrayBuffer(8)).subarray(2, 6)),
  ),
  2,
);

/** Wait options whose signal the harness can abort: a wait that may last is always ended. */
const abortableWait = fc.oneof(
  fc.record({
    timeout: either(anyTimeout, 3),
    signal: fc.oneof(
      {
        weight: 4,
        arbitrary: fc.constantFrom(
          new Ref("signal", "never"),
          new Ref("signal", "aborted"),
          new Ref("signal", "soon"),
        ),
      },
      // Not `undefined`: with no timeout drawn, that is no way to end the wait, which then
      // rightly lasts for ever (seed 1176451699 drew it: `{ signal: undefined }`).
      { weight: 1, arbitrary: hostile.filter((value) => value !== undefined) },
    ),
  }, { requiredKeys: ["signal"] }),
  fc.record({ timeout: fc.constantFrom(0, 1, 10, 50) }),
  // Only values that are no options at all: an object without timeout or signal would rightly
  // wait for ever.
  hostile.filter((value) => value !== undefined && (value === null || typeof value !== "object")),
);

function resolvePipe(marker: Ref, c: Case): unknown {
  if (marker.kind === "fifo") {
    const path = `${directory}/fifo-${++counter}`;
    if (marker.detail === "existing") createFifo(path);
    c.defer(() => {
      try {
        Deno.removeSync(path);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    });

    return path;
  }
  if (marker.kind === "end") {
    const ends = pipe();
    c.defer(() => ends[Symbol.dispose]());
    return marker.detail === "reader" ? ends.reader : ends.writer;
  }
  return watch.resolve(marker, c);
}

/** A read end with data waiting and, when `eof`, its writer closed (reads never block). */
function readerWithData(c: Case, eof: boolean): ReadEnd {
  const ends = pipe();
  ends.writer.writeSync(new Uint8Array([1, 2, 3, 4, 5]));
  if (eof) ends.writer.close();
  c.defer(() => ends[Symbol.dispose]());
  return ends.reader;
}

const untouched = () => watch.assertUntouched();

export const group: PropertyGroup = {
  covers: [
    "pipe",
    "createFifo",
    "openFifo",
    "new PipeEnd",
    "new ReadEnd",
    "new WriteEnd",
    ...["fd", "closed", "close", "[Symbol.dispose]"].map((m) => `PipeEnd.prototype.${m}`),
    ...["read", "readSync", "readable"].map((m) => `ReadEnd.prototype.${m}`),
    ...["write", "writeSync", "writable"].map((m) => `WriteEnd.prototype.${m}`),
  ],
  properties(): Property[] {
    watch = new FdWatch();
    home = Deno.cwd();
    directory = Deno.makeTempDirSync({ prefix: "pipc-property-pipe-" });
    Deno.chdir(directory);
    const otherEnds = pipe();
    useOtherHandle(() => otherEnds.reader);
    cleanupOther = () => otherEnds[Symbol.dispose]();
    const endConstructor = (name: string, cls: unknown): Property => ({
      name: `new ${name}(fd, label) takes only the descriptor given`,
      covers: [`new ${name}`],
      runs: 2000,
      args: [
        fc.oneof(sacrificialFd, wrappedFd, ref("owned-fd"), ref("end", "reader"), refusedFd),
        either(fc.constantFrom("pipe", "label")),
      ],
      resolve: resolvePipe,
      call: ([fd, label]) => new (cls as new (fd: unknown, label: unknown) => unknown)(fd, label),
      after: untouched,
    });
    return [
      {
        name: "pipe() makes a pipe of the capacity asked or refuses it",
        covers: ["pipe"],
        runs: 2500,
        args: [options({ capacity: fc.constantFrom(1, 4096, 65536, 1 << 20, 2 ** 31 - 1) })],
        call: ([opts]) => pipe(opts as never),
      },
      {
        name: "createFifo() makes a FIFO or refuses the path and mode",
        covers: ["createFifo"],
        runs: 2000,
        args: [
          fc.oneof(ref("fifo", "fresh"), ref("fifo", "existing"), hostile),
          options({ mode: fc.constantFrom(0o600, 0o644, 0) }),
        ],
        resolve: resolvePipe,
        call: ([path, opts]) => {
          createFifo(path as never, opts as never);
          // A relative hostile path made a FIFO here: remove it.
          if (typeof path === "string" && !path.startsWith("/")) Deno.removeSync(path);
        },
      },
      {
        name: "openFifo() waits for its peer until its timeout or signal, or refuses",
        covers: ["openFifo"],
        runs: 800,
        args: [
          fc.oneof(ref("fifo", "existing"), ref("fifo", "fresh"), hostile),
          either(fc.constantFrom("read", "write")),
          abortableWait,
        ],
        resolve: resolvePipe,
        call: ([path, direction, opts]) =>
          openFifo(path as never, direction as never, opts as never),
      },
      constructorProperty("PipeEnd", PipeEnd, 300, [refusedFd, hostile]),
      endConstructor("ReadEnd", ReadEnd),
      endConstructor("WriteEnd", WriteEnd),
      ...memberProperties<PipeEnd>({
        name: "PipeEnd",
        cls: PipeEnd,
        make: (c) => readerWithData(c, false),
        members: {
          fd: {},
          closed: {},
          close: { after: untouched },
          "[Symbol.dispose]": { after: untouched },
        },
      }),
      ...memberProperties<ReadEnd>({
        name: "ReadEnd",
        cls: ReadEnd,
        make: (c) => readerWithData(c, true),
        members: {
          read: { args: [buffer, abortableWait], runs: 2000 },
          readSync: { args: [buffer], runs: 2000 },
          readable: {
            call: async (end) => {
              const get = Object.getOwnPropertyDescriptor(ReadEnd.prototype, "readable")!.get!;
              const stream = get.call(end) as ReadableStream<Uint8Array>;
              const reader = stream.getReader();
              await reader.read();
              await reader.cancel();
            },
          },
        },
      }),
      ...memberProperties<WriteEnd>({
        name: "WriteEnd",
        cls: WriteEnd,
        make: (c) => resolvePipe(new Ref("end", "writer"), c) as WriteEnd,
        members: {
          write: { args: [data, abortableWait], runs: 2000 },
          writeSync: { args: [data], runs: 2000 },
          writable: {
            args: [data],
            call: async (end, [chunk]) => {
              const get = Object.getOwnPropertyDescriptor(WriteEnd.prototype, "writable")!.get!;
              const writer = (get.call(end) as WritableStream<unknown>).getWriter();
              try {
                await writer.write(chunk);
              } finally {
                await writer.abort().catch(() => {});
              }
            },
          },
        },
      }),
    ];
  },
  teardown() {
    cleanupOther?.();
    watch.close();
    Deno.chdir(home);
    Deno.removeSync(directory, { recursive: true });
  },
};

let cleanupOther: (() => void) | undefined;
