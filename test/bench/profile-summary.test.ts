/** The CPU-profile breakdown: samples charged to the nearest package or source folder above them. */
import { analyzeProfile, frameOwner, type CpuProfile } from '../../bench/profile-summary';

const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });

test('frames are owned by their package, our source folder, or nobody (node core)', () => {
  expect(frameOwner(frame('jwtVerify', 'file:///app/node_modules/jose/dist/node/cjs/jwt/verify.js'))).toBe('npm:jose');
  expect(frameOwner(frame('x', 'file:///app/node_modules/@noble/ciphers/aes.js'))).toBe('npm:@noble/ciphers');
  expect(frameOwner(frame('x', 'file:///app/node_modules/a/node_modules/pg-protocol/dist/parser.js'))).toBe(
    'npm:pg-protocol',
  );
  expect(frameOwner(frame('verify', 'file:///app/dist/src/auth/token-verifier.js'))).toBe('src/auth');
  expect(frameOwner(frame('main', 'file:///app/dist/src/runtime.js'))).toBe('src/runtime');
  expect(frameOwner(frame('writeLine', 'file:///app/dist/src/http/access-log.js'))).toBe('src/http/access-log');
  expect(frameOwner(frame('verifyOneShot', 'node:internal/crypto/sig'))).toBeUndefined();
  expect(frameOwner(frame('(garbage collector)', ''))).toBe('gc');
});

test('time in node core is charged to the package that called it', () => {
  // root -> jose verify -> node:crypto verifyOneShot (leaf); root -> (idle)
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 4] },
      {
        id: 2,
        callFrame: frame('verify', 'file:///app/node_modules/jose/dist/node/cjs/runtime/verify.js'),
        children: [3],
      },
      { id: 3, callFrame: frame('verifyOneShot', 'node:internal/crypto/sig') },
      { id: 4, callFrame: frame('(idle)', '') },
    ],
    samples: [3, 3, 3, 4, 2],
    timeDeltas: [1000, 1000, 1000, 1000, 1000],
  };
  const breakdown = analyzeProfile(profile);
  expect(breakdown.busySamples).toBe(4);
  expect(breakdown.byConcern[0]).toEqual({ concern: 'token verification (jose, src/auth)', samples: 4 });
  expect(breakdown.topFunctions[0]).toEqual({ name: 'verifyOneShot node:internal/crypto/sig:1', selfSamples: 3 });
});
