// Placeholder until the owning capability lands.
export async function run(_argv: string[]): Promise<number> {
  process.stderr.write('nodewarden rules: not implemented yet\n');
  return 2;
}
