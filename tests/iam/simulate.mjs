// Evaluate IAM requests with @cloud-copilot/iam-simulate (pinned by package-lock.json).
// stdin: a JSON list of iam-simulate `Simulation` objects. stdout: a JSON list, one per simulation:
// {result: "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied" | "error", errors, ignoredContextKeys}.
// Strict mode: the request context is exactly what the caller sends.
import { runSimulation } from '@cloud-copilot/iam-simulate';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const out = [];
for (const simulation of JSON.parse(input)) {
  const r = await runSimulation(simulation, { simulationMode: 'Strict' });
  if (r.resultType === 'error') {
    out.push({ result: 'error', errors: r.errors, ignoredContextKeys: [] });
  } else if (r.resultType === 'single') {
    out.push({ result: r.overallResult, errors: null, ignoredContextKeys: r.result.ignoredContextKeys || [] });
  } else {
    out.push({ result: 'error', errors: { message: 'a wildcard resource: name one resource per request' } });
  }
}
process.stdout.write(JSON.stringify(out));
