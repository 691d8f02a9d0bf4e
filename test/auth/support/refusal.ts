import { AuthenticationError } from '../../../src/auth/errors';

/** The AuthenticationError a verification rejected with; fails the test if it resolved or threw something else. */
export async function refusalOf(verification: Promise<unknown>): Promise<AuthenticationError> {
  try {
    await verification;
  } catch (error) {
    if (error instanceof AuthenticationError) return error;
    throw error;
  }
  throw new Error('expected the token to be refused, but it was accepted');
}
