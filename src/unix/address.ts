/**
 * Unix-domain socket addresses: a path in the file system, or a name in Linux's abstract
 * namespace. Checked, permission-checked and encoded as a `struct sockaddr_un` before any
 * system call. Internal to `@posix/ipc/unix`.
 *
 * @module
 */

import { byteLength } from "../../ffi/cstring.ts";
import { AF_UNIX } from "../../ffi/constants.ts";
import { sockaddr_un } from "../../ffi/layout.ts";
import { describe } from "../_validate.ts";
import { requirePermission } from "../_permissions.ts";
import { libc } from "../../ffi/libc.ts";
import { check } from "../errors.ts";

/**
 * Where a Unix-domain socket listens or connects:
 * - a path, such as `"/run/broker.sock"` or `{ path: "/run/broker.sock" }`: a socket file,
 *   which needs `--allow-read` and `--allow-write` for the path, as `Deno.listen` does;
 * - an abstract name, `{ abstract: "broker" }` or a string with a leading NUL (`"\0broker"`):
 *   Linux's abstract namespace, no file, no file permission, gone when the socket closes.
 *   Every process in the same network namespace can connect to it: check who connected with
 *   `peerCredentials`.
 */
export type UnixAddress = string | { readonly path: string } | { readonly abstract: string };

/** The longest `sun_path`, NUL included: 108 bytes. */
export const SUN_PATH_MAX = sockaddr_un.size - sockaddr_un.sun_path;

/** An address, checked: its kind, its text (path or abstract name) and how messages show it. */
export interface ParsedAddress {
  readonly kind: "path" | "abstract";
  /** The path, or the abstract name without the leading NUL. */
  readonly text: string;
  /** How messages and `address` show it: the path, or "@name" for an abstract name. */
  readonly label: string;
}

/**
 * Checks an address: a TypeError for a wrong type, a NUL inside a path or an empty one, a
 * RangeError when it does not fit `sun_path` (108 bytes with the path's NUL, 107 for an
 * abstract name after its leading NUL).
 */
export function parseAddress(address: unknown, what: string): ParsedAddress {
  let kind: "path" | "abstract";
  let text: unknown;
  if (typeof address === "string") {
    kind = address.startsWith("\0") ? "abstract" : "path";
    text = kind === "abstract" ? address.slice(1) : address;
  } else if (typeof address === "object" && address !== null && !Array.isArray(address)) {
    const own = Object.hasOwn(address, "path");
    if (own === Object.hasOwn(address, "abstract")) {
      throw new TypeError(
        `Cannot ${what}: the address needs exactly one of "path" and "abstract"`,
      );
    }
    kind = own ? "path" : "abstract";
    text = (address as Record<string, unknown>)[kind];
  } else {
    throw new TypeError(
      `Cannot ${what}: address ${describe(address)} must be a path, "\\0name", ` +
        "{ path } or { abstract }",
    );
  }
  if (typeof text !== "string") {
    throw new TypeError(`Cannot ${what}: the ${kind} ${describe(text)} must be a string`);
  }
  if (kind === "path" && (text === "" || text.includes("\0"))) {
    throw new TypeError(
      `Cannot ${what}: path ${describe(text)} must be a non-empty string without NUL`,
    );
  }
  const bytes = byteLength(text);
  const max = SUN_PATH_MAX - 1;
  if (bytes > max) {
    throw new RangeError(
      `Cannot ${what}: the ${kind === "path" ? "path" : "abstract name"} ${describe(text)} is ` +
        `${bytes} bytes, more than the ${max} a Unix socket address holds (sun_path is ` +
        `${SUN_PATH_MAX} bytes${kind === "path" ? " with the NUL" : " with the leading NUL"})`,
    );
  }
  return { kind, text, label: kind === "path" ? text : `@${text}` };
}

/**
 * What `Deno.listen` and `Deno.connect` check for a Unix socket path: read and write access
 * (NotCapable otherwise, before any call). An abstract name is no file: nothing to check.
 */
export function requireAddressPermission(address: ParsedAddress): void {
  if (address.kind !== "path") return;
  requirePermission("read", address.text);
  requirePermission("write", address.text);
}

const encoder = new TextEncoder();

/**
 * The `struct sockaddr_un` of a checked address and the length to pass with it: a path ends
 * with its NUL; an abstract name starts with one and the length ends it (no NUL after).
 */
export function encodeAddress(
  address: ParsedAddress,
): { buffer: Uint8Array<ArrayBuffer>; length: number } {
  const buffer = new Uint8Array(sockaddr_un.size);
  new DataView(buffer.buffer).setUint16(sockaddr_un.sun_family, AF_UNIX, true);
  const start = sockaddr_un.sun_path + (address.kind === "abstract" ? 1 : 0);
  const { written } = encoder.encodeInto(address.text, buffer.subarray(start));
  const length = start + written + (address.kind === "path" ? 1 : 0);
  return { buffer, length };
}

const decoder = new TextDecoder();

/**
 * The address a socket is bound to (getsockname), as a checked address would be: a path, an
 * abstract name, or `undefined` for an unnamed socket.
 */
export function boundAddress(fd: number, what: string): ParsedAddress | undefined {
  const buffer = new Uint8Array(sockaddr_un.size);
  const length = new Uint32Array([sockaddr_un.size]);
  check(libc().getsockname(fd, buffer, length), "getsockname", { action: what });
  const end = Math.min(length[0]!, sockaddr_un.size);
  if (end <= sockaddr_un.sun_path) return undefined;
  const path = buffer.subarray(sockaddr_un.sun_path, end);
  if (path[0] === 0) {
    const text = decoder.decode(path.subarray(1));
    return { kind: "abstract", text, label: `@${text}` };
  }
  const nul = path.indexOf(0);
  const text = decoder.decode(nul < 0 ? path : path.subarray(0, nul));
  return { kind: "path", text, label: text };
}
