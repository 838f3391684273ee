// Camunda's own JavaScript SDK against the operator's Console API endpoint (run by console_api.rs).
// Settings come from the environment: CAMUNDA_CONSOLE_BASE_URL, CAMUNDA_AUTH_STRATEGY=BEARER,
// CAMUNDA_OAUTH_TOKEN, NODE_EXTRA_CA_CERTS (the test's CA), CLUSTER_UUID. Prints one JSON object.
const { Camunda8 } = require('@camunda8/sdk');

async function main() {
  const admin = new Camunda8().getAdminApiClient();
  const cluster = process.env.CLUSTER_UUID;
  const out = {};
  out.before = await admin.getBackups(cluster);
  out.created = await admin.createBackup(cluster);
  // A second create while the first one runs or right after it: refused at once, never retried.
  const started = Date.now();
  try {
    out.second = await admin.createBackup(cluster);
  } catch (error) {
    out.refusal = {
      statusCode: error.response?.statusCode ?? error.statusCode ?? error.code,
      body: error.response?.body ?? null,
      retries: error.response?.retryCount ?? null,
      millis: Date.now() - started,
    };
  }
  out.listed = await admin.getBackups(cluster);
  out.deleted = await admin.deleteBackup(cluster, out.created.uuid);
  out.after = await admin.getBackups(cluster);
  process.stdout.write(JSON.stringify(out));
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n${JSON.stringify(error.response?.body ?? null)}\n`);
  process.exit(1);
});
