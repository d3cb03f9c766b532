//! The local cloud (work in progress).
