import type { Insertable, Selectable } from "kysely";

/** A number prefix flagged as SMS pumping (see migration 20261203T1300-prefix-blocks). */
export interface PrefixBlocksTable {
  prefix: string;
  country: string;
  /** 'block': SMS and calls to the prefix are refused until `until`; 'monitor': only reported. */
  mode: "block" | "monitor";
  reason: string;
  blocked_at: Date;
  until: Date;
  /** Set when an operator lifted the block. */
  released_at: Date | null;
}

export type PrefixBlockRow = Selectable<PrefixBlocksTable>;
export type NewPrefixBlockRow = Insertable<PrefixBlocksTable>;
