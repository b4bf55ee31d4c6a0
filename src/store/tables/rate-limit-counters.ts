export interface RateLimitCountersTable {
  /** "<scope>:<subject>", e.g. "dest:<hmac>", "caller:<id>", "ip:<hmac>". */
  key: string;
  window_start: Date;
  count: number;
}
