/**
 * The server side of a service: {@linkcode Server}. Internal: the public entry is
 * src/service/mod.ts.
 *
 * @module
 */

import { Channel, channelPeers, keepReceiverLock } from "../channel/channel.ts";
import { validateCodec } from "../channel/options.ts";
import { RECEIVES } from "../channel/registry.ts";
import { encodeChecked } from "../channel/slab.ts";
import { type Codec, codecs } from "../codec.ts";
import { closedError } from "../errors.ts";
import { ConstructorToken, optionsObject, validateInteger } from "../_validate.ts";
import {
  BYE,
  CANCEL,
  CREDIT,
  decodePayload,
  END,
  ERROR,
  FrameWriter,
  HELLO,
  PART,
  readRequestFrame,
  REQUEST,
  RESPONSE_HEADER,
  STREAM_WINDOW,
  u32,
  VALUE,
  WELCOME,
} from "./frame.ts";
import { encodeRemoteError } from "./remote_error.ts";
import { removeName, RESPONSE_PREFIX } from "./names.ts";
import { letPendingWorkRun } from "./hops.ts";
import { createRequestRing } from "./restart.ts";

const token = new ConstructorToken("Server", "Server.create()");
const decoder = new TextDecoder("utf-8", { fatal: true });

/** How much of a refused client's codec name its refusal repeats (codec names are short). */
const CODEC_SHOWN = 64;

/** How often the server looks for clients that died or closed without saying goodbye, in ms. */
export const SWEEP_MS = 250;

/** What a handler gets besides the request. */
export interface RequestContext {
  /**
   * Aborts when the answer is no longer wanted: the client gave up on the request (its timeout
   * or signal, or it stopped reading a stream), closed, or died, or the server closed. From then
   * on the request no longer counts against `concurrency`, and what the handler returns or
   * throws is dropped.
   */
  readonly signal: AbortSignal;
  /** The client's id, unique among the server's clients while it is connected. */
  readonly client: number;
}

/**
 * Answers one request: a value (or a promise of one) for a single response, or an async
 * iterable (an async generator, a `ReadableStream`) for a streamed one. What it throws reaches
 * the client as a {@linkcode RemoteError}.
 */
export type Handler<Req, Res> = (
  request: Req,
  context: RequestContext,
) => Res | Promise<Res> | AsyncIterable<Res>;

/** Options of {@linkcode Server.create}. */
export interface ServerOptions<Req, Res> {
  /**
   * A name for clients to `Client.connect(name)`, or `null` to generate a unique one (read it
   * from `server.name` and send it). Default: anonymous (hand `server.fd` down).
   */
  name?: string | null;
  /** Permission bits of a named service. Default 0o600. */
  mode?: number;
  /** How requests and answers become bytes; the clients' codec must be the same. Default bytes. */
  codec?: Codec<Req | Res> | Codec<unknown>;
  /** The request ring's size in bytes: a power of two from 4096 to 1 GiB. Default 1 MiB. */
  capacity?: number;
  /**
   * How many requests the handler may work on at once; beyond that, requests wait: the server
   * reads up to a ring's worth of them (at most 1024) ahead, so that it still hears of clients
   * giving up, and leaves the rest in the ring (clients' sends wait once it is full). Default 256. A request given up (its client's
   * timeout or abort, the client closed or died) frees its place at once, even when its handler
   * ignores `context.signal`: the handler runs on, and what it returns or throws is dropped
   * (awaited, never an unhandled rejection).
   */
  concurrency?: number;
  /** Closes the server when it aborts. */
  signal?: AbortSignal;
}

/** A connected client, as the server sees it. */
interface Peer {
  readonly id: number;
  readonly channel: Channel<Uint8Array>;
  /** The requests being answered, by id: aborting one stops its handler's work. */
  readonly inflight: Map<number, Work>;
}

/** A request read while the handler was at its concurrency, waiting for a place. */
interface Waiting {
  readonly peer: Peer;
  readonly request: number;
  readonly payload: Uint8Array;
  /** Its client gave up on it before it started. */
  cancelled: boolean;
}

/** The most requests the server reads ahead of its handlers' concurrency. */
const BACKLOG_MAX = 1024;

/** Whether `value` is to be streamed: it has a `Symbol.asyncIterator` method. */
function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null &&
    typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === "function";
}

