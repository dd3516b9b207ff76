//! Labels as Bamboo keeps them. Whether Bamboo folds a label's case is not documented, and its
//! label parser replaces characters it does not keep; so labels are compared without regard to
//! case (a gate `withoutLabels: [DO-NOT-PROMOTE]` stops a build labelled `do-not-promote`), and
//! a manifest label with a character Bamboo does not keep is refused at its line, since the
//! label on the build would not be the one written.

/// Characters Bamboo's label parser does not keep (besides whitespace).
pub const NOT_KEPT: &str = ":;,?&[]()#^*@!/\\";

/// Whether two labels are the same label on a server that may fold case.
pub fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// The first character of `label` that Bamboo would not keep.
pub fn not_kept(label: &str) -> Option<char> {
    label
        .chars()
        .find(|c| c.is_whitespace() || NOT_KEPT.contains(*c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_compare_without_case_and_bamboos_characters_are_known() {
        assert!(same("DO-NOT-PROMOTE", "do-not-promote"));
        assert!(!same("rc", "rc2"));
        assert_eq!(not_kept("release candidate"), Some(' '));
        assert_eq!(not_kept("qa:passed"), Some(':'));
        assert_eq!(not_kept("v1.2_rc-3"), None);
    }
}
