import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { inject } from "vitest";
import { JetStreamBus } from "../../src/bus/jetstream-bus.js";
import { busContract } from "./bus-contract.js";

/** A bus on fresh streams: the previous test's streams (and their messages) are deleted first. */
async function freshBus(): Promise<JetStreamBus> {
  const nc = await connect({ servers: inject("natsUrl") });
  const jsm = await jetstreamManager(nc);
  for (const name of ["TEST_DISPATCH", "TEST_EVENTS"]) await jsm.streams.delete(name).catch(() => false);
  await nc.close();
  return JetStreamBus.connect({ servers: inject("natsUrl"), dispatchStream: "TEST_DISPATCH", eventsStream: "TEST_EVENTS" });
}

busContract("JetStream", freshBus);
