/**
 * Whether an error says the database cannot be reached or cannot serve right
 * now (as opposed to a bug or a constraint): the call may succeed later, and
 * callers see UNAVAILABLE.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === "string") return UNAVAILABLE_ERRNO.has(code) || UNAVAILABLE_SQLSTATE.test(code);
  return typeof message === "string" && UNAVAILABLE_DRIVER_MESSAGE.test(message);
}

// Connection-level failures of the socket.
const UNAVAILABLE_ERRNO = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EHOSTUNREACH"]);
// 08: connection exceptions; 57P0x: the server is shutting down or restarting; 57014: a statement timeout;
// 53300: no connection slot left; 25P03: the server ended an idle transaction; 40P01/40001: a conflict that outlived its retries.
const UNAVAILABLE_SQLSTATE = /^(08|57P0|57014$|53300$|25P03$|40P01$|40001$)/;
// pg's own errors for a connection that broke or could not be had carry no code.
const UNAVAILABLE_DRIVER_MESSAGE = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended|Query read timeout)/;
