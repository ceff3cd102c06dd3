// Placeholder until the owning capability lands.
export async function run(_argv: string[]): Promise<number> {
  process.stderr.write('nodewarden engine: not implemented yet\n');
  return 2;
}
