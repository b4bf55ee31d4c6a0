import { normalizeClientIp } from "../domain/client-ip.js";
import { durationMs, timestampDate } from "@bufbuild/protobuf/wkt";
import type { Duration } from "@bufbuild/protobuf/wkt";
import type { Destination as PbDestination, EstimateOtpRequest, GetDeliveryStatsRequest, SendOtpRequest } from "../../gen/otp/v1/otp_service_pb.js";
import { StatsGrouping } from "../../gen/otp/v1/otp_service_pb.js";
import { Channel as PbChannel } from "../../gen/otp/v1/common_pb.js";
import type { ChannelOverride } from "../../gen/otp/v1/otp_service_pb.js";
import { channelFromProto } from "../contract/enums.js";
import type { Channel } from "../domain/channel.js";
import { DEFAULT_CODE_LENGTH, MAX_CODE_LENGTH, MIN_CODE_LENGTH } from "../domain/code.js";
import { isE164, normalizeEmail, type Destination } from "../domain/destination.js";
import { InvalidInputError, type FieldViolation } from "../domain/errors.js";
import { DEFAULT_TTL_MS, MAX_TTL_MS } from "../domain/verification.js";
import type { PlanInput } from "../service/plan-request.js";
import { MAX_STATS_BUCKETS, MAX_STATS_WINDOW_MS, MIN_STATS_INTERVAL_MS, type StatsGroup, type StatsQuery } from "../service/delivery-stats.js";
import type { SendOtpCommand } from "../service/send-otp.js";

/**
 * Request validation: every field checked, every problem reported at once as a
 * field violation, before anything is written.
 */
class Violations {
  readonly list: FieldViolation[] = [];

  add(field: string, description: string): void {
    this.list.push({ field, description });
  }

  maxLength(field: string, value: string, max: number): void {
    if (value.length > max) this.add(field, `must be at most ${max} characters`);
  }

  /** Throws InvalidInputError when anything was reported. */
  check(): void {
    if (this.list.length > 0) throw new InvalidInputError(this.list);
  }
}

const POLICY_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const LOCALE = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;
const HOSTNAME = /^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const ANDROID_APP_HASH = /^[A-Za-z0-9+/]{11}$/;
const PRINTABLE = /^[\x21-\x7e]+$/;
const CONTROL = /[\u0000-\u001f\u007f]/;
const CODE = /^\d+$/;

/** Fields that SendOtp and EstimateOtp share. */
type PlanFields = Pick<
  SendOtpRequest,
  "destination" | "policy" | "channels" | "overrides" | "locale" | "brand" | "originDomain" | "embeddedOriginDomain" | "androidAppHash" | "codeLength" | "ttl" | "clientIp" | "deviceId"
>;

export function toSendCommand(request: SendOtpRequest): SendOtpCommand {
  const v = new Violations();
  const plan = planInput(request, v);
  if (request.idempotencyKey !== "") {
    if (!PRINTABLE.test(request.idempotencyKey)) v.add("idempotency_key", "must be printable ASCII without spaces");
    v.maxLength("idempotency_key", request.idempotencyKey, 128);
  }
  v.maxLength("client_reference", request.clientReference, 128);
  if (CONTROL.test(request.clientReference)) v.add("client_reference", "must not contain control characters");
  const entries = Object.entries(request.metadata);
  if (entries.length > 16) v.add("metadata", "must have at most 16 entries");
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > 64) v.add(`metadata[${JSON.stringify(key.slice(0, 64))}]`, "key must be 1–64 characters");
    if (value.length > 256) v.add(`metadata[${JSON.stringify(key.slice(0, 64))}]`, "value must be at most 256 characters");
    if (CONTROL.test(key) || CONTROL.test(value)) v.add(`metadata[${JSON.stringify(key.slice(0, 64))}]`, "must not contain control characters");
  }
  if (request.estimateId !== "" && (!PRINTABLE.test(request.estimateId) || request.estimateId.length > 64)) v.add("estimate_id", "is not an estimate id");
  v.check();
  return {
    idempotencyKey: request.idempotencyKey,
    ttlMs: ttlMs(request.ttl),
    clientReference: request.clientReference,
    metadata: { ...request.metadata },
    ...plan,
    // One spelling per address (IPv6 compressed, IPv4-mapped as IPv4): the per-IP window counts addresses.
    ...(request.clientIp ? { clientIp: normalizeClientIp(request.clientIp)! } : {}),
    ...(request.deviceId ? { deviceId: request.deviceId } : {}),
    ...(request.estimateId ? { estimateId: request.estimateId } : {}),
  };
}

export function toPlanInput(request: EstimateOtpRequest): PlanInput {
  const v = new Violations();
  const plan = planInput(request, v);
  v.check();
  return plan;
}

/** Checks a verification id argument (every RPC but Send, Estimate and ListRoutes has one). */
export function requireVerificationId(verificationId: string): string {
  const v = new Violations();
  if (verificationId === "") v.add("verification_id", "is required");
  else if (!PRINTABLE.test(verificationId) || verificationId.length > 64) v.add("verification_id", "is not a verification id");
  v.check();
  return verificationId;
}

