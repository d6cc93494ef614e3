//! Aligned text columns, as kubectl prints them.

/// What an empty cell shows.
pub const NONE: &str = "-";

/// `headers` and `rows` as left-aligned columns three spaces apart, one
/// line each, without trailing spaces.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_cells: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header_cells).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let cell = if cell.is_empty() { NONE } else { cell.as_str() };
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_and_marks_empty_cells() {
        let rows = vec![
            vec![
                "pool-a".to_owned(),
                "10.65.0.0/16".to_owned(),
                String::new(),
            ],
            vec!["b".to_owned(), "fd00::/48".to_owned(), "x".to_owned()],
        ];
        assert_eq!(
            render(&["NAME", "CIDR", "SELECTOR"], &rows),
            "NAME     CIDR           SELECTOR\n\
             pool-a   10.65.0.0/16   -\n\
             b        fd00::/48      x\n"
        );
    }
}
