//! Resource IDs in DRS's and EC2's shapes (`s-` + 17 hex digits and so on).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// Generates unique, random-looking IDs. A per-simulator random seed keeps IDs of two
/// simulators (e.g. tests running in parallel) apart; a counter keeps one simulator's IDs
/// unique without a random-number dependency.
#[derive(Debug)]
pub struct IdGenerator {
    seed: u64,
    counter: u64,
}

impl IdGenerator {
    pub fn new() -> Self {
        Self {
            seed: RandomState::new().hash_one(std::time::SystemTime::now()),
            counter: 0,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(1);
        splitmix64(self.seed ^ self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// 17 lowercase hex digits, the length DRS and EC2 use in their IDs.
    pub fn hex17(&mut self) -> String {
        let high = self.next_u64();
        let low = self.next_u64();
        format!("{high:016x}{:x}", low & 0xf)
    }

    pub fn source_server_id(&mut self) -> String {
        format!("s-{}", self.hex17())
    }

    pub fn job_id(&mut self) -> String {
        format!("drsjob-{}", self.hex17())
    }

    pub fn recovery_snapshot_id(&mut self) -> String {
        format!("pit-{}", self.hex17())
    }

    pub fn ebs_snapshot_id(&mut self) -> String {
        format!("snap-{}", self.hex17())
    }

    pub fn ec2_instance_id(&mut self) -> String {
        format!("i-{}", self.hex17())
    }

    /// A private IPv4 address for an instance that is not in moto, so it still has one
    /// (and probe listeners on its loopback stand-in 127.b.c.d). The second octet stays
    /// in 64..=191 so the stand-in is never 127.0.0.1 or another well-known address.
    pub fn private_ipv4(&mut self) -> String {
        let bits = self.next_u64();
        let second = 64 + (bits & 0x7f);
        let third = (bits >> 8) & 0xff;
        let fourth = 4 + ((bits >> 16) % 247);
        format!("10.{second}.{third}.{fourth}")
    }

    pub fn launch_template_id(&mut self) -> String {
        format!("lt-{}", self.hex17())
    }

    /// A request ID in the UUID shape AWS uses for `x-amzn-RequestId`.
    pub fn request_id(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_have_drs_shapes_and_do_not_repeat() {
        let mut ids = IdGenerator::new();
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let id = ids.source_server_id();
            assert_eq!(id.len(), 19, "{id}");
            assert!(id[2..].bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
            assert!(seen.insert(id), "repeated ID");
        }
        assert_eq!(ids.job_id().len(), 24);
        assert_eq!(ids.recovery_snapshot_id().len(), 21);
        assert_eq!(ids.request_id().len(), 36);
    }
}
