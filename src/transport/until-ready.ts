import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";

/**
 * A service implementation that answers UNAVAILABLE until `current()` returns
 * the real one, then delegates every call to it. Lets the ports open (and
 * health say NOT_SERVING) while the process still waits for its dependencies.
 */
export function untilReady<S extends DescService>(service: S, current: () => ServiceImpl<S> | undefined): ServiceImpl<S> {
  const notYet = () => new ConnectError("the service is starting; retry", Code.Unavailable);
  const impl: Record<string, unknown> = {};
  for (const method of service.methods as DescMethod[]) {
    const name = method.localName;
    const target = () => {
      const ready = current() as Record<string, (...args: unknown[]) => unknown> | undefined;
      if (ready === undefined) throw notYet();
      return ready[name]!;
    };
    impl[name] =
      method.methodKind === "unary"
        ? async (...args: unknown[]) => target()(...args)
        : async function* (...args: unknown[]) {
            yield* target()(...args) as AsyncIterable<unknown>;
          };
  }
  return impl as ServiceImpl<S>;
}
