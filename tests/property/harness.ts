/**
 * Runs properties: each case resolves its markers, calls the function under test, bounds any
 * promise it returns, judges the outcome (success, TypeError, RangeError or a typed error,
 * never an engine error or a hang), disposes what the call made, and runs the property's own
 * checks for wrong actions. Every case is written to a trace file first, so that a case that
 * crashes the process can still be told. Used inside the child that
 * tests/fixtures/property_run.ts starts.
 *
 * @module
 */

import { IpcError, isSystemError, mapFile } from "../../mod.ts";
import { fc, HostileError, type Ref, resolve } from "./arbitraries.ts";

/** How a call ended. */
export type Outcome =
  | { kind: "returned"; value: unknown }
  | { kind: "threw"; error: unknown }
  | { kind: "hang" };

/** What one running case holds: its resources, its signals, how to end its waits. */
export class Case {
  /** What to close or dispose once the case is over, last first. */
  readonly #cleanups: (() => unknown)[] = [];
  /** Controllers of the `‹signal never›` markers: aborted when a call stalls. */
  readonly controllers: AbortController[] = [];
  /** Called when a returned promise is still pending after the stall time. */
  readonly #onStall: (() => void)[] = [];
  /** Whether the call was made on a receiver of the wrong class (engine TypeErrors allowed). */
  wrongReceiver = false;

  /** Registers a cleanup, run when the case ends. */
  defer(cleanup: () => unknown): void {
    this.#cleanups.push(cleanup);
  }

  /**
   * Removes the POSIX name `name` from /dev/shm when the case ends, if it is still there: for a
   * create whose options came out with a hostile `persist: true`, which is valid.
   */
  removeKept(name: string | null | undefined): void {
    if (name) this.defer(() => Deno.remove(`/dev/shm${name}`).catch(() => {}));
  }

  /** Registers what ends a stalled wait (closing its object, typically). */
  onStall(action: () => void): void {
    this.#onStall.push(action);
  }

  /** Ends every wait the case started: aborts its signals and runs the stall actions. */
  stall(): void {
    for (const controller of this.controllers) controller.abort();
    for (const action of this.#onStall.splice(0)) {
      try {
        action();
      } catch {
        // the object may be closed already
      }
    }
  }

