//! Which photos a shard takes: part I of N of a library, so N machines (a Slurm job array, a
//! Kubernetes Indexed Job) can each index their own part into their own database without talking
//! to each other, and a rerun takes exactly the same photos.
//!
//! The rule, fixed and documented (README, "Many machines") so any tool can reproduce it: a photo
//! belongs to shard `u64::from_be_bytes(sha256(rel)[0..8]) % N`, where `rel` is the photo's path
//! relative to the folder given on the command line, as the bytes the file system stores (its
//! components joined by `/`), or the file's name when a file is given itself. The same photo
//! mounted at `/data/photos` on one machine and `/mnt/photos` on another lands in the same shard.
//!
//! It reads no environment itself: the command line passes the scheduler's variables in.

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The most shards visage splits a library into.
pub const MAX_SHARDS: u32 = 1_000_000;

/// Part `index` (counted from 0) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("shard {0:?}: expected I/N, as 0/4 (part I of N, counted from 0)")]
    Syntax(String),
    #[error("shard {index}/{count}: I must be below N (shards are counted from 0)")]
    OutOfRange { index: u64, count: u64 },
    #[error("{count} shards: N must be 1 to {MAX_SHARDS}")]
    Count { count: u64 },
    #[error("{name}={value:?}: expected a whole number")]
    Variable { name: &'static str, value: String },
    #[error(
        "{name}={index} is not below --shards {count}: number the tasks from 0 \
         (--array=0-{last})",
        last = count.saturating_sub(1)
    )]
    TaskOutOfRange {
        name: &'static str,
        index: u64,
        count: u64,
    },
    #[error(
        "--shards needs the task's index: run as a Slurm array task (SLURM_ARRAY_TASK_ID) or a \
         Kubernetes Indexed Job (JOB_COMPLETION_INDEX), or give --shard I/N"
    )]
    NoTaskIndex,
    #[error(
        "--shards auto takes N from a Slurm job array (SLURM_ARRAY_TASK_COUNT, or \
         SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_MAX); elsewhere give --shards N"
    )]
    NoTaskCount,
    #[error(
        "Slurm array task {id} of the array {min}-{max}:{step} ({count} tasks) is not one of \
         {count} evenly spaced tasks: submit --array=0-{last} (or give --shards N and number \
         the tasks from 0)",
        last = count.saturating_sub(1)
    )]
    Uneven {
        id: u64,
        min: u64,
        max: u64,
        step: u64,
        count: u64,
    },
    #[error(
        "Slurm array task {id} is an array of one task (a task submitted again alone?): \
         --shards auto cannot tell how many shards there are; give --shards N \
         (scripts/slurm/index.sbatch: VISAGE_SHARDS=N)"
    )]
    Alone { id: u64 },
}

