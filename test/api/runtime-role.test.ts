/**
 * What the README promises about the database roles, tried for real: the service runs as a login
 * role that is only a member of provsec_app and does all its work; that role cannot rewrite the
 * audit log or the secret history, nor drop their triggers. A service whose role owns audit_events
 * (the default single role with MIGRATE_ON_START=true) says at start-up, in one warning line, that
 * the audit log is not append-only against it.
 */
import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';
import { randomKekHex, startTestService, type TestService } from '../support/test-service';
import { apiFor, bodyOf, CERT_WORKER, groupPath, type ProvisionSecretJson } from './support/api-client';

const OWNER_WARNING = 'owns audit_events';
const kekHex = randomKekHex();
let owner: TestService;
let member: TestService;
let memberPool: Pool;

beforeAll(async () => {
  owner = await startTestService({ keyFileContent: { key: kekHex } });
  const roleName = `provsec_service_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  await owner.pool.query(`CREATE ROLE ${roleName} LOGIN PASSWORD '${password}' IN ROLE provsec_app`);
  const memberUrl = new URL(owner.databaseUrl);
  memberUrl.username = roleName;
  memberUrl.password = password;
  member = await startTestService({
    keyFileContent: { key: kekHex },
    env: { DATABASE_URL: memberUrl.toString(), MIGRATE_ON_START: 'false' },
  });
  memberPool = new Pool({ connectionString: memberUrl.toString(), max: 1 });
}, 60_000);
afterAll(async () => {
  await memberPool?.end();
  await member?.stop();
  await owner?.stop();
});

test('a service whose database role owns audit_events warns once at start-up that the audit log is not append-only against it', () => {
  const warnings = owner
    .logs()
    .split('\n')
    .filter((line) => line.includes(OWNER_WARNING));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain('"level":"warn"');
});

test('a service running as a member of provsec_app gives no such warning and does all of its work', async () => {
  expect(member.logs()).not.toContain(OWNER_WARNING);
  const api = apiFor(member);
  expect((await api.post('/v1/device-groups', { id: 'role.1', provisionSecret: 'ps-role-1' })).status).toBe(201);
  expect((await api.put(groupPath('role.1', '/provision-secret'), { provisionSecret: 'ps-role-2' })).status).toBe(200);
  const read = await api.get(groupPath('role.1', '/provision-secret'), { as: CERT_WORKER });
  expect(bodyOf<ProvisionSecretJson>(read).provisionSecret).toBe('ps-role-2');
  expect((await api.get('/v1/audit-events?groupId=role.1', { as: 'auditor' })).status).toBe(200);
  expect((await api.delete(groupPath('role.1'))).status).toBe(204);
});

test('provsec_app may append to the audit log and the secret history, but not change, erase or unprotect them', async () => {
  for (const table of ['audit_events', 'provision_secret_history']) {
    await expect(memberPool.query(`UPDATE ${table} SET id = id`)).rejects.toThrow(/permission denied/);
    await expect(memberPool.query(`DELETE FROM ${table}`)).rejects.toThrow(/permission denied/);
    await expect(memberPool.query(`TRUNCATE ${table}`)).rejects.toThrow(/permission denied/);
  }
  await expect(memberPool.query('DROP TRIGGER audit_events_append_only ON audit_events')).rejects.toThrow(
    /must be owner/,
  );
  await expect(
    memberPool.query('DROP TRIGGER provision_secret_history_append_only ON provision_secret_history'),
  ).rejects.toThrow(/must be owner/);
});
