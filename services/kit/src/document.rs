//! Documents people hand on: PDF pages of text and tables in the standard Helvetica fonts
//! (no font files to ship), laid out top to bottom on A4 with page breaks, and finished with
//! a footer on every page. Insight exports and audit reports render through it.

use pdf_writer::{Finish, Name, Pdf, Rect, Ref, TextStr};

/// Widths of Helvetica's printable ASCII glyphs (32..=126), per 1000 units of the font size,
/// from its AFM: enough to wrap and align text set in the PDF's standard font.
const HELVETICA_WIDTHS: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556,
    556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833,
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556,
    556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334,
    260, 334, 584,
];

pub fn text_width(text: &str, size: f32, bold: bool) -> f32 {
    let units: u32 = text
        .chars()
        .map(|c| match c as u32 {
            code @ 32..=126 => u32::from(HELVETICA_WIDTHS[(code - 32) as usize]),
            _ => 556,
        })
        .sum();
    // Helvetica-Bold runs about 6 % wider; wrapping only needs to stay inside the margin.
    units as f32 * size / 1000.0 * if bold { 1.06 } else { 1.0 }
}

/// Text in the standard fonts' WinAnsi encoding: Latin-1 passes, anything else becomes '?'.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars().map(|c| if (c as u32) < 256 && !c.is_control() { c as u8 } else { b'?' }).collect()
}

/// Splits `text` into lines no wider than `width`.
pub fn wrap(text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() { word.to_string() } else { format!("{line} {word}") };
        if text_width(&candidate, size, false) > width && !line.is_empty() {
            lines.push(std::mem::replace(&mut line, word.to_string()));
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

pub const PAGE_WIDTH: f32 = 595.0;
pub const PAGE_HEIGHT: f32 = 842.0;
pub const MARGIN: f32 = 50.0;
pub const CONTENT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;

/// A4 pages filled top to bottom; a new page starts when the next block does not fit.
pub struct Pages {
    pages: Vec<pdf_writer::Content>,
    /// Where the next block goes, from the bottom of the page.
    pub y: f32,
}

impl Pages {
    pub fn new() -> Self {
        Self { pages: vec![pdf_writer::Content::new()], y: PAGE_HEIGHT - MARGIN }
    }

    pub fn page(&mut self) -> &mut pdf_writer::Content {
        self.pages.last_mut().expect("a page")
    }

    pub fn room(&mut self, height: f32) {
        if self.y - height < MARGIN + 20.0 {
            self.pages.push(pdf_writer::Content::new());
            self.y = PAGE_HEIGHT - MARGIN;
        }
    }

    pub fn text_at(&mut self, x: f32, y: f32, text: &str, size: f32, bold: bool) {
        let font = if bold { b"F2".as_slice() } else { b"F1".as_slice() };
        let bytes = win_ansi(text);
        let page = self.page();
        page.begin_text();
        page.set_font(pdf_writer::Name(font), size);
        page.next_line(x, y);
        page.show(pdf_writer::Str(&bytes));
        page.end_text();
    }

    pub fn line(&mut self, text: &str, size: f32, bold: bool) {
        self.room(size + 4.0);
        self.y -= size + 4.0;
        let y = self.y;
        self.text_at(MARGIN, y, text, size, bold);
    }

    pub fn paragraph(&mut self, text: &str, size: f32) {
        for line in wrap(text, size, CONTENT_WIDTH) {
            self.line(&line, size, false);
        }
    }

    pub fn gap(&mut self, height: f32) {
        self.y -= height;
    }

    /// A table with a bold header row and rules; cells are cut to their column.
    pub fn table(&mut self, headers: &[&str], widths: &[f32], rows: &[Vec<String>]) {
        let size = 9.0;
        let row_height = 14.0;
        let mut header = true;
        for cells in
            std::iter::once(headers.iter().map(|h| h.to_string()).collect::<Vec<_>>()).chain(rows.iter().cloned())
        {
            self.room(row_height + 2.0);
            self.y -= row_height;
            let y = self.y;
            let mut x = MARGIN;
            for (cell, width) in cells.iter().zip(widths) {
                let mut shown = cell.clone();
                while text_width(&shown, size, header) > width - 6.0 && shown.chars().count() > 1 {
                    shown.pop();
                }
                if shown.len() < cell.len() {
                    shown.pop();
                    shown.push('.');
                }
                self.text_at(x + 2.0, y + 4.0, &shown, size, header);
                x += width;
            }
            let page = self.page();
            page.set_stroke_rgb(0.75, 0.75, 0.75);
            page.set_line_width(if header { 0.8 } else { 0.3 });
            page.move_to(MARGIN, y);
            page.line_to(MARGIN + widths.iter().sum::<f32>(), y);
            page.stroke();
            header = false;
        }
    }

    /// Pages so far.
    pub fn count(&self) -> usize {
        self.pages.len()
    }

    /// The PDF file: `title` in its metadata, and `footer(page, of)` (1-based) on each page.
    pub fn finish(mut self, title: &str, footer: impl Fn(usize, usize) -> String) -> Vec<u8> {
        let count = self.pages.len();
        for (index, page) in self.pages.iter_mut().enumerate() {
            let bytes = win_ansi(&footer(index + 1, count));
            page.begin_text();
            page.set_font(Name(b"F1"), 7.0);
            page.next_line(MARGIN, MARGIN - 20.0);
            page.show(pdf_writer::Str(&bytes));
            page.end_text();
        }
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let (regular, bold, info) = (Ref::new(3), Ref::new(4), Ref::new(5));
        let first_page = 6;
        let mut pdf = Pdf::new();
        pdf.catalog(catalog).pages(tree);
        let kids: Vec<Ref> = (0..count).map(|index| Ref::new(first_page + 2 * index as i32)).collect();
        pdf.pages(tree).kids(kids.iter().copied()).count(count as i32);
        pdf.type1_font(regular).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.document_info(info).title(TextStr(title)).producer(TextStr("ComplianceIQ"));
        for (index, content) in self.pages.into_iter().enumerate() {
            let (page_id, content_id) = (kids[index], Ref::new(first_page + 2 * index as i32 + 1));
            let mut page = pdf.page(page_id);
            page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT)).parent(tree).contents(content_id);
            page.resources().fonts().pair(Name(b"F1"), regular).pair(Name(b"F2"), bold);
            page.finish();
            pdf.stream(content_id, &content.finish());
        }
        pdf.finish()
    }
}

impl Default for Pages {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_wraps_within_the_margins_and_many_rows_turn_pages() {
        let lines = wrap(&"word ".repeat(200), 10.0, CONTENT_WIDTH);
        assert!(lines.len() > 5 && lines.iter().all(|line| text_width(line, 10.0, false) <= CONTENT_WIDTH));
        let mut pages = Pages::new();
        let rows: Vec<Vec<String>> = (0..120).map(|i| vec![i.to_string()]).collect();
        pages.table(&["n"], &[100.0], &rows);
        assert!(pages.count() >= 3, "{} pages", pages.count());
        assert_eq!(win_ansi("é€"), [0xe9, b'?']);
        let pdf = pages.finish("Numbers", |page, of| format!("page {page} of {of}"));
        assert!(pdf.starts_with(b"%PDF-") && pdf.ends_with(b"%%EOF"));
    }
}
