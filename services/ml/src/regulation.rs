//! The regulatory text scan: a regulation's text split into clauses, each compared with the
//! organization's requirements (policy statements) by TF-IDF cosine similarity.
//!
//! - Clauses: a line opening with a clause number ("4.2", "4.2.1", "(b)", "b)", "Article 7",
//!   "§ 3", a bullet) starts a clause; so does a paragraph after a blank line. A paragraph
//!   without a number that does not end as a sentence does ('.', ';', ':') is a heading or a
//!   title, not a clause, and so is a line naming a part ("Part 2. Access", "Chapter IV").
//!   A clause with fewer than `MIN_TERMS` terms is not scored.
//! - A PDF's text is read line by line (`pdf_text`): a vertical move or the end of a text
//!   object ends a line, a page ends a paragraph.
//! - A requirement matches a clause when they share `MIN_SHARED_TERMS` terms and their score
//!   reaches the minimum: one common word ("access", "change") is not evidence.
//! - Terms: lower-cased words of letters and digits, stop words left out, each reduced to a
//!   stem by a few suffix rules ("reviewed", "reviews" and "reviewing" all read "review"), so a
//!   paraphrase meets the requirement it restates.
//! - Weights: sublinear term frequency (1 + ln tf) times the smoothed inverse document
//!   frequency over the requirements, ln((1 + n) ÷ (1 + df)) + 1, as scikit-learn's
//!   TfidfVectorizer(sublinear_tf=True) computes it; vectors L2-normalised, so the score is
//!   their cosine, 0 to 1. A term no requirement uses still weighs in the clause's norm: a
//!   clause about something the organization never wrote down scores low, as it should.

use std::collections::{BTreeMap, HashMap};

/// Terms a clause needs to be scored.
pub const MIN_TERMS: usize = 3;
/// Terms a clause and a requirement share at least to match.
pub const MIN_SHARED_TERMS: usize = 2;
/// Shared terms given as a match's explanation.
const EXPLAINING_TERMS: usize = 8;

/// One clause of a text: its number where it has one, and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClauseText {
    pub reference: String,
    pub text: String,
}

/// Splits `text` into clauses, in order.
pub fn clauses(text: &str) -> Vec<ClauseText> {
    let mut found = Vec::new();
    // The clause being read, and whether a number or bullet opened it.
    let mut current: Option<(ClauseText, bool)> = None;
    let mut finish = |current: &mut Option<(ClauseText, bool)>| {
        if let Some((clause, marked)) = current.take() {
            let text = clause.text.split_whitespace().collect::<Vec<_>>().join(" ");
            let heading = !marked && !text.ends_with(['.', ';', ':']);
            if !text.is_empty() && !heading {
                found.push(ClauseText { reference: clause.reference, text });
            }
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            finish(&mut current);
            continue;
        }
        if is_part_heading(line) {
            finish(&mut current);
            continue;
        }
        if let Some((reference, rest)) = numbered(line) {
            finish(&mut current);
            current = Some((ClauseText { reference, text: rest.to_string() }, true));
            continue;
        }
        match &mut current {
            Some((clause, _)) => {
                clause.text.push(' ');
                clause.text.push_str(line);
            }
            None => current = Some((ClauseText { reference: String::new(), text: line.to_string() }, false)),
        }
    }
    finish(&mut current);
    found
}

/// "Part 2. Access", "Chapter IV", "Title 3", "Annex A": a heading over clauses.
fn is_part_heading(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let (Some(first), Some(second)) = (words.next(), words.next()) else { return false };
    let label = second.trim_end_matches(['.', ':']);
    // "Part 2", "Part IV", "Annex A"; not "Part of the fee ...".
    let numeral = !label.is_empty()
        && label.len() <= 6
        && (label.chars().all(|c| c.is_ascii_digit())
            || label.chars().all(|c| "IVXLCDM".contains(c))
            || (label.len() == 1 && label.chars().all(|c| c.is_ascii_uppercase())));
    ["part", "chapter", "title", "annex", "schedule", "appendix"].contains(&first.to_lowercase().as_str())
        && numeral
        && words.count() <= 8
}

