//! Manifest errors as miette diagnostics: the file's text, a labelled span, a help line, and
//! the same facts as JSON for editors and CI annotations.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, SourceCode, SourceSpan};
use serde::Serialize;

/// A file that was read, kept for diagnostics that point into it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<String>,
}

impl SourceFile {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    /// The byte offset of a 1-based line and column (in characters).
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let mut offset = 0;
        for (i, text) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                return offset
                    + text
                        .char_indices()
                        .nth(column.saturating_sub(1))
                        .map_or(text.len(), |(b, _)| b);
            }
            offset += text.len();
        }
        self.text.len()
    }
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Values longer than this are cut in messages.
const MAX_VALUE_CHARS: usize = 80;
/// Messages without quoted values are cut at this length.
const MAX_MESSAGE_CHARS: usize = 500;
/// Source lines longer than this are not printed under a diagnostic.
const MAX_SNIPPET_LINE: usize = 1000;

/// A value as a message shows it: long ones cut, saying how long they were.
pub fn shorten(value: &str) -> Cow<'_, str> {
    let length = value.chars().count();
    if length <= MAX_VALUE_CHARS {
        return Cow::Borrowed(value);
    }
    let head: String = value.chars().take(MAX_VALUE_CHARS - 20).collect();
    Cow::Owned(format!("{head}… ({length} characters)"))
}

/// A message with every `quoted` value shortened: messages quote the values they are about,
/// whoever wrote them (this crate or serde-saphyr).
fn shorten_quoted(message: &str) -> String {
    let parts: Vec<&str> = message.split('`').collect();
    if parts.len() < 3 {
        return match message.char_indices().nth(MAX_MESSAGE_CHARS) {
            Some((cut, _)) => format!("{}…", &message[..cut]),
            None => message.to_string(),
        };
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                shorten(part)
            } else {
                Cow::Borrowed(*part)
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

/// A place in a file: where a diagnostic points.
#[derive(Debug, Clone)]
pub struct Place {
    pub file: Arc<SourceFile>,
    pub span: SourceSpan,
}

impl Place {
    pub fn line_column(&self) -> (usize, usize) {
        self.file.line_column(self.span.offset())
    }
}

/// One problem in the manifests.
#[derive(Debug, Clone)]
pub struct ManifestError {
    pub code: &'static str,
    pub message: String,
    /// Where it is, with the label to print there; `None` for a file that could not be read.
    pub primary: Option<Box<(Place, String)>>,
    /// Other places that explain it (the first definition of a duplicate id).
    pub related: Vec<(Place, String)>,
    pub help: Option<String>,
    /// The file, when there is no place in it.
    pub path: PathBuf,
}

impl ManifestError {
    pub fn at(
        code: &'static str,
        place: Place,
        label: impl Into<String>,
        message: impl Into<String>,
    ) -> ManifestError {
        ManifestError {
            code,
            message: shorten_quoted(&message.into()),
            path: place.file.path.clone(),
            primary: Some(Box::new((place, label.into()))),
            related: Vec::new(),
            help: None,
        }
    }

    pub fn file(code: &'static str, path: &Path, message: impl Into<String>) -> ManifestError {
        ManifestError {
            code,
            message: shorten_quoted(&message.into()),
            primary: None,
            related: Vec::new(),
            help: None,
            path: path.to_path_buf(),
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> ManifestError {
        self.help = Some(shorten_quoted(&help.into()));
        self
    }

    pub fn with_related(mut self, place: Place, label: impl Into<String>) -> ManifestError {
        self.related.push((place, label.into()));
        self
    }

    /// 1-based line and column, or (0, 0) for a whole-file problem.
    pub fn line_column(&self) -> (usize, usize) {
        self.primary
            .as_ref()
            .map_or((0, 0), |primary| primary.0.line_column())
    }

    pub fn to_json(&self) -> JsonDiagnostic {
        let (line, column) = self.line_column();
        JsonDiagnostic {
            file: self.path.display().to_string(),
            line,
            column,
            code: self.code,
            severity: "error",
            message: self.message.clone(),
            help: self.help.clone(),
        }
    }
}

/// The JSON form of a diagnostic (`validate --format json`, and error documents).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct JsonDiagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub code: &'static str,
    pub severity: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, column) = self.line_column();
        if line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{line}:{column}: {}",
                self.path.display(),
                self.message
            )
        }
    }
}

impl std::error::Error for ManifestError {}

impl Diagnostic for ManifestError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    /// The file's text, unless the line pointed at is too long to print: a 1 MB value would
    /// print a 1 MB snippet. The message still names file, line and column.
    fn source_code(&self) -> Option<&dyn SourceCode> {
        let primary = self.primary.as_ref()?;
        let (place, _) = primary.as_ref();
        let text = place.file.text.as_str();
        let at = floor_char_boundary(text, place.span.offset().min(text.len()));
        let start = text[..at].rfind('\n').map_or(0, |n| n + 1);
        let end = text[at..].find('\n').map_or(text.len(), |n| at + n);
        (end - start <= MAX_SNIPPET_LINE).then_some(place.file.as_ref() as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (place, label) = self.primary.as_deref()?;
        let primary = LabeledSpan::new_primary_with_span(Some(label.clone()), place.span);
        // Related places in the same file are labelled; those in another file are named in
        // the label text, since one report shows one source.
        let related = self.related.iter().map(move |(other, text)| {
            if Arc::ptr_eq(&other.file, &place.file) {
                LabeledSpan::new_with_span(Some(text.clone()), other.span)
            } else {
                let (line, column) = other.line_column();
                LabeledSpan::new_with_span(
                    Some(format!(
                        "{text} ({}:{line}:{column})",
                        other.file.path.display()
                    )),
                    place.span,
                )
            }
        });
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}

/// Named for the file, so the report shows `file:line:col`.
impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let contents =
            self.text
                .as_str()
                .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.path.display().to_string(),
            contents.data(),
            *contents.span(),
            contents.line(),
            contents.column(),
            contents.line_count(),
        )))
    }
}
