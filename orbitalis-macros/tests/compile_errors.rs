//! Each misuse of the macros is a compile error pointing at the offending item
//! (`tests/ui/*.rs`, with the expected messages in `*.stderr`).

#[test]
fn compile_errors_point_at_the_mistake() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
