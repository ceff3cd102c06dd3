/**
 * Reads one figure from a process's Prometheus /metrics page: the sum of
 * every sample of `name` (all label sets). Used by the integration tests and
 * the benches that drive a real engine.
 */
export async function scrapeMetricSum(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) sum += Number(line.split(' ').pop());
  return sum;
}
