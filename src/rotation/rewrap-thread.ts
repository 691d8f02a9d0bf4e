/**
 * Entry point of one rewrap crypto thread (see rewrap-thread-pool.ts): rebuilds the keyring it is
 * sent, rewraps the rows of each job with rewrapRows, and answers with the new envelopes packed.
 * Invariants: the KEK bytes received are copied into the keyring and the received copies zeroed;
 * the keyring held is zeroed when replaced and when told to forget; nothing is logged.
 */
import { parentPort } from 'node:worker_threads';
import { importKek, Keyring } from '../crypto';
import { rewrapRows, type RowToRewrap } from './rewrap-rows';
import { packRows, type FromThread, type ToThread } from './rewrap-thread-pool';

let keyring: Keyring | undefined;

function forgetKeyring(): void {
  for (const entry of keyring?.entries() ?? []) entry.key.fill(0);
  keyring = undefined;
}

function answer(message: Extract<ToThread, { kind: 'rewrap' }>): FromThread {
  try {
    // A job is always preceded by its keyring: without one this thread was used out of order.
    if (!keyring) throw new Error('no keyring was sent before the job');
    const envelopes = new Uint8Array(message.packedEnvelopes);
    const rows: RowToRewrap[] = message.groupIds.map((groupId, index) => ({
      groupId,
      secretVersion: message.secretVersions[index] as number,
      envelope: envelopes.subarray(message.offsets[index], message.offsets[index + 1]),
    }));
    const outcomes = rewrapRows(rows, keyring);
    const { packed, offsets } = packRows(
      outcomes.map((outcome) => ('envelope' in outcome ? outcome : { envelope: new Uint8Array(0) })),
    );
    return {
      jobId: message.jobId,
      packedEnvelopes: packed.buffer as ArrayBuffer,
      offsets,
      failures: outcomes.map((outcome) => ('failure' in outcome ? outcome.failure : null)),
    };
  } catch (error) {
    // Not a crypto error (those are per-row outcomes): a bug. Its name and message carry no key bytes.
    return {
      jobId: message.jobId,
      errorName: error instanceof Error ? error.name : typeof error,
      errorMessage: error instanceof Error ? error.message : '',
    };
  }
}

const port = parentPort;
if (!port) throw new Error('rewrap-thread runs only as a worker thread');

port.on('message', (message: ToThread) => {
  switch (message.kind) {
    case 'keyring': {
      forgetKeyring();
      try {
        keyring = Keyring.create(
          message.keys.map((entry) => importKek(entry.key, entry.kekVersion)),
          message.currentKekId,
          message.retiredKekIds,
        );
      } finally {
        for (const entry of message.keys) entry.key.fill(0);
      }
      return;
    }
    case 'rewrap': {
      const reply = answer(message);
      port.postMessage(reply, 'packedEnvelopes' in reply ? [reply.packedEnvelopes] : []);
      return;
    }
    case 'forget':
      forgetKeyring();
      port.close();
      return;
  }
});