impl Shard {
    pub fn new(index: u64, count: u64) -> Result<Self, ShardError> {
        if count == 0 || count > MAX_SHARDS as u64 {
            return Err(ShardError::Count { count });
        }
        if index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard {
            index: index as u32,
            count: count as u32,
        })
    }

    /// The shard (of `count`) a photo belongs to, from its path relative to the folder given.
    pub fn of(relative: &Path, count: u32) -> u32 {
        let digest = Sha256::digest(relative.as_os_str().as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) % count.max(1) as u64) as u32
    }

    /// Whether this shard takes the photo at `relative` (its path relative to the folder given).
    pub fn takes(&self, relative: &Path) -> bool {
        Self::of(relative, self.count) == self.index
    }

    /// The shard a scheduler's task runs, for `--shards COUNT`, from its variables (`var` looks
    /// one up): a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`, else a Slurm array's
    /// `SLURM_ARRAY_TASK_ID`.
    ///
    /// With a number, the task's index is the shard (`--array=0-9` with `--shards 10`; a task
    /// resubmitted alone, `--array=3`, takes shard 3 again). With [`ShardCount::Auto`] (Slurm
    /// only), N is the array's task count and I the task's place in it (`--array=1-10` works too);
    /// a task requeued in the same array keeps both.
    pub fn from_scheduler(
        shards: ShardCount,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ShardError> {
        let number = |name: &'static str| -> Result<Option<u64>, ShardError> {
            match var(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| ShardError::Variable {
                        name,
                        value: v.clone(),
                    }),
            }
        };
        let kubernetes = number("JOB_COMPLETION_INDEX")?;
        let slurm = number("SLURM_ARRAY_TASK_ID")?;
        match shards {
            ShardCount::Fixed(count) => {
                let (name, index) = match (kubernetes, slurm) {
                    (Some(i), _) => ("JOB_COMPLETION_INDEX", i),
                    (None, Some(i)) => ("SLURM_ARRAY_TASK_ID", i),
                    (None, None) => return Err(ShardError::NoTaskIndex),
                };
                let count = count as u64;
                Shard::new(index, count).map_err(|_| ShardError::TaskOutOfRange {
                    name,
                    index,
                    count,
                })
            }
            ShardCount::Auto => {
                let id = slurm.ok_or(ShardError::NoTaskCount)?;
                let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
                let max = number("SLURM_ARRAY_TASK_MAX")?;
                let count = match (number("SLURM_ARRAY_TASK_COUNT")?, max) {
                    (Some(c), _) => c,
                    (None, Some(max)) => max.saturating_sub(min) / step + 1,
                    (None, None) => return Err(ShardError::NoTaskCount),
                };
                // --array=3 alone: a task resubmitted by hand, not a library of one shard.
                if count == 1 && id != 0 {
                    return Err(ShardError::Alone { id });
                }
                let max = max.unwrap_or(min + (count.max(1) - 1) * step);
                let uneven = ShardError::Uneven {
                    id,
                    min,
                    max,
                    step,
                    count,
                };
                // A list such as --array=0,4,7 is not a range: its ids cannot be shard numbers.
                if id < min || (id - min) % step != 0 || (max - min) / step + 1 != count {
                    return Err(uneven);
                }
                Shard::new((id - min) / step, count).map_err(|_| uneven)
            }
        }
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(syntax)?;
        let i: u64 = i.trim().parse().map_err(|_| syntax())?;
        let n: u64 = n.trim().parse().map_err(|_| syntax())?;
        Shard::new(i, n)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `--shards`: how many shards, or `auto` (the size of the Slurm job array).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardCount {
    Fixed(u32),
    Auto,
}

