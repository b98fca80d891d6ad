//! Orbitalis.