  /** Runs the cleanups, last first; reports the first that fails. */
  async cleanup(): Promise<void> {
    let failure: unknown;
    for (const cleanup of this.#cleanups.splice(0).reverse()) {
      try {
        await bounded(Promise.resolve().then(cleanup), 5000, "a cleanup");
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure) throw failure;
  }
}

/** Resolves the shared markers (signals); anything else goes to the property's resolver. */
function resolveCommon(ref: Ref, c: Case, own?: (ref: Ref, c: Case) => unknown): unknown {
  if (ref.kind === "signal") {
    if (ref.detail === "aborted") return AbortSignal.abort();
    const controller = new AbortController();
    c.controllers.push(controller);
    if (ref.detail === "soon") {
      const timer = setTimeout(() => controller.abort(), 20);
      c.defer(() => clearTimeout(timer));
    }
    return controller.signal;
  }
  if (!own) throw new Error(`no resolver for ${ref}`);
  return own(ref, c);
}

/** One property: which exports it covers, what it generates, and what it calls. */
export interface Property {
  /** What the property states. */
  name: string;
  /**
   * The public members it covers, as the coverage test names them: "kill",
   * "SharedMemory.create", "SharedMemory.prototype.resize", "Mapping.prototype.buffer".
   */
  covers: string[];
  /** Generated cases per run, before PIPC_PROPERTY_SCALE. */
  runs: number;
  /** One arbitrary per argument of `call`. */
  args: fc.Arbitrary<unknown>[];
  /** Turns this property's markers into values (handles, names, descriptors). */
  resolve?: (ref: Ref, c: Case) => unknown;
  /** Makes the call under test with resolved arguments. */
  call: (args: unknown[], c: Case) => unknown;
  /** Further errors the call may throw for these arguments (a codec's own errors). */
  allow?: (error: unknown, args: unknown[]) => boolean;
  /** Checks for a wrong action once the call has ended and the case is cleaned up. */
  after?: (outcome: Outcome, args: unknown[], c: Case) => void | Promise<void>;
  /** Runs before each case. */
  before?: (c: Case) => void | Promise<void>;
  /** Ms before a pending promise counts as stalled (then aborted/closed). Default 60. */
  stallMs?: number;
}

/** Messages of errors that the JavaScript engine or Deno's FFI layer throws: never allowed. */
const ENGINE_ERRORS: readonly RegExp[] = [
  /Invalid FFI/i,
  /convert.*BigInt/i,
  /BigInt.*convert/i,
  /Cannot mix BigInt/,
  /Cannot convert/,
  /is not a function/,
  /is not iterable/,
  /is not a constructor/,
  /Cannot read propert/,
  /Cannot set propert/,
  /Cannot destructure/,
  /Cannot create property/,
  /Cannot (add|define|redefine) property/,
  /Cannot access '.*' before initialization/,
  /read.only property/,
  /not extensible/,
  /Invalid typed array length/,
  /Invalid array length/,
  /Invalid string length/,
  /Invalid (DataView|atomic access)/,
  /Array buffer allocation failed/,
  /Maximum call stack/,
  /Offset is outside the bounds/,
  /outside the bounds/,
  /should be a multiple of/,
  /on a detached ArrayBuffer/,
  /Division by zero/,
  /Invalid time value/,
  /Reduce of empty array/,
  /(undefined|null) is not/,
  /private member/,
  /Illegal invocation/,
  /expected (a )?(pointer|number|bigint|integer|buffer)/i,
  /Failed to (convert|deserialize)/,
  /^\s*$/,
];

/** Why `error` is not an allowed outcome, or `undefined` when it is. */
export function misjudged(error: unknown, c: Case): string | undefined {
  if (error instanceof HostileError) return undefined; // the caller's own valueOf threw
  if (
    error instanceof DOMException && (error.name === "AbortError" || error.name === "TimeoutError")
  ) {
    return undefined; // an abort signal's reason
  }
  if (error instanceof TypeError || error instanceof RangeError) {
    // A method called on an object of another class: JavaScript's own TypeError is the answer.
    if (c.wrongReceiver && error instanceof TypeError) return undefined;
    const engine = ENGINE_ERRORS.find((pattern) => pattern.test(error.message));
    if (engine) return `an engine error, not a checked argument: ${error.name}: ${error.message}`;
    return undefined;
  }
  if (error instanceof IpcError) {
    return isSystemError(error) ? undefined : `an IpcError without code/errno/syscall`;
  }
  if (isDenoError(error)) {
    if (isSystemError(error)) return undefined;
    // Errors the library raises itself, not from errno: closed handles, timeouts, permissions,
    // a peer gone. They must still read as the library's ("Cannot …"), not as an engine's.
    const message = (error as Error).message;
    if (/^Cannot |^Requires |permission|closed|timed out|--allow/i.test(message)) return undefined;
    return `a ${(error as Error).name} without code/errno/syscall: ${message}`;
  }
  if (error instanceof Error) return `an untyped ${error.name}: ${error.message}`;
  return `a thrown non-error: ${describe(error)}`;
}

function isDenoError(error: unknown): boolean {
  return Object.values(Deno.errors).some((ErrorClass) => error instanceof ErrorClass);
}

function describe(value: unknown): string {
  try {
    return fc.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** Waits for `promise` at most `ms`; rejects with a "hang" error after that. */
export async function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HangError(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A promise that did not settle in time. */
export class HangError extends Error {
  override name = "HangError";
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}

/**
 * Settles a call's result: a promise gets `stallMs` to settle, then the case's waits are ended
 * (signals aborted, objects closed) and it gets 2 s more, or it is a hang.
 */
async function settle(value: unknown, c: Case, stallMs: number): Promise<Outcome> {
  if (!isThenable(value)) return { kind: "returned", value };
  const promise = Promise.resolve(value).then(
    (value): Outcome => ({ kind: "returned", value }),
    (error): Outcome => ({ kind: "threw", error }),
  );
  try {
    return await bounded(promise, stallMs, "the call");
  } catch {
    c.stall();
  }
  try {
    return await bounded(promise, 2000, "the call, once aborted and its object closed,");
  } catch {
    return { kind: "hang" };
  }
}

/** Closes or disposes whatever a successful call returned (handles, children, iterators). */
export async function dispose(value: unknown): Promise<void> {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return;
  const object = value as Record<PropertyKey, unknown>;
  if (typeof object[Symbol.asyncDispose] === "function") {
    await bounded(
      Promise.resolve((object[Symbol.asyncDispose] as () => unknown).call(object)),
      5000,
      "asyncDispose of the result",
    );
  } else if (typeof object[Symbol.dispose] === "function") {
    (object[Symbol.dispose] as () => void).call(object);
  } else if (typeof object.return === "function" && typeof object.next === "function") {
    await bounded(
      Promise.resolve((object.return as () => unknown).call(object)),
      5000,
      "return() of the iterator",
    );
  }
}

/** The trace file: the case about to run, so that a crash can be told. */
const TRACE = (() => {
  try {
    return Deno.env.get("PIPC_PROPERTY_TRACE");
  } catch {
    return undefined;
  }
})();

/**
 * The trace file mapped into memory: writing a case is a copy, not three system calls, and the
 * page cache keeps it when the process crashes.
 */
let traceBytes: Uint8Array | undefined;
const encoder = new TextEncoder();

function trace(property: Property, args: unknown[]): void {
  if (!TRACE) return;
  if (!traceBytes) {
    Deno.writeFileSync(TRACE, new Uint8Array(1 << 16));
    traceBytes = mapFile(TRACE, { write: true }).bytes;
  }
  const { written } = encoder.encodeInto(
    `${property.name}\n  ${describe(args)}\n`,
    traceBytes.subarray(0, traceBytes.length - 1),
  );
  traceBytes[written] = 0;
}

/** Runs one case of `property` and throws (for fast-check) when its outcome is not allowed. */
async function runCase(property: Property, generated: unknown[]): Promise<void> {
  trace(property, generated);
  const c = new Case();
  let outcome: Outcome = { kind: "hang" };
  let resolved: unknown[] = [];
  let problem: string | undefined;
  try {
    await property.before?.(c);
    resolved = generated.map((value) =>
      resolve(value, (ref) => resolveCommon(ref, c, property.resolve))
    );
    try {
      const value = property.call(resolved, c);
      outcome = await settle(value, c, property.stallMs ?? 60);
    } catch (error) {
      outcome = { kind: "threw", error };
    }
    if (outcome.kind === "hang") {
      problem = "the call hung: it did not settle once aborted and closed";
    }
    if (outcome.kind === "threw" && !property.allow?.(outcome.error, resolved)) {
      problem = misjudged(outcome.error, c);
      if (problem && outcome.error instanceof Error && outcome.error.stack) {
        problem += `\n${outcome.error.stack.split("\n").slice(1, 5).join("\n")}`;
      }
    }
    if (outcome.kind === "returned") {
      c.defer(() => dispose(outcome.kind === "returned" ? outcome.value : undefined));
    }
  } finally {
    c.stall();
    await c.cleanup().catch((error) => {
      problem ??= `cleaning up failed: ${error}`;
    });
  }
  if (problem) throw new Error(problem);
  await property.after?.(outcome, resolved, c);
}

/** Where a property's run stands: the cases it ran and, when it failed, fast-check's report. */
export interface PropertyResult {
  name: string;
  cases: number;
  ms: number;
  failure?: string;
}

/** A 32-bit seed for `name` from the run's seed, so that each property is reproducible. */
export function seedFor(seed: number, name: string): number {
  let hash = seed | 0;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 16777619);
  return hash | 0;
}

/** Runs `property` for its number of cases (times `scale`) from `seed`. */
export async function runProperty(
  property: Property,
  seed: number,
  scale: number,
): Promise<PropertyResult> {
  const started = performance.now();
  const numRuns = Math.max(1, Math.round(property.runs * scale));
  const result = await fc.check(
    fc.asyncProperty(...(property.args as [fc.Arbitrary<unknown>]), async (...args) => {
      await runCase(property, args);
    }),
    { seed: seedFor(seed, property.name), numRuns, interruptAfterTimeLimit: 60_000 },
  );
  const ms = Math.round(performance.now() - started);
  const failure = result.failed ? fc.defaultReportMessage(result) : undefined;
  return { name: property.name, cases: result.numRuns, ms, failure };
}

/** The members a property file covers and the properties themselves. */
export interface PropertyGroup {
  /** Every member the group's properties cover (checked against them when the group runs). */
  covers: readonly string[];
  /**
   * Scales the group's case counts for what a case costs here (objects made per case), so that
   * the whole suite stays within about two minutes. Default 1.
   */
  scale?: number;
  /** Builds the group's properties (and its pools of handles). */
  properties(): Property[] | Promise<Property[]>;
  /** Closes the group's pools. */
  teardown?(): void | Promise<void>;
}
