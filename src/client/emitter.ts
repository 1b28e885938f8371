// A tiny typed event emitter (no EventTarget subclassing, whose typings differ between browsers,
// Node and Workers). Listener return values are handed back to the emitter: the client uses the
// "event" listeners' results to choose the acknowledgement status.

export type Listener<T> = (payload: T) => unknown;

/** What one listener did with an emitted payload: its return value, or what it threw. */
export type ListenerResult = { ok: true; value: unknown } | { ok: false; error: unknown };

export class TypedEmitter<M extends object> {
  private readonly listeners = new Map<keyof M, Set<Listener<never>>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof M>(type: K, listener: Listener<M[K]>): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => this.off(type, listener);
  }

  off<K extends keyof M>(type: K, listener: Listener<M[K]>): void {
    this.listeners.get(type)?.delete(listener as Listener<never>);
  }

  /** Adds a listener that runs once. */
  once<K extends keyof M>(type: K, listener: Listener<M[K]>): () => void {
    const off = this.on(type, (payload) => {
      off();
      return listener(payload);
    });
    return off;
  }

  /** Resolves with the next payload of `type` that satisfies `filter`; rejects after `timeoutMs`. */
  next<K extends keyof M>(type: K, filter: (payload: M[K]) => boolean = () => true, timeoutMs = 10_000): Promise<M[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no "${String(type)}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on(type, (payload) => {
        if (!filter(payload)) return undefined;
        off();
        clearTimeout(timer);
        resolve(payload);
        return undefined;
      });
    });
  }

  /** Calls every listener of `type` in registration order; a throwing listener never stops the others. */
  emit<K extends keyof M>(type: K, payload: M[K]): ListenerResult[] {
    const set = this.listeners.get(type);
    if (!set || set.size === 0) return [];
    const results: ListenerResult[] = [];
    for (const l of [...set]) {
      try {
        results.push({ ok: true, value: (l as Listener<M[K]>)(payload) });
      } catch (error) {
        results.push({ ok: false, error });
      }
    }
    return results;
  }

  listenerCount<K extends keyof M>(type: K): number {
    return this.listeners.get(type)?.size ?? 0;
  }

  clear(): void {
    this.listeners.clear();
  }
}
