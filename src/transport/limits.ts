/** Largest request message either port accepts, after decompression: far above any valid request (a few KiB). */
export const MAX_REQUEST_BYTES = 256 * 1024;
