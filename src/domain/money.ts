/** An amount of money in millionths of a currency unit. */
export interface Money {
  readonly currency: string;
  readonly micros: number;
}

/** "0.072 EUR": trailing zeros dropped, at least two decimals. */
export function formatMoney(money: Money): string {
  const units = (money.micros / 1_000_000).toFixed(6).replace(/0{1,4}$/, "");
  return `${units} ${money.currency}`;
}
