import { expect } from "vitest";
import { ProviderError } from "../../src/channels/provider.js";

/** The ProviderError a provider call fails with; fails the test if it succeeds or throws anything else. */
export async function providerFailure(work: Promise<unknown>): Promise<ProviderError> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderError);
  return error as ProviderError;
}