/** A WatchDelivery resume point: sequences are positive integers well inside 2^53. */
export function requireSequence(afterSequence: bigint): number {
  const v = new Violations();
  if (afterSequence < 0n || afterSequence > BigInt(Number.MAX_SAFE_INTEGER)) v.add("after_sequence", `must be 0–${Number.MAX_SAFE_INTEGER}`);
  v.check();
  return Number(afterSequence);
}

export function requireCode(verificationId: string, code: string): { verificationId: string; code: string } {
  const v = new Violations();
  if (verificationId === "") v.add("verification_id", "is required");
  else if (!PRINTABLE.test(verificationId) || verificationId.length > 64) v.add("verification_id", "is not a verification id");
  if (code === "") v.add("code", "is required");
  else if (!CODE.test(code) || code.length < MIN_CODE_LENGTH || code.length > MAX_CODE_LENGTH) {
    v.add("code", `must be ${MIN_CODE_LENGTH}–${MAX_CODE_LENGTH} digits`);
  }
  v.check();
  return { verificationId, code };
}

const STATS_GROUPS: Partial<Record<StatsGrouping, StatsGroup>> = {
  [StatsGrouping.CHANNEL]: "channel",
  [StatsGrouping.ROUTE]: "route",
  [StatsGrouping.COUNTRY]: "country",
  [StatsGrouping.STEP]: "step",
  [StatsGrouping.NUMBER_PREFIX]: "prefix",
};

/** GetDeliveryStats: a window of at most 31 days (ending now by default), each grouping once, a bucket of a minute or more. */
export function toStatsQuery(request: GetDeliveryStatsRequest, now: Date): StatsQuery {
  const v = new Violations();
  const from = request.from ? timestampDate(request.from) : undefined;
  const to = request.to ? timestampDate(request.to) : now;
  if (from === undefined) v.add("from", "is required: the start of the window");
  else if (to.getTime() <= from.getTime()) v.add("to", "must be after from");
  else if (to.getTime() - from.getTime() > MAX_STATS_WINDOW_MS) v.add("to", "must be at most 31 days after from");
  const groupBy: StatsGroup[] = [];
  request.groupBy.forEach((grouping, i) => {
    const group = STATS_GROUPS[grouping];
    if (group === undefined) v.add(`group_by[${i}]`, "must be CHANNEL, ROUTE, COUNTRY or STEP");
    else if (groupBy.includes(group)) v.add(`group_by[${i}]`, `${StatsGrouping[grouping]} is given twice`);
    else groupBy.push(group);
  });
  const intervalMs = request.interval ? durationMs(request.interval) : undefined;
  if (intervalMs !== undefined && from !== undefined) {
    if (intervalMs < MIN_STATS_INTERVAL_MS) v.add("interval", "must be at least one minute");
    else if ((to.getTime() - from.getTime()) / intervalMs > MAX_STATS_BUCKETS) v.add("interval", `must split the window into at most ${MAX_STATS_BUCKETS} buckets`);
  }
  v.check();
  return { from: from!, to, groupBy, ...(intervalMs !== undefined ? { intervalMs } : {}) };
}

export function requireCountryFilter(country: string): string | undefined {
  const v = new Violations();
  if (country !== "" && !/^[A-Z]{2}$/.test(country)) v.add("country", "must be an ISO 3166-1 alpha-2 code, e.g. NL");
  v.check();
  return country || undefined;
}

/** ListRoutes' optional channel: unset, or one this contract knows (an unknown number is not "no filter"). */
export function requireChannelFilter(channel: PbChannel): Channel | undefined {
  const v = new Violations();
  const known = channelFromProto(channel);
  if (channel !== PbChannel.UNSPECIFIED && known === undefined) v.add("channel", "must be a channel (SMS, EMAIL, VOICE, PUSH or WHATSAPP)");
  v.check();
  return known;
}

