//! Without the `e2e` feature the end-to-end tests (tier 3) are not built;
//! this shows so in the test output, as an ignored test with the reason.

#[cfg(not(feature = "e2e"))]
#[test]
#[ignore = "the end-to-end tests (tier 3) did not run: they need root; run scripts/test.sh as root (or cargo test --features croft/e2e)"]
fn end_to_end_tests() {
    panic!("the end-to-end tests are not built without the e2e feature");
}
