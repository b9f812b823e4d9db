//! Schedule choices: a seeded random number generator and the two
//! strategies that decide, at every preemption point, which runnable
//! thread runs next.
//!
//! * Random walk: at each point the running thread keeps the CPU with a
//!   probability fixed per seed (high, medium or low), else a runnable
//!   thread is drawn uniformly. Good at short race windows.
//! * PCT (probabilistic concurrency testing): every thread gets a random
//!   priority; the highest-priority runnable thread runs; at `depth - 1`
//!   change points drawn uniformly from the first `horizon` preemption
//!   points, the running thread's priority drops below every other one.
//!   Finds bugs that need a few ordered preemptions in long runs.
//!
//! The strategy and all its draws come from the seed alone, so the same
//! program under the same seed makes the same choices.

/// splitmix64: small, fast, and good enough for schedule choices.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// How a seed explores schedules.
#[derive(Clone, Debug)]
pub enum Strategy {
    /// Random walk; the running thread keeps the CPU with probability
    /// `stay` / 1000 at each point.
    Walk { stay: u64 },
    /// PCT with the given change points (preemption-point numbers).
    Pct { changes: Vec<u64> },
}

impl Strategy {
    /// The strategy of `seed` (`horizon`: the longest expected run, in
    /// preemption points; PCT draws its change points over a horizon picked
    /// per seed between an eighth of it and all of it, since run lengths
    /// vary).
    pub fn for_seed(seed: u64, horizon: u64, rng: &mut Rng) -> Strategy {
        let h = (horizon >> rng.below(4)).max(16);
        match seed % 4 {
            0 => Strategy::Walk { stay: 500 },
            1 => Strategy::Pct {
                changes: draw_changes(rng, 2, h),
            },
            2 => Strategy::Walk { stay: 900 },
            _ => Strategy::Pct {
                changes: draw_changes(rng, 3, h),
            },
        }
    }

    /// Short description for reports.
    pub fn describe(&self) -> String {
        match self {
            Strategy::Walk { stay } => format!("random walk (stay {}%)", stay / 10),
            Strategy::Pct { changes } => format!("PCT (change points {changes:?})"),
        }
    }
}

fn draw_changes(rng: &mut Rng, depth: u64, horizon: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (1..depth).map(|_| 1 + rng.below(horizon.max(1))).collect();
    v.sort_unstable();
    v
}

/// The chooser state of one machine.
pub struct Chooser {
    pub rng: Rng,
    pub strategy: Strategy,
    /// PCT priorities by thread index (higher runs first).
    prio: Vec<u64>,
    /// Next priority given at a change point (below every initial one).
    low: u64,
}

/// Initial PCT priorities are drawn above this value.
const PRIO_BASE: u64 = 1 << 32;

impl Chooser {
    pub fn new(seed: u64, horizon: u64) -> Chooser {
        let mut rng = Rng::new(seed);
        let strategy = Strategy::for_seed(seed, horizon, &mut rng);
        Chooser {
            rng,
            strategy,
            prio: Vec::new(),
            low: PRIO_BASE - 1,
        }
    }

    /// A new thread (index `i`) joins.
    pub fn add_thread(&mut self, i: usize) {
        let p = PRIO_BASE + self.rng.below(PRIO_BASE);
        if self.prio.len() <= i {
            self.prio.resize(i + 1, 0);
        }
        self.prio[i] = p;
    }

    /// Called at preemption point number `step` while thread `cur` runs.
    pub fn on_step(&mut self, step: u64, cur: usize) {
        if let Strategy::Pct { changes } = &self.strategy {
            if changes.binary_search(&step).is_ok() {
                if let Some(p) = self.prio.get_mut(cur) {
                    *p = self.low;
                    self.low = self.low.saturating_sub(1);
                }
            }
        }
    }

    /// Picks one of `eligible` (non-empty). `cur` is the running thread if
    /// it may go on running (it is then in `eligible`).
    pub fn choose(&mut self, eligible: &[usize], cur: Option<usize>) -> usize {
        match &self.strategy {
            Strategy::Walk { stay } => {
                if let Some(c) = cur {
                    if self.rng.below(1000) < *stay {
                        return c;
                    }
                }
                eligible[self.rng.below(eligible.len() as u64) as usize]
            }
            Strategy::Pct { .. } => {
                let prio = |i: usize| self.prio.get(i).copied().unwrap_or(0);
                let mut best = eligible[0];
                for &i in &eligible[1..] {
                    if prio(i) > prio(best) {
                        best = i;
                    }
                }
                best
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_choices() {
        let run = |seed| {
            let mut c = Chooser::new(seed, 100);
            for i in 0..4 {
                c.add_thread(i);
            }
            (0..200)
                .map(|s| {
                    c.on_step(s, (s % 4) as usize);
                    c.choose(&[0, 1, 2, 3], Some((s % 4) as usize))
                })
                .collect::<Vec<_>>()
        };
        for seed in 0..8 {
            assert_eq!(run(seed), run(seed));
        }
        assert_ne!(run(0), run(4));
    }

    #[test]
    fn pct_runs_the_highest_priority_until_a_change_point() {
        let mut c = Chooser::new(1, 10);
        for i in 0..3 {
            c.add_thread(i);
        }
        let first = c.choose(&[0, 1, 2], None);
        assert_eq!(c.choose(&[0, 1, 2], Some(first)), first);
        let Strategy::Pct { changes } = c.strategy.clone() else {
            panic!("seed 1 is PCT")
        };
        c.on_step(changes[0], first);
        assert_ne!(c.choose(&[0, 1, 2], Some(first)), first);
    }
}
