"""The harness's own tests (standard library unittest): `scripts/bench --self-test`, run by scripts/test."""