/// Most pages of a PDF read, and most bytes one page's content may inflate to.
const MAX_PDF_PAGES: usize = 500;
const MAX_PAGE_CONTENT: usize = 8 * 1024 * 1024;

/// The text of a PDF, a line per line of text: a vertical move (`Td`, `TD`, `T*`, `Tm`, `'`,
/// `"`) or the end of a text object ends a line, and a page ends a paragraph. The error says
/// why it cannot be read (lopdf's own extraction runs lines together where a PDF moves down
/// with `Td`, as most do).
pub fn pdf_text(bytes: &[u8]) -> Result<String, String> {
    // A malformed file must not take the process down with it.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_pdf(bytes)))
        .unwrap_or_else(|_| Err("the PDF could not be parsed".to_string()))
}

fn read_pdf(bytes: &[u8]) -> Result<String, String> {
    use lopdf::Object;
    let document = lopdf::Document::load_mem(bytes).map_err(|e| format!("not a readable PDF: {e}"))?;
    let pages = document.get_pages();
    if pages.len() > MAX_PDF_PAGES {
        return Err(format!("a PDF has at most {MAX_PDF_PAGES} pages"));
    }
    let mut text = String::new();
    for page in pages.into_values() {
        let fonts = document.get_page_fonts(page).map_err(|e| format!("page fonts: {e}"))?;
        let encodings: BTreeMap<Vec<u8>, lopdf::Encoding> = fonts
            .into_iter()
            .filter_map(|(name, font)| {
                Some((name, font.get_font_encoding_with_limit(&document, MAX_PAGE_CONTENT).ok()?))
            })
            .collect();
        let content =
            document.get_page_content_with_limit(page, MAX_PAGE_CONTENT).map_err(|e| format!("page content: {e}"))?;
        let content = lopdf::content::Content::decode(&content).map_err(|e| format!("page content: {e}"))?;
        let mut encoding = None;
        let mut line = String::new();
        let end_line = |text: &mut String, line: &mut String| {
            if !line.trim().is_empty() {
                text.push_str(line.trim());
                text.push('\n');
            }
            line.clear();
        };
        let show = |line: &mut String, encoding: Option<&lopdf::Encoding>, operand: &Object| match operand {
            Object::String(bytes, _) => {
                if let Some(encoding) = encoding {
                    line.push_str(&lopdf::Document::decode_text(encoding, bytes).unwrap_or_default());
                }
            }
            // A large negative kerning in a TJ array is a space between words.
            Object::Integer(shift) if *shift < -200 => line.push(' '),
            Object::Real(shift) if *shift < -200.0 => line.push(' '),
            _ => {}
        };
        for operation in &content.operations {
            let operands = &operation.operands;
            match operation.operator.as_str() {
                "Tf" => {
                    encoding = match operands.first() {
                        Some(Object::Name(name)) => encodings.get(name),
                        _ => None,
                    }
                }
                "Tj" => operands.iter().for_each(|operand| show(&mut line, encoding, operand)),
                "TJ" => {
                    if let Some(Object::Array(items)) = operands.first() {
                        items.iter().for_each(|item| show(&mut line, encoding, item));
                    }
                }
                "'" | "\"" => {
                    end_line(&mut text, &mut line);
                    if let Some(operand) = operands.last() {
                        show(&mut line, encoding, operand);
                    }
                }
                "Td" | "TD" => {
                    let down = operands.get(1).and_then(|operand| operand.as_float().ok()).unwrap_or(0.0);
                    if down != 0.0 {
                        end_line(&mut text, &mut line);
                    } else if !line.ends_with(' ') && !line.is_empty() {
                        line.push(' ');
                    }
                }
                "T*" | "Tm" | "ET" => end_line(&mut text, &mut line),
                _ => {}
            }
        }
        end_line(&mut text, &mut line);
        text.push('\n');
    }
    Ok(text)
}

