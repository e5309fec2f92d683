//! POSIX-style glob matching for the `remoteSystemID` entries of SKIP capabilities: the
//! draft lets a Key Provider list patterns (`*`, `?`, `[list]`, `[!list]`, ranges) instead of
//! literal IDs, as `fnmatch(3)` without flags reads them.
//!
//! Iterative with one backtrack point (the classic wildcard algorithm), so the cost is
//! O(len(pattern) x len(text)) whatever a hostile KP lists; callers bound both lengths.

/// Does `text` match `pattern`? A malformed bracket (no closing `]`) matches a literal `[`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    // Where the last `*` was, and which text position it currently swallows up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => match bracket(&p, pi, t.get(ti).copied()) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                // No closing bracket: `[` is an ordinary character.
                None => (t.get(ti) == Some(&'[')).then_some(pi + 1),
            },
            Some('\\') if p.get(pi + 1).is_some() => (p.get(pi + 1) == t.get(ti)).then_some(pi + 2),
            Some(c) => (Some(c) == t.get(ti)).then_some(pi + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ti += 1;
            }
            (None, Some((sp, st))) => {
                // Let the last `*` swallow one more character and retry after it.
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// Matches `c` against the bracket expression starting at `p[start] == '['`: whether it
/// matched and the index after the closing `]`, or None when the bracket never closes.
fn bracket(p: &[char], start: usize, c: Option<char>) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negated = matches!(p.get(i), Some('!') | Some('^'));
    if negated {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        // A `]` right after `[` or `[!` is a member, not the end.
        if lo == ']' && !first {
            let matched = c.is_some() && hit != negated;
            return Some((matched, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&hi| hi != ']') {
            let hi = *p.get(i + 2)?;
            hit |= c.is_some_and(|c| lo <= c && c <= hi);
            i += 3;
        } else {
            hit |= c == Some(lo);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn posix_patterns() {
        let cases = [
            ("KP_B", "KP_B", true),
            ("KP_B", "KP_C", false),
            ("KP_*", "KP_B", true),
            ("*", "", true),
            ("KP_?", "KP_BB", false),
            ("KP_[AB]", "KP_B", true),
            ("KP_[!AB]", "KP_B", false),
            ("KP_[!AB]", "KP_C", true),
            ("site-[0-9]", "site-7", true),
            ("site-[0-9]", "site-x", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("[]x]", "]", true),
            ("[abc", "[abc", true),
            ("\\*", "*", true),
            ("\\*", "x", false),
            ("", "x", false),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(matches(pattern, text), want, "{pattern:?} vs {text:?}");
        }
    }

    #[test]
    fn many_stars_stay_cheap() {
        let pattern = "*a".repeat(128);
        let text = "a".repeat(127) + "b";
        assert!(!matches(&pattern, &text));
    }
}
