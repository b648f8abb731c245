/**
 * What the groups of the ring-based handles (`Channel`, `Topic`) share: hostile names and codecs,
 * a resolver for names, handles and descriptors, and the properties of `open()` and `fromFd()`,
 * which both classes take with the same rules.
 *
 * @module
 */

import { codecs } from "../../mod.ts";
import { uniqueName } from "../helpers.ts";
import { fc, hostile, options, type Ref, ref } from "./arbitraries.ts";
import { type FdWatch, notAnFd, sacrificialFd, wrappedFd } from "./fds.ts";
import type { Case, Property } from "./harness.ts";

/** A fresh name, a name that exists, or a hostile value. */
export const ringName: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: ref("name", "fresh") },
  { weight: 2, arbitrary: ref("name", "existing") },
  { weight: 4, arbitrary: hostile },
);

/** The library's codecs, and objects that are almost codecs. */
export const ringCodec: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(codecs.bytes, codecs.text, codecs.json, codecs.structured),
  fc.constantFrom({ name: "x", encode: () => new Uint8Array(1), decode: () => 1 }, { name: "x" }, {
    encode: 1,
    decode: 2,
  }),
);

/** A ring-based class, as its group sees it. */
export interface RingClass {
  /** The class's name, and the `ref` kind of a live handle of it ("channel", "topic"). */
  readonly label: string;
  readonly kind: string;
  /** The prefix of its test names. */
  readonly prefix: string;
  create(options: { name?: string; capacity: number }): { close(): void };
  open(name: unknown, options: unknown): unknown;
  fromFd(fd: unknown, options: unknown): unknown;
}

/**
 * The resolver of a group's refs: a fresh or existing name, a live handle, else a descriptor
 * of `watch()`.
 */
export function ringResolver(cls: RingClass, watch: () => FdWatch) {
  return (marker: Ref, c: Case): unknown => {
    if (marker.kind === "name") {
      const fresh = uniqueName(cls.prefix);
      if (marker.detail === "existing") {
        const existing = cls.create({ name: fresh, capacity: 4096 });
        c.defer(() => existing.close());
      }
      return fresh;
    }
    if (marker.kind === cls.kind) {
      const handle = cls.create({ capacity: 4096 });
      c.defer(() => handle.close());
      return handle;
    }
    return watch().resolve(marker, c);
  };
}

/** The properties of `open()` and `fromFd()`, with hostile roles `role`. */
export function openProperties(
  cls: RingClass,
  role: fc.Arbitrary<unknown>,
  watch: () => FdWatch,
): Property[] {
  const resolve = ringResolver(cls, watch);
  const lower = cls.kind;
  return [
    {
      name: `${cls.label}.open() opens a named ${lower} or refuses its name and options`,
      covers: [`${cls.label}.open`],
      runs: 2000,
      args: [ringName, options({ codec: ringCodec, role })],
      resolve,
      call: ([name, opts]) => cls.open(name, opts),
    },
    {
      name: `${cls.label}.fromFd() adopts only a ${lower}'s descriptor, never a wrapped one`,
      covers: [`${cls.label}.fromFd`],
      runs: 2000,
      args: [
        fc.oneof(ref(lower), sacrificialFd, wrappedFd, ref("owned-fd"), notAnFd),
        options({ codec: ringCodec, role }),
      ],
      resolve,
      call: ([fd, opts]) => cls.fromFd(fd, opts),
      after: () => watch().assertUntouched(),
    },
  ];
}

/**
 * The member spec of `[Symbol.asyncIterator]` on a receiving class: takes one `next()` of an
 * iterator made on the receiver (live, closed or wrong), then returns it.
 */
export function iteratorMember(
  prototype: { [Symbol.asyncIterator](): AsyncIterator<unknown> },
): { call: (receiver: unknown) => Promise<unknown> } {
  return {
    call: (receiver) => {
      const iterator = prototype[Symbol.asyncIterator].call(receiver);
      return iterator.next().finally(() => iterator.return?.());
    },
  };
}