/// The clause number a line opens with, and the rest of the line.
fn numbered(line: &str) -> Option<(String, &str)> {
    let words: Vec<&str> = line.splitn(3, char::is_whitespace).collect();
    let first = words[0];
    // "Article 7", "Section 4.2", "§ 3".
    let named = ["article", "section", "§", "clause", "rule"];
    if words.len() >= 2 && named.contains(&first.to_lowercase().as_str()) {
        let number = words[1].trim_end_matches(['.', ':', ')']);
        if number.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            let rest = words.get(2).copied().unwrap_or_default();
            return Some((format!("{first} {number}"), rest));
        }
    }
    let rest = line[first.len()..].trim_start();
    // Bullets.
    if matches!(first, "-" | "*" | "•") {
        return Some((String::new(), rest));
    }
    // "4.", "4.2", "4.2.1", "(b)", "b)", "(iv)", "12)".
    let bare = first.trim_end_matches('.');
    let dotted = !bare.is_empty()
        && bare.split('.').all(|part| !part.is_empty() && part.len() <= 3 && part.chars().all(|c| c.is_ascii_digit()));
    let lettered = {
        let inner = first.strip_prefix('(').unwrap_or(first);
        inner.strip_suffix(')').is_some_and(|label| {
            !label.is_empty() && label.len() <= 4 && label.chars().all(|c| c.is_ascii_alphanumeric())
        })
    };
    ((dotted && (first.ends_with('.') || first.contains('.'))) || lettered).then(|| (first.to_string(), rest))
}

/// Words that say nothing about what a clause requires.
const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been", "before",
    "being", "between", "both", "but", "by", "can", "could", "does", "each", "either", "every", "for", "from", "had",
    "has", "have", "how", "if", "in", "into", "is", "it", "its", "may", "more", "most", "must", "no", "not", "of",
    "on", "once", "only", "or", "other", "our", "out", "over", "per", "shall", "should", "so", "such", "than", "that",
    "the", "their", "them", "then", "there", "these", "they", "this", "those", "through", "to", "under", "until",
    "upon", "use", "used", "using", "was", "were", "what", "when", "where", "whether", "which", "while", "who", "whom",
    "will", "with", "within", "without", "would", "we", "you", "your",
];

/// The stems of the words of `text` that carry meaning.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .filter(|word| word.chars().count() >= 3 && !word.chars().all(|c| c.is_ascii_digit()))
        .filter(|word| !STOP_WORDS.contains(&word.as_str()))
        .map(|word| stem(&word))
        .collect()
}

/// Suffixes taken off a word, longest first; `undouble` marks those after which a doubled
/// final consonant is halved ("logged" → "logg" → "log").
const SUFFIXES: &[(&str, &str, bool)] = &[
    ("ations", "", false),
    ("ation", "", false),
    ("ments", "", false),
    ("ment", "", false),
    ("ities", "", false),
    ("ness", "", false),
    ("ings", "", true),
    ("ions", "", false),
    ("ies", "y", false),
    ("ied", "y", false),
    ("ing", "", true),
    ("ion", "", false),
    ("ity", "", false),
    ("ated", "", false),
    ("ates", "", false),
    ("ate", "", false),
    ("ers", "", false),
    ("ed", "", true),
    ("es", "", false),
    ("er", "", false),
    ("ly", "", false),
    ("al", "", false),
    ("s", "", false),
];

/// A word's stem: suffixes off one at a time (while at least three letters stay), a doubled
/// consonant halved after "-ed" and "-ing", a final "e" off, so that the forms of a word meet
/// ("quarterly" → "quarter" → "quart" as "quarters" does).
pub fn stem(word: &str) -> String {
    if !word.is_ascii() || word.len() <= 3 {
        return word.to_string();
    }
    let mut stem = word.to_string();
    for _ in 0..3 {
        match strip_suffix(&stem) {
            Some(shorter) => stem = shorter,
            None => break,
        }
    }
    if stem.len() > 4 && stem.ends_with('e') {
        stem.pop();
    }
    stem
}

