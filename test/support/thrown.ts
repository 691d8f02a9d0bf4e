/**
 * What `run` threw, when it is an `errorClass`; undefined when `run` returned. Any other error is
 * thrown on, so an unexpected failure stays a test failure rather than a wrong answer.
 */
export function thrownBy<E extends Error>(
  errorClass: abstract new (...args: never[]) => E,
  run: () => unknown,
): E | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof errorClass) return error;
    throw error;
  }
  return undefined;
}