/**
 * A server that answers requests from many clients, in any processes, over shared memory.
 *
 * - Clients find it by `name` (`Client.connect(name)`), or by a descriptor: hand `server.fd` to
 *   a child (`spawn`'s `fds`), which calls `Client.connect(inheritedFd(3))`.
 * - Requests from every client arrive on one ring (a multi-sender `Channel`); each client has
 *   its own response ring, which the server opens when the client says hello. The handler runs
 *   for many requests at once (up to `concurrency`), and answers go back as they are ready, in
 *   any order; each carries its request's id.
 * - A client that dies, or closes, is dropped within a quarter of a second: its requests'
 *   signals abort and their answers are discarded, so a dead client never blocks the server or
 *   makes it grow. A client that stops reading blocks only its own answers.
 * - Closing the server (or its `signal`) aborts every handler's signal; clients' pending
 *   requests reject with `Deno.errors.BrokenPipe`, as they do within a second if the server's
 *   process dies.
 *
 * One server per name (a second `create` of the name is `AlreadyExists` while the first lives;
 * the name of a server that was killed is taken over: see {@linkcode Server.create}); at most 30 clients
 * at once (the request ring's 32 participant slots, two the server's own; a 31st client's
 * `connect` is a RangeError, and a killed client's slot is taken back by the next one).
 *
 * @example A server and a client
 * ```ts
 * import { Client, codecs, Server } from "@posix/ipc/service";
 *
 * const name = `/doubler-${Deno.pid}`;
 * using _server = Server.create((n: number) => n * 2, { name, codec: codecs.json });
 * using client = await Client.connect<number, number>(name, { codec: codecs.json });
 * console.log(await client.request(21)); // 42
 * ```
 */
export class Server<Req = Uint8Array, Res = Uint8Array> implements Disposable, AsyncDisposable {
  readonly #requests: Channel<Uint8Array>;
  /** A sending handle of our own, so that the request ring never ends for lack of clients. */
  readonly #keepAlive: Channel<Uint8Array>;
  readonly #handler: Handler<Req, Res>;
  readonly #codec: Codec<Req | Res>;
  readonly #concurrency: number;
  readonly #clients = new Map<number, Peer>();
  readonly #sweep: ReturnType<typeof setInterval>;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = () => this.close();
  #nextClient = 1;
  #inflight = 0;
  /** Builds the frames this server sends with `trySend`. */
  readonly #frames = new FrameWriter();
  /**
   * Requests read while the handler was at its concurrency, oldest first: the server goes on
   * reading its ring then, so that a client's CANCEL (or goodbye) reaches it and frees a place
   * even while every handler ignores its signal.
   */
  readonly #backlog: Waiting[] = [];
  /** The payload bytes in the backlog: at most a ring's worth (then the server stops reading). */
  #backlogBytes = 0;
  /** Resolves when a handler finishes while the server is at its concurrency. */
  #room: PromiseWithResolvers<void> | null = null;
  #closed = false;
  /** Settles when the server stops serving: at close, or on a failure of the request ring. */
  readonly done: Promise<void>;

