import { decodeDeliveryEvent } from "../contract/delivery-event.js";
import type { DeliveryEvent } from "../domain/delivery-event.js";
import type { EventFeed } from "../service/watch-delivery.js";
import type { Bus } from "./bus.js";
import { eventsSubject, EVENTS_SUBJECTS } from "./subjects.js";

const EVENTS_PREFIX = eventsSubject("");

/**
 * One bus subscription per process, fanned out to every watcher by
 * verification id, so a thousand watchers cost one subscription, not a thousand.
 */
export class EventHub implements EventFeed {
  private readonly listeners = new Map<string, Set<(event: DeliveryEvent) => void>>();
  private unsubscribe: (() => void) | undefined;

  static async start(bus: Bus): Promise<EventHub> {
    const hub = new EventHub();
    hub.unsubscribe = await bus.subscribe(EVENTS_SUBJECTS, (message) => {
      // Every event of every verification comes here; most have no watcher on this process, so none is decoded for nothing.
      if (!hub.listeners.has(message.subject.slice(EVENTS_PREFIX.length))) return;
      let event: DeliveryEvent;
      try {
        event = decodeDeliveryEvent(message.data);
      } catch {
        return; // not an event of ours: watchers read the store on gaps, so nothing is lost
      }
      hub.dispatch(event);
    });
    return hub;
  }

  subscribe(verificationId: string, listener: (event: DeliveryEvent) => void): () => void {
    let set = this.listeners.get(verificationId);
    if (set === undefined) this.listeners.set(verificationId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(verificationId);
    };
  }

  /** Watchers currently listening, across all verifications. */
  get watcherCount(): number {
    let count = 0;
    for (const set of this.listeners.values()) count += set.size;
    return count;
  }

  stop(): void {
    this.unsubscribe?.();
  }

  private dispatch(event: DeliveryEvent): void {
    for (const listener of this.listeners.get(event.verificationId) ?? []) listener(event);
  }
}
