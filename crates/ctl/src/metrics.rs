//! Prometheus's text exposition format (0.0.4), shared by rvsd and rvs-agent: families
//! built per scrape from counters the daemons already keep, written by the `prometheus`
//! crate's encoder, so `promtool check metrics` and any scraper accept it.

use std::collections::BTreeMap;

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::Encoder;

/// The HTTP content type of the format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One scrape's metric families, built in any order and written sorted by name.
#[derive(Default)]
pub struct Exposition {
    families: BTreeMap<String, MetricFamily>,
}

impl Exposition {
    /// Adds one sample of counter `name` (named with `_total`, as Prometheus wants).
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        let mut c = Counter::default();
        c.set_value(value as f64);
        let mut m = self.metric(labels);
        m.set_counter(c);
        self.family(name, help, MetricType::COUNTER).mut_metric().push(m);
    }

    /// Adds one sample of gauge `name`.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let mut g = Gauge::default();
        g.set_value(value);
        let mut m = self.metric(labels);
        m.set_gauge(g);
        self.family(name, help, MetricType::GAUGE).mut_metric().push(m);
    }

    fn metric(&self, labels: &[(&str, &str)]) -> Metric {
        let mut m = Metric::default();
        m.set_label(
            labels
                .iter()
                .map(|(k, v)| {
                    let mut l = LabelPair::default();
                    l.set_name((*k).to_string());
                    l.set_value((*v).to_string());
                    l
                })
                .collect(),
        );
        m
    }

    fn family(&mut self, name: &str, help: &str, kind: MetricType) -> &mut MetricFamily {
        self.families.entry(name.to_string()).or_insert_with(|| {
            let mut f = MetricFamily::default();
            f.set_name(name.to_string());
            f.set_help(help.to_string());
            f.set_field_type(kind);
            f
        })
    }

    /// The text exposition (an error only for a family or label name Prometheus does not
    /// accept: a bug of the caller's).
    pub fn render(self) -> Result<String, prometheus::Error> {
        let families: Vec<MetricFamily> = self.families.into_values().collect();
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&families, &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// What an HTTP request head asks a metrics endpoint for (both daemons serve
/// `GET /metrics`, and nothing else).
#[derive(Debug, PartialEq, Eq)]
pub enum Ask {
    /// `GET /metrics` or `HEAD /metrics`.
    Metrics {
        /// HEAD: the headers without the body.
        head: bool,
    },
    /// Another path.
    NotFound,
    /// Another method.
    BadMethod,
    /// Not HTTP.
    Malformed,
}

/// Reads the request line of `head` (the bytes up to the blank line).
pub fn ask(head: &[u8]) -> Ask {
    let line = head.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Ask::Malformed;
    };
    if !version.starts_with(b"HTTP/1.") {
        return Ask::Malformed;
    }
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => Ask::Metrics { head: method == b"HEAD" },
        (b"GET" | b"HEAD", _) => Ask::NotFound,
        _ => Ask::BadMethod,
    }
}

/// The longest request head a metrics endpoint reads (answered 431 beyond).
pub const MAX_REQUEST: usize = 8192;

/// Whether `buf` holds a whole request head (up to its blank line).
pub fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

/// The status line and body for a request that is not `GET /metrics` (`None` for one that
/// is); `server` names the daemon in the 404's body.
pub fn refusal(ask: &Ask, server: &str) -> Option<(&'static str, String)> {
    match ask {
        Ask::Metrics { .. } => None,
        Ask::NotFound => Some(("404 Not Found", format!("{server} serves /metrics\n"))),
        Ask::BadMethod => Some(("405 Method Not Allowed", "GET /metrics\n".into())),
        Ask::Malformed => Some(("400 Bad Request", "not an HTTP request\n".into())),
    }
}

/// The status line for a request head longer than [`MAX_REQUEST`].
pub const TOO_LARGE: &str = "431 Request Header Fields Too Large";

/// An HTTP/1.1 response head (the connection closes after the body).
pub fn response_head(status: &str, content_type: &str, len: usize) -> String {
    format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Ask::Metrics { head: false });
        assert_eq!(ask(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"), Ask::Metrics { head: true });
        assert_eq!(ask(b"GET / HTTP/1.1\r\n\r\n"), Ask::NotFound);
        assert_eq!(ask(b"POST /metrics HTTP/1.1\r\n\r\n"), Ask::BadMethod);
        assert_eq!(ask(b"\x16\x03\x01\x02\x00\r\n\r\n"), Ask::Malformed);
        assert_eq!(ask(b"GET /metrics SSH-2.0\r\n\r\n"), Ask::Malformed);
    }

    #[test]
    fn families_are_grouped_typed_and_labelled() {
        let mut e = Exposition::default();
        e.counter("rvs_b_total", "B.", &[("worker", "1")], 5);
        e.gauge("rvs_a", "A.", &[], 2.5);
        e.counter("rvs_b_total", "B.", &[("worker", "0")], 7);
        let text = e.render().expect("valid names");
        assert_eq!(
            text,
            "# HELP rvs_a A.\n# TYPE rvs_a gauge\nrvs_a 2.5\n\
             # HELP rvs_b_total B.\n# TYPE rvs_b_total counter\nrvs_b_total{worker=\"1\"} 5\nrvs_b_total{worker=\"0\"} 7\n"
        );
    }
}
