//! Which server holds a key: a ketama-style ring over xxh3.
//!
//! Each server owns [`POINTS_PER_SERVER`] points, placed by hashing its address; a key
//! belongs to the server of the first point at or after the key's hash. The placement
//! depends only on the set of addresses (not their order), and adding or removing one
//! server of n moves about 1/n of the keys, all to or from that server.

use twox_hash::XxHash3_64;

/// Points per server: enough that servers get shares within a few percent of equal.
const POINTS_PER_SERVER: usize = 160;

pub(crate) struct Ring {
    /// (point, server index), sorted by point.
    points: Vec<(u64, u32)>,
    /// One server: no hashing needed.
    single: bool,
}

impl Ring {
    pub fn new<S: AsRef<str>>(addresses: &[S]) -> Self {
        let mut points = Vec::with_capacity(addresses.len() * POINTS_PER_SERVER);
        for (i, addr) in addresses.iter().enumerate() {
            for p in 0..POINTS_PER_SERVER {
                let h = XxHash3_64::oneshot(format!("{}-{p}", addr.as_ref()).as_bytes());
                points.push((h, i as u32));
            }
        }
        points.sort_unstable();
        Self {
            points,
            single: addresses.len() == 1,
        }
    }

    /// Index (into the addresses given to [`Ring::new`]) of the server for `key`.
    pub fn server_for(&self, key: &[u8]) -> usize {
        if self.single {
            return 0;
        }
        let h = XxHash3_64::oneshot(key);
        let i = self.points.partition_point(|&(p, _)| p < h);
        let (_, server) = self.points.get(i).unwrap_or(&self.points[0]);
        *server as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c:{i:08x}")).collect()
    }

    #[test]
    fn spreads_keys_about_evenly() {
        let ring = Ring::new(&["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"]);
        let mut counts = [0usize; 3];
        for k in keys(30_000) {
            counts[ring.server_for(k.as_bytes())] += 1;
        }
        for c in counts {
            assert!((7_000..13_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn adding_a_server_moves_about_one_nth_of_the_keys_only_to_it() {
        let three = ["a:1", "b:1", "c:1"];
        let four = ["a:1", "b:1", "c:1", "d:1"];
        let (r3, r4) = (Ring::new(&three), Ring::new(&four));
        let ks = keys(40_000);
        let mut moved = 0;
        for k in &ks {
            let (before, after) = (r3.server_for(k.as_bytes()), r4.server_for(k.as_bytes()));
            if before != after {
                assert_eq!(after, 3, "a key moved between old servers");
                moved += 1;
            }
        }
        let share = moved as f64 / ks.len() as f64;
        assert!((0.17..0.33).contains(&share), "moved {share}");
    }

    #[test]
    fn order_of_addresses_does_not_matter() {
        let r1 = Ring::new(&["a:1", "b:1", "c:1"]);
        let r2 = Ring::new(&["c:1", "a:1", "b:1"]);
        let name1 = ["a:1", "b:1", "c:1"];
        let name2 = ["c:1", "a:1", "b:1"];
        for k in keys(1000) {
            assert_eq!(
                name1[r1.server_for(k.as_bytes())],
                name2[r2.server_for(k.as_bytes())]
            );
        }
    }
}
