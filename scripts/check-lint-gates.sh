#!/usr/bin/env bash
# Proves the lint gates bite (issue 9): in a throw-away copy of the working
# tree, plants one violation per gate and runs that gate's command as
# `npm run lint` runs it; each must exit non-zero and name the violation.
#   (i)   an I/O module imported in a pure folder (node:fs in core/, ioredis in
#         rules/engine/), and an I/O helper reached through a local import  -> eslint
#   (ii)  an unused export                                                   -> knip
#   (iii) an import cycle                                                    -> madge
# The working tree is never touched. Needs node_modules and a build (dist/).
# Usage: npm run lint:gates   (about 1-3 min: eslint is type-aware)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -d node_modules ] || { echo "check-lint-gates: no node_modules (npm ci first)" >&2; exit 2; }
[ -d dist/core ] || { echo "check-lint-gates: no dist/ (npm run build first)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nw-lint-gates.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$tmp"
ln -s "$root/node_modules" "$tmp/node_modules"
cp -a dist "$tmp/dist"
cd "$tmp"

# The gate commands exactly as package.json's lint script runs them.
gate() { node -e 'const s = require("./package.json").scripts.lint.split(" && ").find((c) => c.startsWith(process.argv[1])); if (!s) process.exit(1); console.log(s);' "$1"; }
knip_cmd=$(gate knip)
madge_cmd=$(gate madge)
gate eslint >/dev/null

failures=0
# expect_failure <name> <needle>... : the last command's output ($out, $rc) must fail and contain every needle.
expect_failure() {
  local name=$1; shift
  if [ "$rc" -eq 0 ]; then echo "FAIL $name: the gate passed"; failures=$((failures + 1)); return; fi
  for needle in "$@"; do
    if ! grep -qF -- "$needle" <<<"$out"; then
      echo "FAIL $name: exit $rc but the output does not say: $needle"; echo "$out" | tail -20; failures=$((failures + 1)); return
    fi
  done
  echo "ok   $name (exit $rc)"
}

# (i) I/O in pure folders: direct imports, and through a local module that does I/O.
cat > core/zz-gate-io.ts <<'EOF'
import { readFileSync } from 'node:fs';
export const zzGateIo = (): string => readFileSync('/dev/null', 'utf8');
EOF
cat > rules/engine/zz-gate-redis.ts <<'EOF'
import { Redis } from 'ioredis';
export const zzGateRedis = (): Redis => new Redis({ lazyConnect: true });
EOF
cat > core/zz-gate-through.ts <<'EOF'
import { readTextFile } from '../adapters/text-file.js';
export const zzGateThrough = (): string => readTextFile('/dev/null');
EOF
set +e
out=$(npx eslint core/zz-gate-io.ts rules/engine/zz-gate-redis.ts core/zz-gate-through.ts 2>&1); rc=$?
set -e
expect_failure "(i) eslint: node:fs in core/" "core/zz-gate-io.ts" "'node:fs' import is restricted" "I/O module in a pure folder"
expect_failure "(i) eslint: ioredis in rules/engine/" "rules/engine/zz-gate-redis.ts" "'ioredis' import is restricted"
expect_failure "(i) eslint: I/O reached through adapters/text-file.ts" "core/zz-gate-through.ts" "pure file loads adapters/text-file.ts" "nodewarden/pure-imports-pure"
rm core/zz-gate-io.ts rules/engine/zz-gate-redis.ts core/zz-gate-through.ts

# (ii) An unused export in a used module.
cp core/ids.ts core/ids.ts.orig
printf '\nexport const zzGateUnused = 1;\n' >> core/ids.ts
set +e
out=$(eval "npx $knip_cmd" 2>&1); rc=$?
set -e
expect_failure "(ii) knip: unused export" "Unused exports" "zzGateUnused" "core/ids.ts"
mv core/ids.ts.orig core/ids.ts

# (iii) An import cycle, compiled to dist/ as the build would.
cat > core/zz-gate-cycle-a.ts <<'EOF'
import { zzGateB } from './zz-gate-cycle-b.js';
export const zzGateA = (): number => zzGateB() + 1;
EOF
cat > core/zz-gate-cycle-b.ts <<'EOF'
import { zzGateA } from './zz-gate-cycle-a.js';
export const zzGateB = (): number => (typeof zzGateA === 'function' ? 1 : 0);
EOF
cat > tsconfig.gates.json <<'EOF'
{ "extends": "./tsconfig.json", "compilerOptions": { "incremental": false }, "include": [], "files": ["core/zz-gate-cycle-a.ts", "core/zz-gate-cycle-b.ts"] }
EOF
npx tsc -p tsconfig.gates.json
set +e
out=$(eval "npx $madge_cmd" 2>&1); rc=$?
set -e
expect_failure "(iii) madge: import cycle" "zz-gate-cycle-a.js" "zz-gate-cycle-b.js"

if [ "$failures" -gt 0 ]; then echo "check-lint-gates: $failures gate(s) did not fail as they must"; exit 1; fi
echo "check-lint-gates: every gate fails on its violation"