function planInput(request: PlanFields, v: Violations): PlanInput {
  const destination = toDestination(request.destination, v);
  if (request.policy !== "" && !POLICY_NAME.test(request.policy)) v.add("policy", "must be lowercase letters, digits, '-' or '_', at most 64");
  const channels = toChannels(request.channels, v);
  const overrides = toOverrides(request.overrides, v);
  if (request.locale !== "" && !LOCALE.test(request.locale)) v.add("locale", "must be a BCP 47 language tag, e.g. en or nl-NL");
  v.maxLength("brand", request.brand, 64);
  if (CONTROL.test(request.brand)) v.add("brand", "must not contain line breaks or control characters");
  if (request.originDomain !== "" && !HOSTNAME.test(request.originDomain)) v.add("origin_domain", "must be a lowercase host name, e.g. example.com");
  if (request.embeddedOriginDomain !== "" && !HOSTNAME.test(request.embeddedOriginDomain)) {
    v.add("embedded_origin_domain", "must be a lowercase host name, e.g. pay.example.com");
  } else if (request.embeddedOriginDomain !== "" && request.originDomain === "") {
    v.add("embedded_origin_domain", "needs origin_domain: the embedding page's domain comes first on the line");
  }
  if (request.androidAppHash !== "" && !ANDROID_APP_HASH.test(request.androidAppHash)) {
    v.add("android_app_hash", "must be the 11-character SMS Retriever hash");
  }
  if (request.codeLength !== 0 && (request.codeLength < MIN_CODE_LENGTH || request.codeLength > MAX_CODE_LENGTH)) {
    v.add("code_length", `must be ${MIN_CODE_LENGTH}–${MAX_CODE_LENGTH}`);
  }
  if (request.ttl !== undefined) {
    const ms = durationMs(request.ttl);
    if (!(ms > 0) || ms > MAX_TTL_MS) v.add("ttl", "must be more than 0 and at most 10 minutes");
  }
  if (request.clientIp !== "" && normalizeClientIp(request.clientIp) === undefined) v.add("client_ip", "must be an IPv4 or IPv6 address");
  v.maxLength("device_id", request.deviceId, 128);
  if (CONTROL.test(request.deviceId)) v.add("device_id", "must not contain control characters");
  return {
    destination,
    policy: request.policy,
    ...(channels.length ? { channels } : {}),
    ...(overrides.size ? { overrides } : {}),
    render: {
      ...(request.brand ? { brand: request.brand } : {}),
      ...(request.locale ? { locale: request.locale } : {}),
      ...(request.originDomain ? { originDomain: request.originDomain } : {}),
      ...(request.embeddedOriginDomain ? { embeddedOriginDomain: request.embeddedOriginDomain } : {}),
      ...(request.androidAppHash ? { androidAppHash: request.androidAppHash } : {}),
    },
    codeLength: request.codeLength || DEFAULT_CODE_LENGTH,
  };
}

function toDestination(pb: PbDestination | undefined, v: Violations): Destination {
  if (pb === undefined || (!pb.phone && !pb.email && !pb.pushToken && !pb.voicePhone)) {
    v.add("destination", "at least one of phone, email, push_token or voice_phone is required");
    return {};
  }
  if (pb.phone && !isE164(pb.phone)) v.add("destination.phone", "must be a valid E.164 number, e.g. +31612345678");
  if (pb.voicePhone && !isE164(pb.voicePhone)) v.add("destination.voice_phone", "must be a valid E.164 number, e.g. +31612345678");
  // One spelling per mailbox (case, IDNA): limits count mailboxes. A list ("a@x.org,b@y.org") is not an address.
  const email = pb.email ? normalizeEmail(pb.email) : undefined;
  if (pb.email && email === undefined) v.add("destination.email", "must be one email address");
  v.maxLength("destination.push_token", pb.pushToken, 4096);
  if (CONTROL.test(pb.pushToken)) v.add("destination.push_token", "must not contain control characters");
  return {
    ...(pb.phone ? { phone: pb.phone } : {}),
    ...(email ? { email } : {}),
    ...(pb.pushToken ? { pushToken: pb.pushToken } : {}),
    ...(pb.voicePhone ? { voicePhone: pb.voicePhone } : {}),
  };
}

function toChannels(channels: readonly PbChannel[], v: Violations): Channel[] {
  const result: Channel[] = [];
  channels.forEach((pb, i) => {
    const channel = channelFromProto(pb);
    if (channel === undefined) v.add(`channels[${i}]`, "must be a channel (SMS, EMAIL, VOICE, PUSH or WHATSAPP)");
    else if (result.includes(channel)) v.add(`channels[${i}]`, `${channel} is listed twice`);
    else result.push(channel);
  });
  return result;
}

function toOverrides(overrides: readonly ChannelOverride[], v: Violations): Map<Channel, { routeId?: string; sender?: string }> {
  const result = new Map<Channel, { routeId?: string; sender?: string }>();
  overrides.forEach((o, i) => {
    const channel = channelFromProto(o.channel);
    if (channel === undefined) return v.add(`overrides[${i}].channel`, "must be a channel (SMS, EMAIL, VOICE, PUSH or WHATSAPP)");
    if (result.has(channel)) return v.add(`overrides[${i}].channel`, `${channel} is overridden twice`);
    v.maxLength(`overrides[${i}].route_id`, o.routeId, 64);
    if (CONTROL.test(o.routeId)) v.add(`overrides[${i}].route_id`, "must not contain control characters");
    v.maxLength(`overrides[${i}].sender`, o.sender, 64);
    if (CONTROL.test(o.sender)) v.add(`overrides[${i}].sender`, "must not contain control characters");
    result.set(channel, { ...(o.routeId ? { routeId: o.routeId } : {}), ...(o.sender ? { sender: o.sender } : {}) });
  });
  return result;
}

function ttlMs(ttl: Duration | undefined): number {
  return ttl === undefined ? DEFAULT_TTL_MS : durationMs(ttl);
}
