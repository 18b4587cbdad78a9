//! Words the commands print: a count with its noun in the right number ("1 face", "2 faces"),
//! and the note that says a listing is empty and what to do next.

/// A count that can be one or many.
pub trait Count: std::fmt::Display + Copy {
    fn is_one(self) -> bool;
}

macro_rules! count {
    ($($t:ty),*) => {$(
        impl Count for $t {
            fn is_one(self) -> bool {
                self == 1
            }
        }
    )*};
}
count!(usize, u64, u32, i64, i32);

/// `n` and `noun` in the right number: `plural(1, "face")` is "1 face", `plural(2, "face")` "2
/// faces", `plural(0, "person")` "0 people". Regular English plurals (sidecar → sidecars,
/// match → matches, inconsistency → inconsistencies) plus visage's one irregular noun, person.
pub fn plural(n: impl Count, noun: &str) -> String {
    if n.is_one() {
        return format!("{n} {noun}");
    }
    format!("{n} {}", plural_of(noun))
}

/// The plural of a noun: the last word changes ("named face" → "named faces").
fn plural_of(noun: &str) -> String {
    let (head, last) = match noun.rsplit_once(' ') {
        Some((h, l)) => (format!("{h} "), l),
        None => (String::new(), noun),
    };
    let many = match last {
        "person" => "people".to_string(),
        l if ["s", "x", "z", "ch", "sh"].iter().any(|e| l.ends_with(e)) => format!("{l}es"),
        l if l.ends_with('y') && !l.ends_with("ay") && !l.ends_with("ey") && !l.ends_with("oy") => {
            format!("{}ies", &l[..l.len() - 1])
        }
        l => format!("{l}s"),
    };
    head + &many
}

/// Say on stderr that a listing came out empty and what to do next; nothing in `--json` mode,
/// where empty output stays empty. The exit code stays 0: an empty answer is an answer.
pub fn say_empty(json: bool, note: &str) {
    if !json {
        eprintln!("visage: {note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_the_right_number() {
        assert_eq!(plural(1usize, "face"), "1 face");
        assert_eq!(plural(2usize, "face"), "2 faces");
        assert_eq!(plural(0usize, "face"), "0 faces");
        assert_eq!(plural(1i64, "photo"), "1 photo");
        assert_eq!(plural(118u64, "file"), "118 files");
        assert_eq!(plural(1usize, "person"), "1 person");
        assert_eq!(plural(3usize, "person"), "3 people");
        assert_eq!(plural(2usize, "match"), "2 matches");
        assert_eq!(plural(2usize, "inconsistency"), "2 inconsistencies");
        assert_eq!(plural(2usize, "day"), "2 days");
        assert_eq!(plural(1usize, "named face"), "1 named face");
        assert_eq!(plural(5usize, "named face"), "5 named faces");
        assert_eq!(plural(4usize, "new cluster"), "4 new clusters");
        assert_eq!(plural(-1i64, "face"), "-1 faces");
    }
}
