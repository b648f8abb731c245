/**
 * Properties of the core exports of mod.ts: IpcError, isSystemError, OwnedFd and inheritedFd
 * (which must close only the descriptor they are given, never one a wrapped number reaches),
 * and the codecs.
 *
 * @module
 */

import { codecs, inheritedFd, IpcError, isSystemError, OwnedFd, SharedMemory } from "../../mod.ts";
import { either, fc, hostile, options, type Ref } from "./arbitraries.ts";
import { FdWatch, refusedFd, sacrificialFd, wrappedFd } from "./fds.ts";
import type { Case, Property, PropertyGroup } from "./harness.ts";
import { memberProperties, useOtherHandle } from "./members.ts";

let watch: FdWatch;
let other: SharedMemory | undefined;

/**
 * A descriptor number: one the case owns, wrapped numbers, or hostile values. Hostile values
 * that are valid descriptor numbers name real descriptors (stdin, Deno's own), which the call
 * may rightly close: only the refused ones are generated.
 */
const fdNumber = fc.oneof(
  { weight: 3, arbitrary: sacrificialFd },
  { weight: 3, arbitrary: wrappedFd },
  { weight: 4, arbitrary: refusedFd },
);

function resolveFd(ref: Ref, c: Case): unknown {
  return watch.resolve(ref, c);
}

const untouched = () => watch.assertUntouched();

/** Values for the codecs: what JSON and structured clone take, and hostile ones. */
const codecValue = fc.oneof(fc.jsonValue(), hostile, fc.uint8Array({ maxLength: 64 }));

/** Errors a codec may throw for a value it cannot encode or bytes it cannot decode. */
function codecError(error: unknown): boolean {
  if (error instanceof DOMException && error.name === "DataCloneError") return true;
  if (error instanceof SyntaxError) return true; // JSON.parse of bytes that are no JSON
  if (error instanceof Error && /Unable to deserialize/.test(error.message)) return true;
  return error instanceof TypeError && /serialize a BigInt|circular structure/.test(error.message);
}

function codecProperties(): Property[] {
  const properties: Property[] = [];
  for (const [name, codec] of Object.entries(codecs)) {
    properties.push({
      name: `codecs.${name}.encode() encodes or refuses every value`,
      covers: [`codecs.${name}.encode`],
      runs: 2000,
      args: [codecValue],
      allow: codecError,
      call: ([value]) => {
        const bytes = (codec.encode as (value: unknown) => unknown)(value);
        if (!(bytes instanceof Uint8Array)) throw new Error(`encode gave ${bytes}`);
      },
    });
    properties.push({
      name: `codecs.${name}.decode() decodes or refuses any bytes, and round-trips encode()`,
      covers: [`codecs.${name}.decode`],
      runs: 2000,
      args: [either(fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        codecValue.map((value) => {
          try {
            return (codec.encode as (value: unknown) => Uint8Array)(value);
          } catch {
            return new Uint8Array();
          }
        }),
      ))],
      allow: codecError,
      call: ([bytes]) => (codec.decode as (bytes: unknown) => unknown)(bytes),
    });
  }
  return properties;
}

export const group: PropertyGroup = {
  covers: [
    "new IpcError",
    "isSystemError",
    "new OwnedFd",
    "inheritedFd",
    ...["fd", "closed", "inheritable", "dup", "release", "close", "[Symbol.dispose]"].map(
      (member) => `OwnedFd.prototype.${member}`,
    ),
    ...Object.keys(codecs).flatMap((name) => [`codecs.${name}.encode`, `codecs.${name}.decode`]),
  ],
  properties(): Property[] {
    watch = new FdWatch();
    other = SharedMemory.anonymous({ size: 4096 });
    useOtherHandle(() => other!);
    return [
      {
        name: "new IpcError() keeps its details or refuses them",
        covers: ["new IpcError"],
        runs: 2000,
        args: [
          // Not a symbol: new Error(symbol) throws JavaScript's own TypeError, as any Error does.
          either(fc.string()).filter((message) => typeof message !== "symbol"),
          options({
            code: fc.constantFrom("EEXIST", "ENOSPC"),
            errno: fc.integer({ min: 1, max: 133 }),
            syscall: fc.constantFrom("shm_open", "mmap"),
            objectName: fc.constantFrom("/jobs", null),
          }, 4),
          either(fc.constant({ cause: 1 })),
        ],
        call: ([message, details, errorOptions]) => {
          const error = new IpcError(message as never, details as never, errorOptions as never);
          if (!(error instanceof Error) || error.name !== "IpcError") {
            throw new Error("not an IpcError");
          }
        },
      },
      {
        name: "isSystemError() answers with a boolean for any value",
        covers: ["isSystemError"],
        runs: 3000,
        args: [fc.oneof(
          hostile,
          fc.constant(Object.assign(new Error("x"), {
            code: "EEXIST",
            errno: 17,
            syscall: "shm_open",
          })),
        )],
        call: ([value]) => {
          const answer = isSystemError(value);
          if (typeof answer !== "boolean") throw new Error(`isSystemError gave ${answer}`);
        },
      },
      {
        name: "new OwnedFd(fd).close() closes only fd, never one a wrapped number reaches",
        covers: ["new OwnedFd"],
        runs: 4000,
        args: [fdNumber],
        resolve: resolveFd,
        call: ([fd]) => new OwnedFd(fd as never).close(),
        after: untouched,
      },
      {
        name: "inheritedFd(fd) takes only an open fd >= 3 and touches no other",
        covers: ["inheritedFd"],
        runs: 4000,
        args: [fc.oneof(fdNumber, fc.constantFrom(0, 1, 2))],
        resolve: resolveFd,
        call: ([fd]) => inheritedFd(fd as never),
        after: untouched,
      },
      ...memberProperties<OwnedFd>({
        name: "OwnedFd",
        cls: OwnedFd,
        make: (c) => watch.owned(c),
        members: {
          fd: { after: untouched },
          closed: { after: untouched },
          inheritable: {
            args: [either(fc.boolean())],
            runs: 1500,
            call: (owned, [value]) => {
              const { get, set } = Object.getOwnPropertyDescriptor(
                OwnedFd.prototype,
                "inheritable",
              )!;
              if (value === undefined) return get!.call(owned);
              set!.call(owned, value);
              const now = get!.call(owned);
              if (now !== value) throw new Error(`inheritable = ${String(value)} made it ${now}`);
              return undefined;
            },
            after: untouched,
          },
          dup: { after: untouched },
          release: {
            // The released number is the case's now: close it, as its new owner.
            call: (owned) => new OwnedFd(OwnedFd.prototype.release.call(owned)).close(),
            after: untouched,
          },
          close: { after: untouched },
          "[Symbol.dispose]": { after: untouched },
        },
      }),
      ...codecProperties(),
    ];
  },
  teardown() {
    other?.close();
    watch.close();
  },
};
