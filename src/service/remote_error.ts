/**
 * What crosses from a handler that threw to the client that asked: {@linkcode RemoteError}.
 *
 * @module
 */

import { describe } from "../../ffi/describe.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The longest message that crosses, in UTF-16 units; a longer one is cut with "…". */
const MESSAGE_MAX = 4096;

/**
 * The error a client's request rejects with when the server's handler threw (or its stream
 * failed). What crosses: the thrown error's `name`, its `message` (cut at 4096 characters) and
 * its `code` when that is a string (as on `Deno.errors` and `IpcError`). Nothing else: no
 * stack, no `cause`, no other property, no class. A thrown non-Error crosses as its
 * description ("a number 5" becomes the message, name "Error").
 *
 * @example
 * ```ts ignore
 * import { Client, RemoteError } from "@posix/ipc/service";
 *
 * await using client = await Client.connect("/math");
 * try {
 *   await client.request("not a number");
 * } catch (error) {
 *   if (error instanceof RemoteError) console.log(error.remoteName, error.message);
 * }
 * ```
 */
export class RemoteError extends Error {
  /** Always `"RemoteError"`. */
  override name = "RemoteError";
  /** The `name` of the error the handler threw: "TypeError", "NotFound"… */
  readonly remoteName: string;
  /** Its `code`, when it had a string one ("ENOENT"), else `undefined`. */
  readonly code: string | undefined;

  /**
   * Makes the error; the client does this, user code rarely needs to.
   *
   * @param message The handler's error message.
   * @param remoteName The handler's error name.
   * @param code The handler's error code, if any.
   * @example
   * ```ts
   * import { RemoteError } from "@posix/ipc/service";
   *
   * const error = new RemoteError("no such user", "NotFound", "ENOENT");
   * console.log(error.remoteName, error.code); // NotFound ENOENT
   * ```
   */
  constructor(message: string, remoteName = "Error", code?: string) {
    super(String(message));
    this.remoteName = String(remoteName);
    this.code = code === undefined ? undefined : String(code);
  }
}

/** A string property of `error`, read without letting a getter's throw escape. */
function stringField(error: unknown, key: string): string | undefined {
  try {
    const value = (error as Record<string, unknown>)[key];
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

function cut(text: string): string {
  return text.length > MESSAGE_MAX ? `${text.slice(0, MESSAGE_MAX)}…` : text;
}

/**
 * What crosses of a thrown value, as bytes (JSON), for an ERROR frame, at most `maxBytes` long:
 * a message too long for the client's ring is cut shorter (and a long name or code dropped),
 * since an ERROR that does not fit would never reach the client and its request would wait
 * for ever. Never throws.
 */
export function encodeRemoteError(error: unknown, maxBytes = Infinity): Uint8Array {
  const isError = error instanceof Error;
  let message = cut(isError ? stringField(error, "message") ?? "" : describe(error));
  let name = cut((isError ? stringField(error, "name") : undefined) ?? "Error");
  let code = isError ? stringField(error, "code") : undefined;
  let bytes = encoder.encode(JSON.stringify({ name, message, code }));
  if (bytes.length <= maxBytes) return bytes;
  if (name.length > SHORT_MAX) name = "Error";
  if (code !== undefined && code.length > SHORT_MAX) code = undefined;
  while (true) {
    bytes = encoder.encode(JSON.stringify({ name, message, code }));
    if (bytes.length <= maxBytes || message.length === 0) return bytes;
    message = `${message.slice(0, Math.floor(message.length / 2))}…`.replace(/^…$/, "");
  }
}

/** The longest name or code kept when an error must be cut to fit. */
const SHORT_MAX = 64;

export function decodeRemoteError(bytes: Uint8Array): RemoteError {
  try {
    const { name, message, code } = JSON.parse(decoder.decode(bytes));
    if (typeof name === "string" && typeof message === "string") {
      return new RemoteError(message, name, typeof code === "string" ? code : undefined);
    }
  } catch {
    // falls through
  }
  return new RemoteError("the handler failed, and its error could not be read", "Error");
}
