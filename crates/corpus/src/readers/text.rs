//! Work in progress (readers helper).
// TEMPORARY stubs from the lead so other crates compile; replace freely.
pub fn read_html(_s: Box<dyn std::io::BufRead + Send>, _src: &str, _o: &super::ReaderOptions) -> super::ItemStream { Box::new(std::iter::empty()) }
pub fn read_text(_s: Box<dyn std::io::BufRead + Send>, _src: &str, _o: &super::ReaderOptions) -> super::ItemStream { Box::new(std::iter::empty()) }
