#!/usr/bin/env bash
# Mutation testing of certauth-core with cargo-mutants: is there a test that fails when a
# decision changes? (issue 18; docs/MUTANTS.md has the full run's scores.)
#
#   scripts/mutants.sh ci        the key table, the CRL rules and the core lines the last
#                                commit changed: what CI runs (a few minutes)
#   scripts/mutants.sh boundary  the security boundary (TLS verifier, key table, trusted
#                                proxies, proxy header decoding, pins, verification with its
#                                anchors, CRLs and name constraints, the decision): about
#                                35 minutes on 2 cores, before a change to it lands
#   scripts/mutants.sh full      every mutant of the core (about two hours on 2 cores)
#
# Fails on any missed mutant not listed as equivalent in .cargo/mutants.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
version=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -qF "$version"; then
  echo "installing cargo-mutants $version"
  cargo install --locked --quiet "cargo-mutants@$version"
fi
core=crates/certauth-core/src
# Its output and the last commit's diff go under target/ (absent with CARGO_TARGET_DIR set elsewhere).
mkdir -p target
run() {
  cargo mutants --package certauth-core --all-features --no-shuffle --timeout 120 \
    --jobs "${MUTANTS_JOBS:-2}" --output target/mutants "$@"
}
case "${1:-ci}" in
  ci)
    # What CI can afford on two cores (about 3 s a mutant): the key table and the CRL rules,
    # and whatever core lines the last commit changed. `boundary` is the whole security
    # boundary, run before a change to it lands (docs/MUTANTS.md has its last scores).
    # The newest boundary code with a fixed set (the online revocation cache's single flight
    # and the fetch's URL and size bounds, issue 33); the key table and the CRL rules had
    # theirs until issue 33 (docs/MUTANTS.md), and stay in `boundary`.
    echo "== mutants: the revocation cache and fetch bounds"
    run -f "$core/revocation/cache.rs" -f "$core/revocation/fetch.rs"
    if git rev-parse -q --verify HEAD~1 >/dev/null; then
      git diff HEAD~1 -- "$core" > target/mutants-last-commit.diff
      if [ -s target/mutants-last-commit.diff ]; then
        echo "== mutants: core lines changed by the last commit"
        run --in-diff target/mutants-last-commit.diff
      fi
    fi
    ;;
  boundary)
    # Both runs always run; the script fails afterwards if either missed a mutant.
    status=0
    echo "== mutants: the security boundary"
    run -f "$core/tls.rs" -f "$core/keys.rs" -f "$core/proxy.rs" -f "$core/proxy/xfcc.rs" \
      -f "$core/verify.rs" -f "$core/verify/cache.rs" -f "$core/verify/anchors.rs" \
      -f "$core/verify/crl.rs" -f "$core/verify/constraints.rs" -f "$core/authenticator.rs" \
      -f "$core/verify/epoch.rs" -f "$core/revocation.rs" -f "$core/revocation/ocsp.rs" \
      -f "$core/revocation/cache.rs" -f "$core/revocation/fetch.rs" -f "$core/forward.rs" \
      -f "$core/proxy/protocol.rs" \
      || status=$?
    echo "== mutants: SHA-256 pins"
    run -f "$core/policy/helpers.rs" --re 'Sha256Pin|parse_sha256_pin|AllowFingerprints' \
      || status=$?
    exit "$status"
    ;;
  full)
    run
    ;;
  *)
    echo "usage: scripts/mutants.sh [ci|boundary|full]" >&2
    exit 2
    ;;
esac
