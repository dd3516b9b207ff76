//! "Did you mean …?": the closest known name to a misspelt one, for help lines.

/// The candidate closest to `wrong`, if it is close enough to be a likely typo.
pub fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&wrong_lower, &c.to_lowercase()), c))
        .filter(|(distance, c)| *distance <= (c.chars().count().max(3) / 3).max(2))
        .min_by_key(|(distance, c)| (*distance, c.len()))
        .map(|(_, c)| c)
}

/// A help line naming the closest candidate, or listing a few when none is close.
pub fn help(wrong: &str, what: &str, candidates: &[&str]) -> String {
    match closest(wrong, candidates.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None if candidates.is_empty() => format!("there is no {what} to choose from"),
        None => {
            let shown: Vec<String> = candidates
                .iter()
                .take(6)
                .map(|c| format!("`{c}`"))
                .collect();
            let more = if candidates.len() > 6 { ", …" } else { "" };
            format!("known {what}s: {}{more}", shown.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_case_slips() {
        let stages = ["Build", "Deploy Staging", "Deploy Prod"];
        assert_eq!(closest("Deploy Prd", stages), Some("Deploy Prod"));
        assert_eq!(closest("deploy staging", stages), Some("Deploy Staging"));
        assert_eq!(closest("Smoke Tests", stages), None);
    }

    #[test]
    fn help_lists_candidates_when_nothing_is_close() {
        assert_eq!(
            help("zzz", "stage", &["Build", "Deploy"]),
            "known stages: `Build`, `Deploy`"
        );
        assert_eq!(
            help("Biuld", "stage", &["Build", "Deploy"]),
            "did you mean `Build`?"
        );
    }
}
