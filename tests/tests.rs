//! The one integration-test binary (so tests link once); each area has a module in `suite/`.

mod suite;
