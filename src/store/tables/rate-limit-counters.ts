export interface RateLimitCountersTable {
  /** "<scope>:<subject>", e.g. "dest:<hmac>", "caller:<id>", "ip:<hmac>", "spend:<caller>:<country>". */
  key: string;
  window_start: Date;
  /** Sends counted, or for a spend key micros spent. */
  count: number;
}