fn strip_suffix(word: &str) -> Option<String> {
    for (suffix, replacement, undouble) in SUFFIXES {
        // "access", "status" and "analysis" are not plurals.
        if *suffix == "s" && (word.ends_with("ss") || word.ends_with("us") || word.ends_with("is")) {
            continue;
        }
        let Some(base) = word.strip_suffix(suffix) else { continue };
        if base.len() < 3 {
            continue;
        }
        let mut stem = format!("{base}{replacement}");
        let bytes = stem.as_bytes();
        let n = bytes.len();
        if *undouble && n >= 2 && bytes[n - 1] == bytes[n - 2] && !b"aeiousz".contains(&bytes[n - 1]) {
            stem.pop();
        }
        return Some(stem);
    }
    None
}

/// A weighted, normalised term vector.
type Vector = HashMap<String, f64>;

/// The requirements as TF-IDF vectors, and the inverse document frequencies they give.
pub struct Index {
    idf: HashMap<String, f64>,
    /// Weight of a term no requirement uses.
    unseen_idf: f64,
    documents: Vec<Vector>,
    /// Term → (document, weight).
    postings: HashMap<String, Vec<(usize, f64)>>,
}

/// A requirement a clause resembles.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// Index of the requirement among those indexed.
    pub document: usize,
    pub score: f64,
    /// Shared terms, the weightiest first.
    pub terms: Vec<String>,
}

fn counted(terms: Vec<String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for term in terms {
        *counts.entry(term).or_insert(0) += 1;
    }
    counts
}

impl Index {
    /// Indexes the texts of the requirements, in order.
    pub fn new(texts: &[String]) -> Index {
        let counts: Vec<BTreeMap<String, usize>> = texts.iter().map(|text| counted(terms(text))).collect();
        let mut document_frequency: HashMap<&str, usize> = HashMap::new();
        for document in &counts {
            for term in document.keys() {
                *document_frequency.entry(term.as_str()).or_insert(0) += 1;
            }
        }
        let n = texts.len() as f64;
        let idf: HashMap<String, f64> = document_frequency
            .iter()
            .map(|(term, df)| (term.to_string(), ((1.0 + n) / (1.0 + *df as f64)).ln() + 1.0))
            .collect();
        let unseen_idf = (1.0 + n).ln() + 1.0;
        let documents: Vec<Vector> = counts.into_iter().map(|document| vector(document, |term| idf[term])).collect();
        let mut postings: HashMap<String, Vec<(usize, f64)>> = HashMap::new();
        for (index, document) in documents.iter().enumerate() {
            for (term, weight) in document {
                postings.entry(term.clone()).or_default().push((index, *weight));
            }
        }
        Index { idf, unseen_idf, documents, postings }
    }

    /// The requirements `text` resembles with a score of at least `min_score`, the best
    /// `max_matches` first; None when the text has too few terms to judge.
    pub fn matches(&self, text: &str, min_score: f64, max_matches: usize) -> Option<Vec<Match>> {
        let terms = terms(text);
        if terms.len() < MIN_TERMS {
            return None;
        }
        let query = vector(counted(terms), |term| self.idf.get(term).copied().unwrap_or(self.unseen_idf));
        // Document → (score, shared terms).
        let mut scores: HashMap<usize, (f64, usize)> = HashMap::new();
        for (term, weight) in &query {
            for (document, document_weight) in self.postings.get(term).map(Vec::as_slice).unwrap_or_default() {
                let entry = scores.entry(*document).or_insert((0.0, 0));
                entry.0 += weight * document_weight;
                entry.1 += 1;
            }
        }
        let mut ranked: Vec<(usize, f64)> = scores
            .into_iter()
            .filter(|(_, (score, shared))| *score >= min_score && *shared >= MIN_SHARED_TERMS)
            .map(|(document, (score, _))| (document, score))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(max_matches);
        Some(
            ranked
                .into_iter()
                .map(|(document, score)| {
                    let mut shared: Vec<(&String, f64)> = query
                        .iter()
                        .filter_map(|(term, weight)| Some((term, weight * self.documents[document].get(term)?)))
                        .collect();
                    shared.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
                    let terms = shared.into_iter().take(EXPLAINING_TERMS).map(|(term, _)| term.clone()).collect();
                    Match { document, score: score.min(1.0), terms }
                })
                .collect(),
        )
    }
}