impl FromStr for ShardCount {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "auto" {
            return Ok(ShardCount::Auto);
        }
        let n: u64 = s.trim().parse().map_err(|_| ShardError::Syntax(s.into()))?;
        Shard::new(0, n).map(|_| ShardCount::Fixed(n as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_hash_is_the_documented_one() {
        // From Python, independently:
        //   v = int(hashlib.sha256(b"group/t1.jpg").hexdigest()[:16], 16)  # 0x1382f80433e306ac
        //   [v % n for n in (2, 3, 7, 1000)]                                # [0, 2, 5, 92]
        for (rel, want) in [
            ("group/t1.jpg", [0, 2, 5, 92]),
            ("train/ben_afflek/httpcsvkmeuaeccjpg.jpg", [0, 2, 0, 382]),
        ] {
            let got = [2, 3, 7, 1000].map(|n| Shard::of(Path::new(rel), n));
            assert_eq!(got, want, "{rel}");
            assert_eq!(Shard::of(Path::new(rel), 1), 0);
        }
    }

    #[test]
    fn shards_split_every_photo_once_and_about_evenly() {
        let paths: Vec<String> = (0..3000).map(|i| format!("2019/{i:05}.jpg")).collect();
        for n in [1u32, 2, 3, 8] {
            let shards: Vec<Shard> = (0..n)
                .map(|i| Shard::new(i as u64, n as u64).unwrap())
                .collect();
            let mut sizes = vec![0usize; n as usize];
            for p in &paths {
                let taken: Vec<&Shard> = shards.iter().filter(|s| s.takes(Path::new(p))).collect();
                assert_eq!(taken.len(), 1, "{p} in {n} shards");
                sizes[taken[0].index as usize] += 1;
            }
            let even = paths.len() / n as usize;
            assert!(
                sizes.iter().all(|&s| s.abs_diff(even) < even / 10 + 20),
                "{sizes:?}"
            );
        }
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(
            "2/3".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 3 }
        );
        assert_eq!("2/3".parse::<Shard>().unwrap().to_string(), "2/3");
        for bad in ["3/3", "1", "a/3", "0/0", "-1/3", "1/2000000"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!("auto".parse::<ShardCount>(), Ok(ShardCount::Auto));
        assert_eq!("8".parse::<ShardCount>(), Ok(ShardCount::Fixed(8)));
        assert!("0".parse::<ShardCount>().is_err());
    }

    #[test]
    fn scheduler_variables() {
        let shard = |c, vars: &[(&str, &str)]| Shard::from_scheduler(c, env(vars));
        let fixed = ShardCount::Fixed(3);
        // Kubernetes Indexed Job.
        assert_eq!(
            shard(fixed, &[("JOB_COMPLETION_INDEX", "2")]),
            Ok(Shard { index: 2, count: 3 })
        );
        // Slurm with --shards N: the task id is the shard, also for a task resubmitted alone.
        let alone = [
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "1"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "1"),
        ];
        assert_eq!(shard(fixed, &alone), Ok(Shard { index: 1, count: 3 }));
        assert_eq!(
            shard(fixed, &[("SLURM_ARRAY_TASK_ID", "3")]),
            Err(ShardError::TaskOutOfRange {
                name: "SLURM_ARRAY_TASK_ID",
                index: 3,
                count: 3
            })
        );
        assert_eq!(shard(fixed, &[]), Err(ShardError::NoTaskIndex));
        // --shards auto: N from the array, I from the task's place in it.
        let array = |id: &str, min: &str, max: &str, count: Option<&str>| {
            let mut v = vec![
                ("SLURM_ARRAY_TASK_ID", id.to_string()),
                ("SLURM_ARRAY_TASK_MIN", min.to_string()),
                ("SLURM_ARRAY_TASK_MAX", max.to_string()),
                ("SLURM_ARRAY_TASK_STEP", "1".to_string()),
            ];
            if let Some(c) = count {
                v.push(("SLURM_ARRAY_TASK_COUNT", c.to_string()));
            }
            Shard::from_scheduler(ShardCount::Auto, move |k| {
                v.iter().find(|(n, _)| *n == k).map(|(_, x)| x.clone())
            })
        };
        assert_eq!(
            array("2", "0", "2", Some("3")),
            Ok(Shard { index: 2, count: 3 })
        );
        assert_eq!(array("2", "0", "2", None), Ok(Shard { index: 2, count: 3 }));
        assert_eq!(
            array("10", "1", "10", Some("10")),
            Ok(Shard {
                index: 9,
                count: 10
            })
        );
        // --array=0,1,5 (a list, not a range) is refused rather than guessed.
        assert!(matches!(
            array("5", "0", "5", Some("3")),
            Err(ShardError::Uneven { .. })
        ));
        assert_eq!(
            array("3", "3", "3", Some("1")),
            Err(ShardError::Alone { id: 3 })
        );
        assert_eq!(
            array("0", "0", "0", Some("1")),
            Ok(Shard { index: 0, count: 1 })
        );
        assert_eq!(
            shard(ShardCount::Auto, &[("JOB_COMPLETION_INDEX", "0")]),
            Err(ShardError::NoTaskCount)
        );
        assert!(matches!(
            shard(ShardCount::Auto, &[("SLURM_ARRAY_TASK_ID", "x")]),
            Err(ShardError::Variable { .. })
        ));
    }
}
