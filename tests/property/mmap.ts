/**
 * Properties of @posix/ipc/mmap: mapFile and Mapping.fromFd with hostile paths, descriptors,
 * offsets and lengths (a range past the end must be an error, never a SIGBUS), pageSize, and
 * every Mapping member on live, closed and wrong receivers.
 *
 * @module
 */

import { mapFile, Mapping, type Mapping as MappingType, pageSize } from "../../mod.ts";
import { tempFile } from "../helpers.ts";
import { either, fc, hostile, options, type Ref, ref } from "./arbitraries.ts";
import { FdWatch, notAnFd, sacrificialFd, wrappedFd } from "./fds.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { constructorProperty, memberProperties, useOtherHandle } from "./members.ts";

let watch: FdWatch;
let file: string;
let other: MappingType | undefined;

const FILE_SIZE = 3 * 4096 + 100;

/** Offsets and lengths around pages and the file's end. */
const span = fc.oneof(
  fc.integer({ min: 0, max: FILE_SIZE + 4096 }),
  fc.constantFrom(0, 1, 4095, 4096, 8192, FILE_SIZE, FILE_SIZE + 1, 2 ** 31, 2 ** 32),
);

const mapOptions = options({
  write: fc.boolean(),
  private: fc.boolean(),
  offset: span,
  length: span,
  label: fc.constantFrom("label", ""),
});

function resolveMmap(marker: Ref, c: Case): unknown {
  if (marker.kind === "path") {
    if (marker.detail === "url") return new URL(`file://${file}`);
    if (marker.detail === "empty") {
      const empty = tempFile();
      c.defer(() => Deno.removeSync(empty));
      return empty;
    }
    if (marker.detail === "dir") return Deno.makeTempDirSync().replace(/.*/, "/tmp");
    return file;
  }
  if (marker.kind === "file-fd") {
    const opened = Deno.openSync(file, { read: true, write: true });
    c.defer(() => opened.close());
    // The FsFile's descriptor, as a number: the one /proc says points at the file.
    for (const entry of Deno.readDirSync("/proc/self/fd")) {
      try {
        if (Deno.readLinkSync(`/proc/self/fd/${entry.name}`) === file) {
          return { fd: Number(entry.name) };
        }
      } catch {
        // closed meanwhile
      }
    }
    throw new Error("cannot find the file's descriptor");
  }
  return watch.resolve(marker, c);
}

export const group: PropertyGroup = {
  covers: [
    "pageSize",
    "mapFile",
    "new Mapping",
    "Mapping.fromFd",
    ...[
      "buffer",
      "bytes",
      "length",
      "shared",
      "closed",
      "unsafePointer",
      "sync",
      "advise",
      "close",
      "[Symbol.dispose]",
    ].map((member) => `Mapping.prototype.${member}`),
  ],
  properties(): Property[] {
    watch = new FdWatch();
    file = tempFile(new Uint8Array(FILE_SIZE).fill(7));
    other = mapFile(file);
    useOtherHandle(() => Object.create(other!));
    const touch = (mapping: unknown) => {
      if (!(mapping instanceof Mapping)) return;
      const bytes = mapping.bytes;
      if (bytes.length) void (bytes[0]! + bytes[bytes.length - 1]!);
    };
    return [
      {
        name: "pageSize() is a power of two",
        covers: ["pageSize"],
        runs: 200,
        args: [hostile],
        call: () => {
          const size = pageSize();
          if (!(size >= 4096 && (size & (size - 1)) === 0)) throw new Error(`page ${size}`);
        },
      },
      {
        name: "mapFile() maps a range inside the file or refuses it, never past the end",
        covers: ["mapFile"],
        runs: 4000,
        args: [
          fc.oneof(
            ref("path", "file"),
            ref("path", "url"),
            ref("path", "empty"),
            ref("path", "dir"),
            hostile,
          ),
          mapOptions,
        ],
        resolve: resolveMmap,
        call: ([path, opts]) => {
          const mapping = mapFile(path as never, opts as never);
          touch(mapping);
          return mapping;
        },
      },
      constructorProperty("Mapping", Mapping),
      {
        name: "Mapping.fromFd() maps only the descriptor given, inside its file",
        covers: ["Mapping.fromFd"],
        runs: 3000,
        args: [
          fc.oneof(ref("file-fd"), sacrificialFd, wrappedFd, ref("owned-fd"), notAnFd),
          mapOptions,
        ],
        resolve: resolveMmap,
        call: ([fd, opts]) => {
          const mapping = Mapping.fromFd(fd as never, opts as never);
          touch(mapping);
          return mapping;
        },
        after: () => watch.assertUntouched(),
      },
      ...memberProperties<MappingType>({
        name: "Mapping",
        cls: Mapping,
        make: () => mapFile(file, { write: true, offset: 4096, length: 4096 }),
        members: {
          buffer: {},
          bytes: { call: (mapping) => touch(mapping) },
          length: {},
          shared: {},
          closed: {},
          unsafePointer: {},
          sync: { args: [options({ async: fc.boolean() })], runs: 1000 },
          advise: {
            args: [
              either(fc.constantFrom("normal", "random", "sequential", "willneed", "dontneed")),
            ],
            runs: 2000,
          },
          close: {},
          "[Symbol.dispose]": {},
        },
      }),
    ];
  },
  teardown() {
    other?.close();
    watch.close();
    Deno.removeSync(file);
  },
};
