// The WebSocket as this client uses it: the structural subset shared by browsers, Node ≥ 22 (global
// WebSocket) and Workers (`new WebSocket(url)`), so one code path type-checks everywhere.

export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "message" | "close" | "error", listener: (event: never) => void): void;
}

/** Makes a WebSocket for an endpoint URL; override to use another implementation. */
export type SocketFactory = (url: string) => SocketLike;

export const OPEN = 1;
export const CONNECTING = 0;

/**
 * The platform's WebSocket. Checked when the client is made, not at the first connect: on a runtime
 * without one (Node 20 and older) the failure would otherwise surface later as a bare ReferenceError.
 */
export function defaultSocketFactory(): SocketFactory {
  if (typeof (globalThis as { WebSocket?: unknown }).WebSocket !== "function") {
    throw new TypeError(
      "this runtime has no global WebSocket (Node.js before 22): pass the webSocket option, " +
        "e.g. with the ws package: webSocket: (url) => new WebSocket(url) after import { WebSocket } from \"ws\"",
    );
  }
  return (url) => new WebSocket(url) as unknown as SocketLike;
}

export interface SocketHandlers {
  open(): void;
  message(data: unknown): void;
  close(code: number, reason: string): void;
}

/** Wires a socket to plain handlers (message data and close code/reason, nothing platform-specific). */
export function attach(ws: SocketLike, h: SocketHandlers): void {
  let closed = false;
  const onClose = (code: number, reason: string) => {
    if (closed) return;
    closed = true;
    h.close(code, reason);
  };
  ws.addEventListener("open", (() => h.open()) as (e: never) => void);
  ws.addEventListener("message", ((e: { data: unknown }) => h.message(e.data)) as (e: never) => void);
  ws.addEventListener("close", ((e: { code?: number; reason?: string }) => onClose(e.code ?? 1005, e.reason ?? "")) as (e: never) => void);
  // An error is followed by close in browsers and Node; some runtimes report only the error.
  ws.addEventListener("error", (() => {
    setTimeout(() => onClose(1006, "error"), 0);
  }) as (e: never) => void);
}

/** Sends a text frame if the socket is open; returns whether it was sent. */
export function trySend(ws: SocketLike, text: string): boolean {
  if (ws.readyState !== OPEN) return false;
  try {
    ws.send(text);
    return true;
  } catch {
    return false;
  }
}

/** Closes a socket, tolerating one that is already closed. */
export function tryClose(ws: SocketLike, code: number, reason: string): void {
  try {
    if (ws.readyState === OPEN || ws.readyState === CONNECTING) ws.close(code, reason);
  } catch {
    // already closed
  }
}