  private constructor(
    key: ConstructorToken,
    requests: Channel<Uint8Array>,
    handler: Handler<Req, Res>,
    codec: Codec<Req | Res>,
    concurrency: number,
    signal: AbortSignal | undefined,
  ) {
    token.check(key);
    this.#requests = requests;
    // The server is its ring's only receiver: no lock and unlock per request.
    keepReceiverLock(requests);
    this.#keepAlive = Channel.fromFd(requests, { role: "send" });
    this.#handler = handler;
    this.#codec = codec;
    this.#concurrency = concurrency;
    this.#signal = signal;
    this.#sweep = setInterval(() => this.#dropGone(), SWEEP_MS);
    Deno.unrefTimer(Number(this.#sweep));
    signal?.addEventListener("abort", this.#onAbort);
    this.done = this.#serve();
    this.done.catch(() => {}); // a failure is the caller's to await, never an unhandled one
  }

  /**
   * Starts a server: it serves until closed.
   *
   * @param handler Answers each request (see {@linkcode Handler}).
   * @param options `name`, `mode`, `codec`, `capacity`, `concurrency`, `signal`.
   * @returns The server, already serving.
   * @throws {TypeError} for a handler that is not a function, or a bad option.
   * @throws {Deno.errors.AlreadyExists} when a live service (or other shared memory) has the
   * name. A name left by a server that died without closing (SIGKILL) is taken over: its old
   * ring is removed and made anew, and its old clients' requests fail with `BrokenPipe`; of
   * several processes restarting it at once, one wins and the others get `AlreadyExists`.
   * @example A streamed answer
   * ```ts
   * import { Client, codecs, Server } from "@posix/ipc/service";
   *
   * using _server = Server.create(async function* (n: number) {
   *   for (let i = 0; i < n; i++) yield i;
   * }, { name: `/counter-${Deno.pid}`, codec: codecs.json });
   * using client = await Client.connect<number, number>(`/counter-${Deno.pid}`, {
   *   codec: codecs.json,
   * });
   * for await (const i of client.stream(3)) console.log(i); // 0, 1, 2
   * ```
   * @example A generated name, to send to clients
   * ```ts
   * import { Client, codecs, Server } from "@posix/ipc/service";
   *
   * await using server = Server.create((name: string) => `hello ${name}`, {
   *   name: null,
   *   codec: codecs.text,
   * });
   * await using client = await Client.connect<string, string>(server.name!, { codec: codecs.text });
   * console.log(await client.request("Ada")); // hello Ada
   * ```
   */
  static create<Req = Uint8Array, Res = Uint8Array>(
    handler: Handler<Req, Res>,
    options?: ServerOptions<Req, Res>,
  ): Server<Req, Res> {
    if (typeof handler !== "function") {
      throw new TypeError("Cannot create a server: handler must be a function");
    }
    options = optionsObject(options, "server options");
    const codec = validateCodec<Req | Res>(
      options.codec ?? (codecs.bytes as unknown as Codec<Req | Res>),
    );
    const concurrency = options.concurrency === Infinity ? Infinity : validateInteger(
      options.concurrency ?? 256,
      "concurrency",
      1,
      2 ** 32 - 1,
      "how many requests the handler works on at once, or Infinity",
    );
    const signal = options.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new TypeError("Cannot create a server: signal must be an AbortSignal");
    }
    signal?.throwIfAborted();
    const requests = createRequestRing({
      name: options.name,
      mode: options.mode,
      capacity: options.capacity,
    });
    try {
      return new Server(token, requests, handler, codec, concurrency, signal);
    } catch (error) {
      requests.close();
      throw error;
    }
  }

  /** The service's name, or `null` for an anonymous one. */
  get name(): string | null {
    return this.#requests.name;
  }

  /**
   * The request ring's descriptor, to hand to a child (`Client.connect(inheritedFd(n))`).
   * **UNSAFE**: valid only while open.
   *
   * @throws {Deno.errors.BadResource} when closed.
   */
  get fd(): number {
    if (this.#closed) throw closedError("the server");
    return this.#requests.fd;
  }

  /** How many clients are connected. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Whether the server was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  async #serve(): Promise<void> {
    try {
      while (!this.#closed) {
        if (this.#backlogFull()) {
          this.#room = Promise.withResolvers();
          await this.#room.promise;
          continue;
        }
        let bytes = this.#requests.tryReceive();
        if (bytes === undefined) {
          await letPendingWorkRun(); // the handlers just started answer first (hops.ts)
          bytes = this.#requests.tryReceive() ?? await this.#requests.receive(); // close() wakes it
        }
        this.#dispatch(bytes);
      }
    } catch (error) {
      if (this.#closed) return;
      this.close(); // the request ring failed (corrupt): nothing more can be served
      throw error;
    }
  }

  /** Whether the backlog holds as much as the server reads ahead of its handlers. */
  #backlogFull(): boolean {
    return this.#backlog.length >= BACKLOG_MAX ||
      this.#backlogBytes >= this.#requests.capacity;
  }

  /** Starts the backlog's oldest requests while there is room, skipping those given up. */
  #startWaiting(): void {
    while (!this.#closed && this.#inflight < this.#concurrency && this.#backlog.length > 0) {
      const waiting = this.#backlog.shift()!;
      this.#backlogBytes -= waiting.payload.length;
      const { peer } = waiting;
      if (this.#clients.get(peer.id) !== peer || waiting.cancelled) continue;
      void this.#answer(peer, waiting.request, waiting.payload);
    }
  }

  #dispatch(bytes: Uint8Array): void {
    const frame = readRequestFrame(bytes);
    if (frame === undefined) return; // not a frame a client wrote: dropped
    if (frame.kind === HELLO) return this.#welcome(frame.payload);
    const peer = this.#clients.get(frame.client);
    if (peer === undefined) return; // a client already dropped, or a forged id
    if (frame.kind === REQUEST) {
      if (peer.inflight.has(frame.request)) return; // a duplicate id: the first one stands
      if (this.#inflight < this.#concurrency) {
        void this.#answer(peer, frame.request, frame.payload);
      } else {
        this.#backlog.push({
          peer,
          request: frame.request,
          payload: frame.payload,
          cancelled: false,
        });
        this.#backlogBytes += frame.payload.length;
      }
    } else if (frame.kind === CANCEL) {
      const work = peer.inflight.get(frame.request);
      if (work !== undefined) return work.abort();
      for (const waiting of this.#backlog) {
        if (waiting.peer === peer && waiting.request === frame.request) waiting.cancelled = true;
      }
    } else if (frame.kind === CREDIT) {
      if (frame.payload.length >= 4) peer.inflight.get(frame.request)?.grant(u32(frame.payload, 0));
    } else if (frame.kind === BYE) {
      this.#drop(peer);
    }
  }

  /** Opens a new client's response ring and tells it its id. */
  #welcome(payload: Uint8Array): void {
    let name: string, codec: string | undefined;
    try {
      [name, codec] = decoder.decode(payload).split("\0") as [string, string | undefined];
    } catch {
      return;
    }
    if (!name.startsWith(RESPONSE_PREFIX)) return; // only response rings, nothing else
    // A ring already a client's (a hello replayed): a second sending handle, with a tail of its
    // own, would write over the first one's answers.
    for (const peer of this.#clients.values()) if (peer.channel.name === name) return;
    let channel: Channel<Uint8Array>;
    try {
      channel = Channel.open(name, { role: "send" });
    } catch {
      return; // gone already (the client closed), or not a channel: nobody to answer
    }
    try {
      // Open now, the ring needs no name: a client killed before it read the welcome (or
      // while this server was busy) must not leave it in /dev/shm.
      removeName(name);
    } catch {
      // not ours to remove (permissions): the client removes it after the welcome
    }
    if (codec !== this.#codec.name) {
      // The client's text is cut short: a hello can hold a megabyte, the client's ring less.
      const theirs = codec === undefined ? "none" : `"${codec.slice(0, CODEC_SHOWN)}"`;
      const why = new TypeError(
        `Cannot connect to the service: its codec is "${this.#codec.name}", not ${theirs}`,
      );
      try {
        const room = channel.maxMessageSize - RESPONSE_HEADER;
        channel.trySend(this.#frames.response(ERROR, 0, encodeRemoteError(why, room)));
      } catch {
        // a ring that cannot take the refusal: the client times out; the server goes on
      } finally {
        channel.close();
      }
      return;
    }
    let id = this.#nextClient;
    while (id === 0 || this.#clients.has(id)) id = (id + 1) >>> 0;
    this.#nextClient = (id + 1) >>> 0;
    const peer: Peer = { id, channel, inflight: new Map() };
    try {
      if (!channel.trySend(this.#frames.response(WELCOME, id))) {
        throw new Deno.errors.WouldBlock("full");
      }
    } catch {
      channel.close(); // a ring that cannot take the first frame is no client's
      return;
    }
    this.#clients.set(id, peer);
  }

  /** Gives back a place of `concurrency`: a request was answered or given up. */
  readonly #release = (): void => {
    this.#inflight--;
    if (this.#backlog.length > 0 && !this.#closed) queueMicrotask(() => this.#startWaiting());
    this.#room?.resolve();
    this.#room = null;
  };

  async #answer(peer: Peer, request: number, payload: Uint8Array): Promise<void> {
    const work = new Work(peer.id, this.#release);
    peer.inflight.set(request, work);
    this.#inflight++;
    try {
      let result: Res | AsyncIterable<Res>;
      try {
        const value = decodePayload(this.#codec, payload) as Req;
        result = await this.#handler(value, work);
        if (work.aborted) return; // given up: the late result is dropped
        if (!isAsyncIterable(result)) {
          await this.#send(
            peer,
            VALUE,
            request,
            encodeChecked(this.#codec, result, "answer with"),
            work,
          );
          return;
        }
        for await (const part of result) {
          if (work.aborted || !await work.credited()) break; // ends the iterable (its return())
          await this.#send(
            peer,
            PART,
            request,
            encodeChecked(this.#codec, part, "answer with"),
            work,
          );
        }
        if (!work.aborted) await this.#send(peer, END, request, undefined, work);
      } catch (error) {
        if (work.aborted || error instanceof Lost) return;
        // Cut to fit the client's ring: an ERROR too large would never reach it.
        const room = peer.channel.maxMessageSize - RESPONSE_HEADER;
        await this.#send(peer, ERROR, request, encodeRemoteError(error, room), work);
      }
    } catch {
      // the answer could not be delivered: the client is gone or gave up
    } finally {
      if (peer.inflight.get(request) === work) peer.inflight.delete(request);
      work.release(); // unless its abort did already
    }
  }

  /**
   * Sends one frame to a client, waiting while its ring is full. A client that is gone is
   * dropped and the frame discarded ({@linkcode Lost}); an answer too large for the ring
   * becomes a RangeError, which the caller sends as an ERROR.
   */
  async #send(
    peer: Peer,
    kind: number,
    request: number,
    payload: Uint8Array | undefined,
    work: Work,
  ): Promise<void> {
    const size = RESPONSE_HEADER + (payload?.length ?? 0);
    if (size > peer.channel.maxMessageSize) {
      throw new RangeError(
        `Cannot answer: the answer is ${size - RESPONSE_HEADER} bytes, the client's ring takes ` +
          `${peer.channel.maxMessageSize - RESPONSE_HEADER}`,
      );
    }
    const frame = this.#frames.response(kind, request, payload);
    try {
      if (peer.channel.trySend(frame)) return;
      // The ring is full: a frame of its own for the wait (the writer's is the next answer's).
      await peer.channel.send(frame.slice(), { signal: work.signal });
    } catch (error) {
      if (!work.aborted) this.#drop(peer);
      throw new Lost(error);
    }
  }

  /** Drops clients that died or closed without a goodbye. */
  #dropGone(): void {
    for (const peer of this.#clients.values()) {
      let state: string;
      try {
        state = channelPeers(peer.channel, RECEIVES);
      } catch {
        state = "died";
      }
      if (state === "died" || state === "ended") this.#drop(peer);
    }
  }

  /** Forgets a client: its handlers' signals abort, its ring closes. */
  #drop(peer: Peer): void {
    if (this.#clients.get(peer.id) !== peer) return;
    this.#clients.delete(peer.id);
    for (const work of peer.inflight.values()) work.abort();
    peer.channel.close();
  }

  /**
   * Stops serving: handlers' signals abort, every client's pending requests reject with
   * `BrokenPipe`, and a named service's name is removed. Closing again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    clearInterval(this.#sweep);
    this.#room?.resolve();
    this.#backlog.length = 0;
    this.#backlogBytes = 0;
    for (const peer of [...this.#clients.values()]) this.#drop(peer);
    this.#keepAlive.close();
    this.#requests.close();
  }

  /** Same as {@linkcode Server.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Closes the server and waits until its request ring is released (its pending receive ends
   * within a few milliseconds), for `await using`. A failure of the ring is not rethrown here:
   * `done` has it.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.done.catch(() => {});
  }
}

/**
 * One request being answered, and the context its handler gets. The AbortController behind
 * `signal` is made only when someone asks for the signal: most handlers never do, and making
 * one per request cost about a microsecond of a round trip.
 */
class Work implements RequestContext {
  readonly client: number;
  /** Gives back the request's place of `concurrency`; `null` once it did. */
  #release: (() => void) | null;
  #controller: AbortController | null = null;
  #aborted = false;
  /** How many more parts of a stream the client may be sent. */
  #credit = STREAM_WINDOW;
  /** Wakes a stream waiting for credit (or for its end). */
  #more: (() => void) | null = null;

  constructor(client: number, release: () => void) {
    this.client = client;
    this.#release = release;
  }

  /** Gives back the request's place of `concurrency`, once. */
  release(): void {
    const release = this.#release;
    this.#release = null;
    release?.();
  }

  get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort();
    }
    return this.#controller.signal;
  }

  /** Whether the answer is no longer wanted. */
  get aborted(): boolean {
    return this.#aborted;
  }

  /** The answer is no longer wanted: the signal, if anyone has it, aborts. */
  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    // Its place goes to the next request at once, even if the handler ignores its signal.
    this.release();
    this.#controller?.abort();
    this.#more?.();
  }

  /** The client took `parts` more parts (a CREDIT frame). */
  grant(parts: number): void {
    this.#credit = Math.min(this.#credit + parts, 2 ** 31);
    this.#more?.();
  }

  /**
   * Takes one part's credit, waiting for the client to grant more when none is left. Returns
   * `false` when the answer is no longer wanted.
   */
  async credited(): Promise<boolean> {
    while (this.#credit === 0 && !this.#aborted) {
      await new Promise<void>((resolve) => this.#more = resolve);
      this.#more = null;
    }
    this.#credit--;
    return !this.#aborted;
  }
}

/** An answer that could not be delivered: the client is gone. */
class Lost extends Error {
  constructor(cause: unknown) {
    super("Cannot answer: the client is gone", { cause });
  }
}
