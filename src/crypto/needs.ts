/**
 * One-line preconditions (the AWS Encryption SDK's `needs` habit): each call site states the
 * security property it protects in its message.
 */
export function needs<E extends Error>(condition: unknown, makeError: () => E): asserts condition {
  if (!condition) throw makeError();
}
