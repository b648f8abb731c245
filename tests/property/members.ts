/**
 * Properties for a class's prototype members, each called on a live receiver, on a closed one,
 * and on receivers of the wrong class (a plain object, an object made from the class's own
 * prototype without its private state, another library handle), with hostile arguments.
 *
 * @module
 */

import { selectable } from "../../mod.ts";
import { fc, hostile, type Ref, ref } from "./arbitraries.ts";
import type { Case, Outcome, Property } from "./harness.ts";

/** How to call one member. */
export interface MemberSpec<T> {
  /** One arbitrary per argument (none for accessors and argument-less methods). */
  args?: fc.Arbitrary<unknown>[];
  /** Cases per run. Default 600. */
  runs?: number;
  /** A custom call; default: the method with the arguments, or the getter. */
  call?: (receiver: T, args: unknown[], c: Case) => unknown;
  /** Extra allowed errors (a codec's own). */
  allow?: (error: unknown, args: unknown[]) => boolean;
  /** A further check after the call. */
  after?: (outcome: Outcome, args: unknown[], c: Case) => void | Promise<void>;
  /** Ms before a pending call is aborted and its receiver closed. */
  stallMs?: number;
  /** Only live receivers (a call that would block on a closed or wrong one is not the point). */
  liveOnly?: boolean;
}

/** A class whose members get properties. */
export interface ClassSpec<T> {
  /** The class's exported name. */
  name: string;
  /** The class. */
  cls: { prototype: object };
  /** A live instance for one case; closed by {@linkcode close} when the case ends. */
  make: (c: Case) => T;
  /** Closes an instance (default: `close()`, else `[Symbol.dispose]()`). */
  close?: (instance: T) => unknown;
  /** Its members by name ("send", "[Symbol.dispose]"), each with how to call it. */
  members: Record<string, MemberSpec<T>>;
  /** Resolves the markers of the members' arguments (descriptors to send, say). */
  resolve?: (ref: Ref, c: Case) => unknown;
}

/** Which receiver a case calls the member on. */
const receiver: fc.Arbitrary<Ref> = fc.oneof(
  { weight: 12, arbitrary: ref("receiver", "live") },
  { weight: 2, arbitrary: ref("receiver", "closed") },
  { weight: 1, arbitrary: ref("receiver", "prototype-only") },
  { weight: 1, arbitrary: ref("receiver", "plain object") },
  { weight: 1, arbitrary: ref("receiver", "other handle") },
);

const SYMBOLS: Record<string, symbol> = {
  "[Symbol.dispose]": Symbol.dispose,
  "[Symbol.asyncDispose]": Symbol.asyncDispose,
  "[Symbol.asyncIterator]": Symbol.asyncIterator,
  "[Symbol.iterator]": Symbol.iterator,
  "[@posix/ipc/selectable]": selectable,
};

function closeOf<T>(spec: ClassSpec<T>): (instance: T) => unknown {
  return spec.close ?? ((instance) => {
    const object = instance as { close?: () => void; [Symbol.dispose]?: () => void };
    if (typeof object.close === "function") object.close();
    else object[Symbol.dispose]?.();
  });
}

/** An object of another class of the library, for "other handle" receivers. */
let otherHandle: (() => object) | undefined;

/** Sets what the "other handle" receiver is (a group's own pool object). */
export function useOtherHandle(make: () => object): void {
  otherHandle = make;
}

/** One property per member of `spec`. */
export function memberProperties<T>(spec: ClassSpec<T>): Property[] {
  const close = closeOf(spec);
  return Object.entries(spec.members).map(([key, member]): Property => {
    const property = SYMBOLS[key] ?? key;
    const descriptor = Object.getOwnPropertyDescriptor(spec.cls.prototype, property) ??
      Object.getOwnPropertyDescriptor(Object.getPrototypeOf(spec.cls.prototype), property);
    if (!descriptor) throw new Error(`${spec.name} has no member ${key}`);
    const covers = Object.hasOwn(spec.cls.prototype, property)
      ? [`${spec.name}.prototype.${key}`]
      : [];
    const invoke = (target: unknown, args: unknown[]): unknown => {
      if (member.call) return member.call(target as T, args, undefined as never);
      if (descriptor.get && args.length === 0) return descriptor.get.call(target);
      if (descriptor.set) return descriptor.set.call(target, args[0]);
      return (descriptor.value as (...args: unknown[]) => unknown).apply(target, args);
    };
    return {
      name: `${spec.name}.prototype.${key} on live, closed and wrong receivers`,
      covers,
      runs: member.runs ?? 600,
      stallMs: member.stallMs,
      allow: member.allow,
      after: member.after,
      args: [member.liveOnly ? ref("receiver", "live") : receiver, ...(member.args ?? [])],
      resolve: (marker: Ref, c: Case) => {
        if (marker.kind !== "receiver") {
          if (spec.resolve) return spec.resolve(marker, c);
          throw new Error(`no resolver for ${marker}`);
        }
        switch (marker.detail) {
          case "live":
          case "closed": {
            const instance = spec.make(c);
            c.defer(() => close(instance));
            c.onStall(() => close(instance));
            if (marker.detail === "closed") close(instance);
            return instance;
          }
          case "prototype-only":
            c.wrongReceiver = true;
            return Object.create(spec.cls.prototype);
          case "plain object":
            c.wrongReceiver = true;
            return {};
          default:
            c.wrongReceiver = true;
            return otherHandle?.() ?? {};
        }
      },
      call: ([target, ...args], c) =>
        member.call ? member.call(target as T, args, c) : invoke(target, args),
    };
  });
}

/**
 * `new Class(...)` with hostile arguments, for classes whose constructor is not meant for users
 * (TypeScript-private) but that JavaScript can still call: it must refuse, or make an object
 * whose close and finalizer are harmless (the runner collects garbage after each property).
 */
export function constructorProperty(
  name: string,
  cls: unknown,
  runs = 300,
  args: fc.Arbitrary<unknown>[] = [hostile, hostile, hostile, hostile],
): Property {
  return {
    name: `new ${name}() with hostile arguments refuses, or makes an object that closes safely`,
    covers: [`new ${name}`],
    runs,
    args,
    call: (args) => new (cls as new (...args: unknown[]) => unknown)(...args),
  };
}
