/**
 * Sends and approvals of one route, destination country and number prefix in one minute (see migration
 * 20261203T1100-conversion-counts): what conversion-based route health and the SMS-pumping detector read.
 */
export interface ConversionCountsTable {
  minute: Date;
  route_id: string;
  /** ISO 3166-1 alpha-2 of the destination's phone number; '' without one. */
  country: string;
  /** The phone number's first digits (`+` and OTP_NUMBER_PREFIX_DIGITS digits); '' without one. */
  prefix: string;
  shard: number;
  /** Attempts a provider accepted. */
  sent: number;
  /** Approvals with a code this route delivered. */
  approved: number;
}
