// Evaluate IAM requests with @cloud-copilot/iam-simulate (pinned by package-lock.json).
// stdin: a JSON list of iam-simulate `Simulation` objects. stdout: a JSON list, one per simulation:
// {result: "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied" | "error", errors, ignoredContextKeys}.
// With --serve: one such list per line of stdin, one answer per line of stdout, until stdin closes
// (one node process answers every batch of a test process instead of starting for each).
// Strict mode: the request context is exactly what the caller sends.
import { createInterface } from 'node:readline';
import { runSimulation } from '@cloud-copilot/iam-simulate';

async function decide(simulations) {
  const out = [];
  for (const simulation of simulations) {
    const r = await runSimulation(simulation, { simulationMode: 'Strict' });
    if (r.resultType === 'error') {
      out.push({ result: 'error', errors: r.errors, ignoredContextKeys: [] });
    } else if (r.resultType === 'single') {
      out.push({ result: r.overallResult, errors: null, ignoredContextKeys: r.result.ignoredContextKeys || [] });
    } else {
      out.push({ result: 'error', errors: { message: 'a wildcard resource: name one resource per request' } });
    }
  }
  return out;
}

if (process.argv.includes('--serve')) {
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (line.trim()) process.stdout.write(JSON.stringify(await decide(JSON.parse(line))) + '\n');
  }
} else {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  process.stdout.write(JSON.stringify(await decide(JSON.parse(input))));
}
