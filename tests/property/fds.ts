/**
 * Descriptors for fd-taking properties: sacrificial descriptors a case may hand over (and the
 * call may close), bystanders it must never touch, and numbers that wrap to a bystander in a C
 * int. After each case, {@linkcode FdWatch.check} says whether a bystander (or stdio) was
 * closed or replaced.
 *
 * @module
 */

import { OwnedFd } from "../../mod.ts";
import { fc, hostile, Ref } from "./arbitraries.ts";
import type { Case } from "./harness.ts";

/** This process's open descriptors, without the one that lists them. */
function fdTable(): Set<number> {
  const fds = [...Deno.readDirSync("/proc/self/fd")].map((entry) => Number(entry.name));
  return new Set(fds.filter((fd) => !/^\/proc\/.*\/fd$/.test(target(fd) ?? "/proc/x/fd")));
}

function target(fd: number): string | undefined {
  try {
    return Deno.readLinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** Bystander descriptors and a source of sacrificial ones. */
export class FdWatch {
  readonly #file: Deno.FsFile;
  readonly #seed: OwnedFd;
  readonly #bystanders: OwnedFd[] = [];
  #expected = new Map<number, string | undefined>();

  constructor(bystanders = 3) {
    const before = fdTable();
    this.#file = Deno.openSync("/dev/null", { read: true, write: true });
    const opened = [...fdTable()].filter((fd) => !before.has(fd) && target(fd) === "/dev/null");
    if (opened.length !== 1) throw new Error("cannot tell the descriptor Deno opened");
    // Owned here only to dup() from: never closed, released at the end (Deno owns it).
    this.#seed = new OwnedFd(opened[0]!);
    for (let i = 0; i < bystanders; i++) this.#bystanders.push(this.#seed.dup());
    this.#remember();
  }

  #remember(): void {
    this.#expected = new Map();
    for (const fd of [0, 1, 2, ...this.bystanders()]) {
      const was = target(fd);
      if (was !== undefined) this.#expected.set(fd, was);
    }
  }

  /** The bystanders' numbers. */
  bystanders(): number[] {
    return this.#bystanders.map((owned) => owned.fd);
  }

  /** A fresh descriptor the case owns as a number; closed when the case ends, if still open. */
  sacrificial(c: Case): number {
    const owned = this.#seed.dup();
    const fd = owned.release();
    c.defer(() => {
      // Close it only if it is still ours: the call under test may have taken and closed it,
      // and the number reused by another bystander would be a wrong close here.
      if (!this.#expected.has(fd) && target(fd) === "/dev/null" && fdTable().has(fd)) {
        new OwnedFd(fd).close();
      }
    });
    return fd;
  }

  /** A live OwnedFd the case owns, closed when the case ends. */
  owned(c: Case): OwnedFd {
    const owned = this.#seed.dup();
    c.defer(() => owned.close());
    return owned;
  }

  /** Which bystanders or stdio descriptors were closed or replaced since the last check. */
  check(): string[] {
    const wrong: string[] = [];
    for (const [fd, was] of this.#expected) {
      const now = target(fd);
      if (now !== was) wrong.push(`fd ${fd} (${was}) is now ${now ?? "closed"}`);
    }
    return wrong;
  }

  /** Throws when a bystander was touched. */
  assertUntouched(): void {
    const wrong = this.check();
    if (wrong.length) {
      this.#remember();
      throw new Error(`a descriptor the call was not given was closed or replaced: ${wrong}`);
    }
  }

  /** Resolves the fd markers: `‹fd sacrificial›`, `‹fd bystander+2^32›`, … */
  resolve(ref: Ref, c: Case): unknown {
    if (ref.kind === "owned-fd") return this.owned(c);
    if (ref.kind !== "fd") return undefined;
    if (ref.detail === "sacrificial") return this.sacrificial(c);
    const bystander = this.bystanders()[0]!;
    switch (ref.detail) {
      case "bystander+2^32":
        return bystander + 2 ** 32;
      case "bystander-2^32":
        return bystander - 2 ** 32;
      case "bystander+2^64":
        return bystander + 2 ** 64;
      case "bystander+0.5":
        return bystander + 0.5;
      case "-bystander":
        return -bystander;
      case "stdout+2^32":
        return 1 + 2 ** 32;
      default:
        throw new Error(`no resolver for ${ref}`);
    }
  }

  /** Ends the watch: closes the bystanders, gives the seed back to Deno's file. */
  close(): void {
    for (const owned of this.#bystanders) owned.close();
    this.#seed.release();
    this.#file.close();
  }
}

/** Numbers that wrap to a bystander or stdout in a C int, and others the call must refuse. */
export const wrappedFd: fc.Arbitrary<Ref> = fc.constantFrom(
  ...["bystander+2^32", "bystander-2^32", "bystander+2^64", "bystander+0.5", "-bystander"]
    .map((detail) => new Ref("fd", detail)),
  new Ref("fd", "stdout+2^32"),
);

/**
 * A hostile value for an argument that takes a descriptor, except a number from 0 to 65535: a
 * call given a number owns that descriptor and may close it, so a small integer that happens to
 * be another live descriptor of the group (fast-check favours small integers) would be closed
 * by design, not by a bug. Wrapped and sacrificial numbers stand for those.
 */
export const notAnFd: fc.Arbitrary<unknown> = hostile.filter((value) =>
  !(typeof value === "number" && Number.isInteger(value) && value >= 0 && value < 65536)
);

/** A descriptor argument: one the case owns, a wrapped number, or any hostile value. */
export const sacrificialFd: fc.Arbitrary<Ref> = fc.constant(new Ref("fd", "sacrificial"));

/**
 * Hostile values that are not valid descriptor numbers: a valid number (0, 1, 7) names a real
 * descriptor (stdin, Deno's own), which a call that takes ownership may rightly close.
 */
export const refusedFd: fc.Arbitrary<unknown> = hostile.filter((value) =>
  !(typeof value === "number" && Number.isInteger(value) && value >= 0 && value < 2 ** 31)
);
