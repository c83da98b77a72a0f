/**
 * The error for remote output that does not have the documented shape. Workers AI and Vectorize
 * answer over the network; their output is checked like any other untrusted input, and a bad
 * answer fails loudly instead of putting NaN or misattributed vectors into the index.
 * @module
 */
export class InvalidResponseError extends Error {
  override readonly name = "InvalidResponseError";
  /** Which service answered (`Workers AI (@cf/baai/bge-base-en-v1.5)`, `Vectorize`). */
  readonly service: string;

  constructor(service: string, detail: string) {
    super(`${service} returned an invalid response: ${detail}`);
    this.service = service;
  }
}
