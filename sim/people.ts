import { setTimeout as sleep } from "node:timers/promises";
import { ConnectError, type Client } from "@connectrpc/connect";
import { VerifyStatus, type OtpService } from "../gen/otp/v1/otp_service_pb.js";
import type { Arrival, SimNetwork } from "./network.js";
import { SeededRandom } from "./random.js";
import type { AttackRecord, UserRecord } from "./records.js";
import type { Scenario, SimUser } from "./scenario.js";
import { SIM_TOKEN } from "./stack.js";

const AUTH = { headers: { authorization: `Bearer ${SIM_TOKEN}` } };

interface World {
  readonly scenario: Scenario;
  readonly client: Client<typeof OtpService>;
  readonly network: SimNetwork;
  readonly now: () => number;
}

/**
 * One person: asks for a code at their time, holds the first code that
 * reaches their phone or inbox, types it after their typing delay; gives up
 * when nothing came in time.
 */
export async function live(world: World, user: SimUser): Promise<UserRecord> {
  const record: UserRecord = { id: user.id, cohort: user.cohort.name, warmUp: user.warmUp, requestedAt: user.requestAtMs, takes: [] };
  let held: ((arrival: Arrival) => void) | undefined;
  const firstCode = new Promise<Arrival>((resolve) => (held = resolve));
  const recipient = { took: (take: UserRecord["takes"][number]) => record.takes.push(take), arrived: (arrival: Arrival) => held!(arrival) };
  world.network.register(user.phone, recipient);
  world.network.register(user.email, recipient);

  await sleep(Math.max(0, user.requestAtMs - world.now()));
  record.requestedAt = world.now();
  try {
    const answer = await world.client.sendOtp({ destination: { phone: user.phone, email: user.email }, clientIp: user.clientIp }, AUTH);
    record.sent = { verificationId: answer.verificationId, firstRouteId: answer.firstAttempt?.routeId ?? "" };
  } catch (error) {
    record.refused = ConnectError.from(error).rawMessage;
    return record;
  }
  const giveUp = sleep(Math.max(0, record.requestedAt + world.scenario.giveUpMs - world.now()), undefined, { ref: false });
  const arrival = await Promise.race([firstCode, giveUp]);
  if (arrival === undefined) return record;
  record.holdAt = arrival.at;
  record.holdChannel = arrival.channel;
  await sleep(user.typingMs);
  try {
    const answer = await world.client.verifyOtp({ verificationId: record.sent.verificationId, code: arrival.code }, AUTH);
    if (answer.status === VerifyStatus.APPROVED) record.verifiedAt = world.now();
    else record.verifyFailure = VerifyStatus[answer.status];
  } catch (error) {
    record.verifyFailure = ConnectError.from(error).rawMessage;
  }
  return record;
}

/** Bots asking for codes to random numbers of one prefix, each from its own address, at a steady rate; nobody types them. */
export async function pump(world: World): Promise<AttackRecord> {
  const { attack, seed } = world.scenario;
  const record: AttackRecord = { prefix: attack.prefix, requests: 0, refused: 0, takes: [] };
  world.network.registerPrefix(attack.prefix, { took: (take) => record.takes.push(take) });
  const random = new SeededRandom(seed ^ 0x5eed);
  const total = Math.round((attack.perSecond * attack.durationMs) / 1000);
  const requests: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    await sleep(Math.max(0, attack.startMs + (i * 1000) / attack.perSecond - world.now()));
    const phone = attack.prefix + random.digits(attack.digits);
    const clientIp = `203.0.${Math.floor(random.next() * 256)}.${Math.floor(random.next() * 256)}`;
    record.requests += 1;
    requests.push(
      world.client.sendOtp({ destination: { phone }, clientIp }, AUTH).then(
        () => undefined,
        (error: unknown) => {
          record.refused += 1;
          if (record.firstRefusedAt === undefined) {
            record.firstRefusedAt = world.now() - attack.startMs;
            record.firstRefusal = ConnectError.from(error).rawMessage;
          }
        },
      ),
    );
  }
  await Promise.all(requests);
  return record;
}