/// Sublinear TF times IDF, L2-normalised.
fn vector(counts: BTreeMap<String, usize>, idf: impl Fn(&str) -> f64) -> Vector {
    let mut vector: Vector = counts
        .into_iter()
        .map(|(term, count)| {
            let weight = (1.0 + (count as f64).ln()) * idf(&term);
            (term, weight)
        })
        .collect();
    let norm = vector.values().map(|w| w * w).sum::<f64>().sqrt();
    if norm > 0.0 {
        vector.values_mut().for_each(|w| *w /= norm);
    }
    vector
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_start_at_numbers_bullets_and_paragraphs() {
        let text = "Regulation on things\n\n1. General\n1.1 Firms shall keep records\nof every trade.\n(a) first \
                    point here\nb) second point\nArticle 7: Logging of access\n- a bullet\n\nA paragraph\nthat wraps.";
        let found = clauses(text);
        let references: Vec<&str> = found.iter().map(|c| c.reference.as_str()).collect();
        // The title is a heading, not a clause.
        assert_eq!(references, ["1.", "1.1", "(a)", "b)", "Article 7", "", ""]);
        assert_eq!(found[1].text, "Firms shall keep records of every trade.");
        assert_eq!(found[4].text, "Logging of access");
        assert_eq!(found[6].text, "A paragraph that wraps.");
        // Numbers inside a sentence do not start a clause.
        assert_eq!(clauses("Keep logs for 90 days.\n2024 was a year.").len(), 1);
        // A part's heading ends the clause before it and is none itself, even without a blank
        // line (as in text read from a PDF).
        let found = clauses("1.1 Keep records.\nPart 2. Access\n2.1 Restrict access.\nPart of the fee is due.");
        let texts: Vec<&str> = found.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["Keep records.", "Restrict access. Part of the fee is due."]);
        assert!(is_part_heading("Chapter IV") && is_part_heading("Annex A: Definitions"));
        assert!(pdf_text(b"%PDF-1.5 not really").is_err() && pdf_text(b"").is_err());
    }

    #[test]
    fn the_forms_of_a_word_meet_at_one_stem() {
        for group in [
            &["review", "reviews", "reviewed", "reviewing"][..],
            &["log", "logs", "logged", "logging"],
            &["control", "controls", "controlled"],
            &["policy", "policies"],
            &["encrypt", "encrypted", "encryption"],
            &["manage", "managed", "management"],
            &["authenticate", "authentication", "authenticated"],
        ] {
            let stems: Vec<String> = group.iter().map(|word| stem(word)).collect();
            assert!(stems.iter().all(|s| *s == stems[0]), "{group:?} → {stems:?}");
        }
        assert_eq!(stem("access"), "access");
        assert_eq!(terms("The firm shall encrypt ALL data, at rest; 2024"), ["firm", "encrypt", "data", "rest"]);
    }

    #[test]
    fn a_paraphrase_finds_its_requirement_and_an_unrelated_clause_finds_none() {
        let requirements = [
            "Access reviews: user access rights to production systems are reviewed every quarter by the system owner",
            "Backups: data is backed up daily and restores are tested",
            "Encryption: customer data is encrypted at rest and in transit",
            "Incident response: security incidents are reported to management within one day",
        ]
        .map(String::from);
        let index = Index::new(&requirements);
        let found = index
            .matches("Owners shall review the access rights of users to production systems each quarter.", 0.2, 3)
            .unwrap();
        assert_eq!(found[0].document, 0, "{found:?}");
        assert!(found[0].score > 0.4 && found[0].terms.contains(&"access".to_string()), "{found:?}");
        assert!(found.iter().all(|m| m.score >= 0.2));
        let none = index.matches("Vendors must publish their greenhouse emissions annually.", 0.2, 3).unwrap();
        assert!(none.is_empty(), "{none:?}");
        // One shared word, however rare, is not a match.
        let one_word = index.matches("Suppliers must publish emissions; restores excepted.", 0.0, 3).unwrap();
        assert!(one_word.is_empty(), "{one_word:?}");
        assert_eq!(index.matches("Section heading", 0.2, 3), None, "too few terms to judge");
    }
}
